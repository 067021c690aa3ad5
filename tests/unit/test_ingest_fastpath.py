"""The native fast path against the Python path it must agree with.

The property: for any payload, a router with the fast path produces the same records (topic, key,
record bytes but for the envelope's produced_at and trace_id), the same acknowledgements and the
same dead-letter reasons as one without it. The fast path may decline anything; it must never
accept what the Python path rejects, nor write a record that differs. And it must actually take
the traffic stations send, or it is not a fast path.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from itertools import islice
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic_core import to_json

from ingest._fastpath import float_text
from ingest.codecs import TopicPattern, encode_json, frame_of
from ingest.fastpath import fast_router
from ingest.hj212 import build_frame, crc16, split_frame
from ingest.publisher import payload_for
from ingest.routing import FUTURE_TOLERANCE, Message, Router
from ingest.simulator import Simulator
from riverguard.models import DataFlag, Measurement, Reading, SourceFormat, decode
from riverguard.parameters import PARAMETERS
from riverguard.stations import load_registry

REGISTRY = load_registry()
STATION = REGISTRY.by_id["tuo-sanhuangmiao"]
METALS = next(s for s in REGISTRY.stations if s.unit_factors)  # reports some values in µg/L
TOPIC = "stations/tuo/tuo-sanhuangmiao/telemetry"
NOW = datetime(2024, 1, 5, 3, 0, tzinfo=UTC)
FAST = Router[int](REGISTRY, readings_topic="readings", dlq_topic="dlq")
PYTHON = Router[int](REGISTRY, readings_topic="readings", dlq_topic="dlq", fast_path=False)
FAST_ONLY = fast_router(REGISTRY, TopicPattern(), future_tolerance_s=3600, trace_prefix="t")

Outcome = list[tuple[tuple[tuple[str, bytes | None, bytes], ...], tuple[int, ...], tuple[str, ...]]]


def outcome(router: Router[int], payload: bytes, topic: str = TOPIC, received_at: datetime = NOW) -> Outcome:
    """What ``router`` makes of a payload, with the envelope's per-record fields cut off."""
    routed = router.route(Message(topic, payload, received_at, token=1))
    return [
        (tuple((r.topic, r.key, (r.value or b"").split(b',"payload":', 1)[1]) for r in out.records),
              out.tokens, out.reasons)
        for out in routed
    ]


def assert_same(payload: bytes, topic: str = TOPIC, received_at: datetime = NOW) -> Outcome:
    fast = outcome(FAST, payload, topic, received_at)
    assert fast == outcome(PYTHON, payload, topic, received_at), payload
    return fast


def takes_fast_path(payload: bytes, topic: str = TOPIC, received_at: datetime = NOW) -> bool:
    return FAST_ONLY.route(payload, topic, received_at.timestamp()) is not None


def frame(data: str) -> bytes:
    raw = data.encode("latin-1")
    return b"##%04d%s%04X\r\n" % (len(raw), raw, crc16(raw))


def crc_off_by_one(raw: bytes) -> bytes:
    return raw[:-3] + bytes([raw[-3] ^ 1]) + b"\r\n"


def test_simulated_traffic_takes_the_fast_path_with_the_python_paths_records() -> None:
    # Both formats, every station (µg/L metals among them), faults and maintenance flags.
    sim = Simulator(REGISTRY, seed=11, start=datetime(2024, 7, 1, tzinfo=UTC), step=timedelta(hours=1)).readings()
    flags: set[DataFlag] = set()
    formats = set()
    for reading in islice(sim, 3000):
        station = REGISTRY.by_id[reading.station_id]
        topic = f"stations/{station.river}/{station.station_id}/telemetry"
        payload = payload_for(reading, REGISTRY)
        received = reading.time + timedelta(seconds=30)
        assert takes_fast_path(payload, topic, received), payload
        [(_, _, reasons)] = assert_same(payload, topic, received)
        assert reasons == ()
        flags |= {m.flag for m in reading.values.values()}
        formats.add(payload[:2] == b"##")
    assert formats == {True, False}
    assert {DataFlag.NORMAL, DataFlag.FAULT, DataFlag.MAINTENANCE} <= flags


