"""HJ 212-2017 frames: the standard's example, leniency, strictness, and property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.codecs import Hj212Codec, encode_hj212
from ingest.hj212 import Frame, build_frame, crc16, crc16_bytewise, parse_frame
from riverguard.errors import PayloadError
from riverguard.models import DataFlag, Measurement, Reading, SourceFormat
from riverguard.parameters import PARAMETERS
from riverguard.stations import load_registry

STANDARD_EXAMPLE = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
    b"CP=&&RtdInterval=30&&1C80\r\n"
)
REGISTRY = load_registry()
STATION = REGISTRY.by_id["tuo-sanhuangmiao"]


def frame(data: str, crc: str | None = None) -> bytes:
    raw = data.encode()
    return b"##%04d%s%s\r\n" % (len(raw), raw, (crc or f"{crc16(raw):04X}").encode())


def test_the_standards_example_frame_verifies() -> None:
    parsed = parse_frame(STANDARD_EXAMPLE)
    assert (parsed.qn, parsed.st, parsed.cn) == ("20160801085857223", "32", "1062")
    assert (parsed.pw, parsed.flag, parsed.mn) == ("100000", "5", "010000A8900016F000169DC0")
    assert parsed.cp == (("RtdInterval", "30"),)


def test_crc_is_not_modbus() -> None:
    data = STANDARD_EXAMPLE[6:107]
    assert crc16(data) == 0x1C80
    modbus = 0xFFFF
    for byte in data:
        modbus ^= byte
        for _ in range(8):
            modbus = (modbus >> 1) ^ 0xA001 if modbus & 1 else modbus >> 1
    assert modbus != 0x1C80


def test_lenient_lower_case_crc_missing_terminator_qn_and_flag() -> None:
    assert parse_frame(STANDARD_EXAMPLE.replace(b"1C80", b"1c80")).cn == "1062"
    assert parse_frame(STANDARD_EXAMPLE.rstrip()).cn == "1062"
    bare = parse_frame(frame("ST=21;CN=2011;MN=ABC;CP=&&DataTime=20240105103000;w01001-Rtd=7.1&&"))
    assert (bare.qn, bare.flag, bare.mn) == (None, None, "ABC")


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (STANDARD_EXAMPLE.replace(b"##0101", b"##0102"), "hj212_length"),
        (STANDARD_EXAMPLE.replace(b"1C80", b"1C81"), "hj212_crc"),
        (STANDARD_EXAMPLE.replace(b"1C80", b"1CG0"), "hj212_crc"),
        (STANDARD_EXAMPLE[1:], "hj212_frame"),
        (STANDARD_EXAMPLE.replace(b"##0101", b"##01a1"), "hj212_frame"),
        (frame("QN=1;ST=21;MN=ABC;CP=&&x=1&&"), "hj212_frame"),  # no CN
        (frame("QN=1;ST=21;CN=2011;MN=ABC;CP=&&x=1"), "hj212_frame"),  # CP not closed
        (frame("QN=1;ST=21;CN=2011;MN=ABC;PNUM=x;PNO=1;CP=&&x=1&&"), "hj212_frame"),
        (frame("QN=1;ST=21;CN=2011;MN=ABC;PNUM=" + "1" * 5000 + ";PNO=1;CP=&&x=1&&"), "hj212_frame"),  # int() limit
        (frame("QN=1;ST=21;CN=2011;MN=ABC;PNUM=2;PNO=00001;CP=&&x=1&&"), "hj212_frame"),
        (b"", "hj212_frame"),
    ],
)
def test_strict_rejections_carry_a_code(raw: bytes, code: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_frame(raw)
    assert caught.value.code == code


def test_cp_items_rtd_avg_min_max_flag() -> None:
    raw = frame(
        f"QN=20240105103000000;ST=21;CN=2051;MN={STATION.mn};Flag=5;CP=&&DataTime=20240105103000;"
        "w21003-Min=0.3,w21003-Avg=0.4,w21003-Max=0.5,w21003-Flag=N;w01001-Avg=7.2,w01001-Flag=C;"
        "w99999-Avg=3.5&&"
    )
    [reading] = Hj212Codec().decode(raw, topic="", registry=REGISTRY)
    assert reading.time == datetime(2024, 1, 5, 2, 30, tzinfo=UTC)  # Beijing time → UTC
    assert reading.values["NH3N"] == Measurement(value=0.4)
    assert reading.values["pH"] == Measurement(value=7.2, flag=DataFlag.CALIBRATION)
    assert reading.values["w99999"].value == 3.5  # an unknown factor keeps its code: no data lost
    assert reading.section == "三皇庙"


def test_a_flag_outside_the_standards_table_keeps_the_value_as_not_evidence_of_the_water() -> None:
    raw = frame(f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;"
                "w01001-Rtd=7.2,w01001-Flag=P;w21003-Rtd=0.4,w21003-Flag=H;w01009-Rtd=40,w01009-Flag=H&&")
    [reading] = Hj212Codec().decode(raw, topic="", registry=REGISTRY)
    assert reading.values["pH"].value == 7.2
    assert reading.values["pH"].flag == DataFlag("P")
    assert not reading.values["pH"].flag.is_standard
    assert reading.values["DO"].value == 40  # beyond DO's physical range, but no claim about the water
    assert reading.normal_values() == {}
    assert Reading.model_validate_json(reading.model_dump_json()) == reading
    assert b'"flag":"H"' in reading.model_dump_json().encode()


def test_metal_units_per_station_are_normalised_to_mg_per_l() -> None:
    pengshan = REGISTRY.by_id["min-pengshan"]
    assert pengshan.units["Cd"] == "ug/L"
    raw = frame(f"QN=1;ST=21;CN=2011;MN={pengshan.mn};CP=&&DataTime=20240105103000;w20115-Rtd=0.8&&")
    [reading] = Hj212Codec().decode(raw, topic="", registry=REGISTRY)
    assert reading.values["Cd"].value == pytest.approx(0.0008)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("QN=1;ST=21;CN=2011;MN=NOPE;CP=&&DataTime=20240105103000;w01001-Rtd=7&&", "unknown_station"),
        (f"QN=1;ST=21;CN=9014;MN={STATION.mn};CP=&&&&", "hj212_command"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=15&&", "out_of_range"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=abc&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7,w01001-Flag=NN&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7,w01001-Flag=n&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=2024010510;w01001-Rtd=7&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20241305103000;w01001-Rtd=7&&", "schema"),  # month 13
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=NaN&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=0_5&&", "schema"),  # not 5
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd= 7&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w21003-Rtd=1e999&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=&&", "schema"),
        (f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7,w01001-Max=x&&", "schema"),
        (f"ST=21;CN=2011;MN={STATION.mn};CP=&&w01001-Rtd=7&&", "hj212_frame"),  # no time at all
        (f"QN=1;CN=2011;PNUM=2;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7&&", "hj212_frame"),  # no PNO
    ],
)
def test_frame_content_rejections(data: str, code: str) -> None:
    with pytest.raises(PayloadError) as caught:
        Hj212Codec().decode(frame(data), topic="", registry=REGISTRY)
    assert caught.value.code == code


def test_topic_must_name_the_frames_station() -> None:
    raw = frame(f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7&&")
    assert Hj212Codec().decode(raw, topic="stations/tuo/tuo-sanhuangmiao/telemetry", registry=REGISTRY)
    with pytest.raises(PayloadError) as caught:
        Hj212Codec().decode(raw, topic="stations/tuo/tuo-hongyuan/telemetry", registry=REGISTRY)
    assert caught.value.code == "topic_mismatch"


# --- property tests -----------------------------------------------------------------------------

_values = st.dictionaries(
    st.sampled_from(STATION.parameters),
    st.tuples(st.floats(0, 1, allow_nan=False), st.sampled_from(list(DataFlag))),
    min_size=1,
)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    values = {}
    for name, (fraction, flag) in draw(_values).items():
        low, high = PARAMETERS[name].physical_range
        values[name] = Measurement(value=round(low + fraction * (high - low), 4), flag=flag)
    seconds = draw(st.integers(0, 20 * 365 * 86400))
    time = datetime(2010, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return Reading(station_id=STATION.station_id, river=STATION.river, time=time, values=values,
                   source_format=SourceFormat.HJ212, section=STATION.section)


@settings(max_examples=200, deadline=None)
@given(readings())
def test_encode_decode_round_trip(reading: Reading) -> None:
    [decoded] = Hj212Codec().decode(encode_hj212(reading, STATION), topic="", registry=REGISTRY)
    assert decoded.time == reading.time
    assert decoded.values.keys() == reading.values.keys()
    for name, measurement in reading.values.items():
        assert decoded.values[name].flag == measurement.flag
        assert decoded.values[name].value == pytest.approx(measurement.value, rel=1e-9, abs=1e-12)
    assert decoded.model_copy(update={"values": reading.values}) == reading


@settings(max_examples=300, deadline=None)
@given(readings(), st.data())
def test_any_single_corrupted_byte_is_rejected_with_a_reason(reading: Reading, data: st.DataObject) -> None:
    raw = bytearray(encode_hj212(reading, STATION))
    position = data.draw(st.integers(0, len(raw) - 1), label="position")
    replacement = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]), label="byte")
    raw[position] = replacement
    with pytest.raises(PayloadError) as caught:
        Hj212Codec().decode(bytes(raw), topic="", registry=REGISTRY)
    assert caught.value.code.startswith("hj212_")
    assert caught.value.message


def test_build_frame_round_trips_fields() -> None:
    original = Frame(cn="2011", mn="M1", qn="20240105103000123", st="21", pw="1", flag="5", pnum=2, pno=1,
                     cp=(("DataTime", "20240105103000"), ("w01001-Rtd", "7.1"), ("w01001-Flag", "N")))
    assert parse_frame(build_frame(original)) == original


@given(st.binary(max_size=64))
def test_crc_two_bytes_at_a_time_equals_the_bytewise_definition(data: bytes) -> None:
    assert crc16(data) == crc16_bytewise(data)