def test_the_fast_record_is_a_valid_enveloped_reading_with_unique_trace_ids() -> None:
    reading = Reading(station_id=METALS.station_id, river=METALS.river, time=NOW,
                      values={"Cd": Measurement(value=0.0008)}, source_format=SourceFormat.JSON)
    topic = f"stations/{METALS.river}/{METALS.station_id}/telemetry"
    payload = encode_json(reading, METALS)
    assert b'"Cd":{"value":0.8' in payload  # sent in µg/L
    records = [FAST.route(Message(topic, payload, NOW, token=1))[0].records[0] for _ in range(3)]
    envelopes = [decode(r.value or b"", Reading) for r in records]
    assert envelopes[0].payload == reading.model_copy(update={"section": METALS.section})
    assert datetime.now(UTC) - envelopes[0].produced_at < timedelta(minutes=1)
    python = PYTHON.route(Message(topic, payload, NOW, token=1))[0].records[0]
    assert len({e.trace_id for e in envelopes} | {decode(python.value or b"", Reading).trace_id}) == 4


@pytest.mark.parametrize(
    "payload",
    [
        b'[{"station_id": "tuo-sanhuangmiao", "time": "2024-01-05T10:30:00+08:00", "values": {"pH": 7}}]',  # list
        b'{"station_id": "tuo-sanhuangmiao", "time": "20240105103000", "values": {"pH": 7}}',  # HJ 212 time
        b'{"station_id": "tuo-sanhuangmiao", "time": "2024-01-05 10:30:00", "values": {"pH": 7}}',  # space
        b'{"station_id": "tuo-sanhuangmiao", "time": "2024-01-05T10:30:00+08:00", "values": {"pH": "7"}}',
        b'{"station_id": "tuo-sanhuangmiao", "time": "2024-01-05T10:30:00+08:00", "values": {"pH": 15}}',
        b'{"station_id": "tuo-sanhuangmiao", "time": "2024-01-05T10:30:00+08:00", "values": {}}',
        b'{"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00+08:00", "values": {"pH": 7}}',  # topic
        frame(f"QN=1;ST=21;CN=2011;PNUM=2;PNO=1;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7&&"),
        frame(f"QN=1;CN=2011;PNUM=4294967297;PNO=1;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7&&"),
        frame(f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7_0&&"),
        frame(f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105193000;w01001-Rtd=7&&"),  # future
        crc_off_by_one(frame(f"QN=1;ST=21;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7&&")),
    ],
)
def test_what_the_fast_path_leaves_to_the_python_path(payload: bytes) -> None:
    assert not takes_fast_path(payload)
    assert_same(payload)


# --- the same outcome for any payload -----------------------------------------------------------
# Generated payloads start valid (so the fast path takes many of them) and get 0-3 faults each,
# drawn from the edge cases of both parsers; the arrival is around the reading's time, so the
# future-time check is hit from both sides.

_zones = st.sampled_from([None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=_zones  # type: ignore[arg-type]
)
_odd_times = st.one_of(
    st.sampled_from(["2024-02-30T10:00:00", "2024-01-05T24:00:00Z", "2024-01-05T10:30:00-00:00", "20240105103000",
                     "2024-01-05T10:30:00.5Z", "2024-01-05T10:30:00+08", "2024-01-05t10:30:00", "2024-01-05",
                     "2024-01-05T10:30:00.1234567Z", "2024-01-05 10:30:00", "0000-01-05T10:30:00Z"]),
    st.integers(0, 2**31), st.none(), st.text(max_size=8),
)
_odd_names = st.one_of(st.sampled_from(["x1", "1x", "", "a" * 65, "w01001", "pH.2", "Cd-", "é"]), st.text(max_size=4))
_odd_numbers = st.one_of(
    st.sampled_from([float("nan"), float("inf"), 2**53 + 1, -(2**64), 1e308, True, None, "7", "abc", -1, 15, 1e-320]),
    st.floats(), st.integers(),
)
_odd_flags = st.one_of(st.sampled_from(["", "NN", "Q", "n", None, 1]), st.text(max_size=2))


def local(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone(timedelta(hours=8)))


def iso(moment: datetime, precision: int) -> str:
    return moment.isoformat(timespec=("seconds", "milliseconds", "microseconds")[precision])


@st.composite
def measurements(draw: st.DrawFn, name: str) -> Any:
    low, high = PARAMETERS[name].physical_range
    number = draw(st.one_of(st.floats(low, min(high, 1e6)), st.integers(int(low), int(min(high, 1e6)))))
    if draw(st.booleans()):
        return number
    return {"value": number, "flag": draw(st.sampled_from([f.value for f in DataFlag]))}


@st.composite
def json_payloads(draw: st.DrawFn) -> tuple[bytes, str, datetime]:
    station = draw(st.sampled_from([STATION, METALS]))
    moment = draw(_datetimes)
    names = draw(st.lists(st.sampled_from(station.parameters), min_size=1, max_size=4, unique=True))
    document: dict[str, Any] = {
        "station_id": station.station_id,
        "time": iso(moment, draw(st.integers(0, 2))),
        "values": {name: draw(measurements(name)) for name in names},
    }
    if draw(st.booleans()):
        document["river"] = station.river
    if draw(st.booleans()):
        document["source_format"] = draw(st.sampled_from([f.value for f in SourceFormat]))
    name = names[0]
    for fault in sorted(draw(st.lists(st.integers(0, 11), max_size=3))):  # the structural ones last
        if fault == 0:
            document["station_id"] = draw(st.sampled_from(["nope", 7, None, "tuo-hongyuan"]))
        elif fault == 1:
            document["time"] = draw(_odd_times)
        elif fault == 2:
            document["values"][draw(_odd_names)] = draw(measurements(name))
        elif fault == 3:
            document["values"][name] = draw(_odd_numbers)
        elif fault == 4:
            document["values"][name] = {"value": draw(_odd_numbers), "flag": draw(st.sampled_from("NDMT"))}
        elif fault == 5:
            document["values"][name] = {"value": 1, "flag": draw(_odd_flags)}
        elif fault == 6:
            extra: dict[str, Any] = draw(st.sampled_from([{}, {"unit": "mg/L"}, {"value": 1, "x": 0}]))
            document["values"][name] = {"flag": "N", **extra}
        elif fault == 7:
            document["river"] = draw(st.sampled_from(["min", None, 3]))
        elif fault == 8:
            document["source_format"] = draw(st.sampled_from(["xml", None, "JSON"]))
        elif fault == 9:
            document[draw(st.sampled_from(["section", "extra", "Time"]))] = draw(st.text(max_size=3))
        elif fault == 10:
            document["values"] = draw(st.sampled_from([{}, [], None]))
        else:
            document.pop(draw(st.sampled_from(["time", "values", "station_id"])), None)
    payload = json.dumps(document).encode()
    if draw(st.booleans()):
        payload = b"[" + payload + b"]" if draw(st.booleans()) else b" \n" + payload + b"\r\n"
    received = local(moment) + timedelta(minutes=draw(st.integers(-120, 120)))
    return payload, f"stations/{station.river}/{station.station_id}/telemetry", received


_odd_head = st.sampled_from(["CN=2051", "CN=9014", "CN=", "MN=x", "MN=", "PNUM=1", "PNUM=3", "PNO=1", "PNO=0",
                             "PNUM=x", "", "bad", "QN=", "CP=1", "Flag=5", "PNUM=01", "PNO=4294967296",
                             "PNUM=4294967297",  # 2**32 + 1: a split packet, not PNUM=1 wrapped around
                             "PNUM=00001", "PNO=00001", "PNUM=" + "1" * 5000])  # at most 4 digits
_odd_cp = st.sampled_from([
    "DataTime=20240105103000123", "DataTime=20240230103000", "DataTime=", "DataTime=2024-01-05T10:30:00",
    "w01001-Rtd=1e1", "w01001-Rtd=-.5", "w01001-Rtd=7.", "w01001-Rtd= 7", "w01001-Rtd=inf", "w01001-Rtd=1_0",
    "w01001-Rtd=+7", "w01001-Rtd=0x1", "w01001-Rtd=", "w01001-Flag=X", "w01001-Flag=", "w01001-Flag=NN",
    "w21003-Avg=0.4", "w21003-Rtd=1e999", "w21003-Min=0.1", "w21003-Max=zz", "w99999-Rtd=3", "-Rtd=1", "x=1", "=1",
    "w01009-Cou=3", "w01001-Rtd=15", "w20115-Rtd=900", "w01001-ZsRtd=1", "pH-Rtd=7",
    # codes of the table: µg/L metals, their surface-water aliases, HJ/T 212-2005 codes, a code outside it
    "w20143-Rtd=5", "w20120-Rtd=4", "w20144-Rtd=0.05", "w20140-Rtd=0.01", "060-Rtd=0.4", "022-Rtd=0.001",
    "B01-Rtd=30", "w00000-Rtd=30", "003-Rtd=12", "831-Rtd=1", "w01012-Rtd=5",
])


@st.composite
def hj212_payloads(draw: st.DrawFn) -> tuple[bytes, str, datetime]:
    station = draw(st.sampled_from([STATION, METALS]))
    moment = local(draw(_datetimes))
    head = ["QN=" + moment.strftime("%Y%m%d%H%M%S000"), "ST=21", "CN=2011", "PW=123456", f"MN={station.mn}", "Flag=4"]
    cp = ["DataTime=" + moment.strftime("%Y%m%d%H%M%S")]
    for name in draw(st.lists(st.sampled_from(station.parameters), min_size=1, max_size=4, unique=True)):
        code = PARAMETERS[name].hj212_code or name
        value = draw(measurements(name))
        number, flag = (value["value"], value["flag"]) if isinstance(value, dict) else (value, None)
        cp.append(f"{code}-Rtd={number}" + (f",{code}-Flag={flag}" if flag else ""))
    for fault in draw(st.lists(st.integers(0, 4), max_size=3)):
        if fault == 0:
            head.insert(draw(st.integers(0, len(head))), draw(_odd_head))
        elif fault == 1:
            cp.insert(draw(st.integers(0, len(cp))), draw(_odd_cp))
        elif fault == 2 and cp:
            cp.pop(draw(st.integers(0, len(cp) - 1)))
        elif fault == 3 and head:
            head.pop(draw(st.integers(0, len(head) - 1)))
        elif fault == 4:
            cp = [field.replace(",", ";") for field in cp]
    received = moment + timedelta(minutes=draw(st.integers(-120, 120)))
    payload = frame(";".join(head) + ";CP=&&" + ";".join(cp) + "&&")
    return payload, f"stations/{station.river}/{station.station_id}/telemetry", received


@settings(max_examples=1000, deadline=None)
@given(json_payloads())
@example((b'{"station_id": "tuo-sanhuangmiao", "time": "2024-01-05T10:30:00+08:00", '
          b'"values": {"pH": 7, "NH3N": {"value": 0.5, "flag": "D"}}}', TOPIC, NOW))
def test_json_payloads_have_the_same_outcome_on_both_paths(drawn: tuple[bytes, str, datetime]) -> None:
    assert_same(*drawn)


@settings(max_examples=1000, deadline=None)
@given(hj212_payloads())
def test_hj212_frames_have_the_same_outcome_on_both_paths(drawn: tuple[bytes, str, datetime]) -> None:
    assert_same(*drawn)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["hj212", "json"]), st.data())
def test_corrupted_station_payloads_have_the_same_outcome_on_both_paths(kind: str, data: st.DataObject) -> None:
    reading = Reading(station_id=METALS.station_id, river=METALS.river, time=NOW,
                      values={"pH": Measurement(value=7.5), "Cd": Measurement(value=0.0008, flag=DataFlag.FAULT)},
                      source_format=SourceFormat.HJ212)
    if kind == "hj212":
        segment = bytearray(build_frame(frame_of(reading, METALS))[6:-6])
    else:
        segment = bytearray(encode_json(reading, METALS))
    position = data.draw(st.integers(0, len(segment) - 1), label="position")
    segment[position] = data.draw(st.sampled_from(b'0123456789.-+eE;,=&"{}:N DxZ\x80'), label="byte")
    payload = frame(segment.decode("latin-1")) if kind == "hj212" else bytes(segment)
    assert_same(payload, f"stations/{METALS.river}/{METALS.station_id}/telemetry")


@pytest.mark.parametrize("last", ["", ";w20143-Rtd=0.9", ";pH-Rtd=7.1", ";x0007-Rtd=1"])
def test_hundreds_of_factors_with_a_repeated_name_anywhere(last: str) -> None:
    # The duplicate-name check of both paths on a frame near the length limit (a set in Rust, no
    # longer a scan of the earlier names per value): w20143 and w20115 are both Cd, "pH" is w01001;
    # a code sent again is one factor whose later field wins, on both paths.
    codes = ";".join(f"x{index:04d}-Rtd={index}" for index in range(600))
    payload = frame(f"QN=1;CN=2011;MN={METALS.mn};CP=&&DataTime=20240105103000;w01001-Rtd=7;w20115-Rtd=0.8;"
                    f"{codes}{last}&&")
    topic = f"stations/{METALS.river}/{METALS.station_id}/telemetry"
    [(records, _, reasons)] = assert_same(payload, topic)
    accepted = last in ("", ";x0007-Rtd=1")
    assert takes_fast_path(payload, topic) is accepted
    assert reasons == (() if accepted else ("schema",))
    assert len(records) == 1


def test_a_json_reading_of_twenty_thousand_values() -> None:
    values = {f"x{index:05d}": index / 7 for index in range(20_000)} | {"pH": 7.5}
    payload = json.dumps({"station_id": STATION.station_id, "time": "2024-01-05T10:30:00+08:00",
                          "values": values}).encode()
    assert takes_fast_path(payload)
    [(records, _, reasons)] = assert_same(payload)
    assert reasons == ()
    assert records[0][2].count(b'"flag":"N"') == 20_001


def test_split_packets_and_their_reassembly_stay_on_the_python_path() -> None:
    reading = Reading(station_id=STATION.station_id, river="tuo", time=NOW, source_format=SourceFormat.HJ212,
                      values={"pH": Measurement(value=7.5), "DO": Measurement(value=8.0)})
    parts = [build_frame(f) for f in split_frame(frame_of(reading, STATION), 2)]
    assert not any(takes_fast_path(p) for p in parts)
    router = Router[int](REGISTRY, readings_topic="readings", dlq_topic="dlq")
    assert router.route(Message(TOPIC, parts[0], NOW, token=1)) == []
    [routed] = router.route(Message(TOPIC, parts[1], NOW, token=2))
    assert routed.tokens == (1, 2)


def test_the_future_tolerance_is_the_routers() -> None:
    payload = frame(f"QN=1;CN=2011;MN={STATION.mn};CP=&&DataTime=20240105120000;w01001-Rtd=7&&")  # 04:00Z
    edge = datetime(2024, 1, 5, 4, 0, tzinfo=UTC) - FUTURE_TOLERANCE
    assert takes_fast_path(payload, received_at=edge)
    assert not takes_fast_path(payload, received_at=edge - timedelta(microseconds=1))
    assert assert_same(payload, received_at=edge - timedelta(seconds=1))[0][2] == ("future_time",)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(1e16)
@example(1.5e-5)
@example(1e-7)
@example(-0.0)
def test_floats_are_written_as_pydantic_writes_them(value: float) -> None:
    assert float_text(value) == to_json(value).decode()
