from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from riverguard.errors import describe_validation_error
from riverguard.models import DataFlag, Detection, DetectionKind, Measurement, Reading, SourceFormat, decode, encode
from riverguard.parameters import WaterClass, classify, exceedance_multiple, section_class

T0 = datetime(2024, 1, 5, 2, 30, tzinfo=UTC)


def reading(**values: float) -> Reading:
    return Reading(
        station_id="tuo-sanhuangmiao",
        river="tuo",
        time=T0,
        values={k: Measurement(value=v) for k, v in values.items()},
        source_format=SourceFormat.JSON,
    )


def test_envelope_round_trip_keeps_payload_and_trace_id() -> None:
    original = reading(NH3N=0.4, pH=7.6)
    envelope = decode(encode(original, trace_id="abc"), Reading)
    assert envelope.payload == original
    assert envelope.trace_id == "abc"
    assert envelope.type == "Reading"
    assert envelope.schema_version == 1


@pytest.mark.parametrize("trace_id", [None, "abc", 'quote " and \\ backslash', "超标"])
def test_encoded_bytes_are_what_the_envelope_model_serialises(trace_id: str | None) -> None:
    # encode() writes the envelope around the payload's JSON by hand, for speed.
    raw = encode(reading(NH3N=0.4, pH=7.6), trace_id=trace_id)
    envelope = decode(raw, Reading)
    assert envelope.model_dump_json().encode() == raw
    if trace_id is not None:
        assert envelope.trace_id == trace_id
    detection = Detection(detection_id="d", event_id="e", station_id="s1", river="tuo", time=T0,
                          kind=DetectionKind.POLLUTION_SPIKE, detector="x", readings=(reading(TP=0.1),))
    raw = encode(detection)
    assert decode(raw, Detection).model_dump_json().encode() == raw


def test_physical_range_violation_names_parameter_and_value() -> None:
    with pytest.raises(ValidationError) as info:
        reading(pH=15.0)
    assert "pH=15.0 is outside the physical range 0..14" in describe_validation_error(info.value)


def test_non_finite_value_is_rejected_naming_the_parameter() -> None:
    raw = (b'{"station_id": "s1", "river": "tuo", "time": "2024-01-05T10:30:00Z", '
           b'"values": {"NH3N": {"value": NaN}}, "source_format": "json"}')
    with pytest.raises(ValidationError) as info:
        Reading.model_validate_json(raw)
    assert describe_validation_error(info.value).startswith("values.NH3N.value=nan")
    with pytest.raises(ValidationError):
        Measurement(value=float("inf"))


def test_parameter_names_must_be_identifiers() -> None:
    with pytest.raises(ValidationError) as info:
        Reading.model_validate(
            {"station_id": "s1", "river": "tuo", "time": T0, "values": {"NH3 N": {"value": 1.0}},
             "source_format": "json"}
        )
    assert "NH3 N" in describe_validation_error(info.value)


def test_instrument_flags_skip_the_physical_range_check() -> None:
    r = Reading(
        station_id="s1",
        river="tuo",
        time=T0,
        values={"pH": Measurement(value=99.0, flag=DataFlag.FAULT)},
        source_format=SourceFormat.HJ212,
    )
    assert r.normal_values() == {}


def test_naive_timestamp_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        Reading.model_validate(
            {"station_id": "s", "river": "tuo", "time": "2024-01-05T10:30:00", "values": {"pH": {"value": 7}},
             "source_format": "json"}
        )
    assert describe_validation_error(info.value).startswith("time='2024-01-05T10:30:00'")


def test_newer_schema_version_is_refused() -> None:
    raw = encode(reading(pH=7.0)).replace(b'"schema_version":1', b'"schema_version":9')
    with pytest.raises(ValidationError, match="schema_version 9 is newer"):
        decode(raw, Reading)


def test_detection_kinds_split_pollution_from_instrument_findings() -> None:
    pollution = {k for k in DetectionKind if k.is_pollution}
    assert pollution == {DetectionKind.POLLUTION_SPIKE, DetectionKind.LIMIT_EXCEEDANCE, DetectionKind.CLASS_DOWNGRADE}
    d = Detection(detection_id="d", event_id="e", station_id="s", river="tuo", time=T0,
                  kind=DetectionKind.SENSOR_FAULT, detector="health")
    assert not d.kind.is_pollution


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [("NH3N", 0.15, WaterClass.I), ("NH3N", 1.0, WaterClass.III), ("NH3N", 2.5, WaterClass.WORSE_THAN_V),
     ("DO", 7.5, WaterClass.I), ("DO", 4.0, WaterClass.IV), ("DO", 1.0, WaterClass.WORSE_THAN_V),
     ("pH", 5.5, WaterClass.WORSE_THAN_V), ("Cd", 0.004, WaterClass.II)],
)
def test_gb3838_single_factor_class(parameter: str, value: float, expected: WaterClass) -> None:
    assert classify(parameter, value) is expected


def test_exceedance_multiple_of_do_and_ph() -> None:
    assert exceedance_multiple("DO", 2.5, WaterClass.III) == pytest.approx(0.5)
    assert exceedance_multiple("pH", 10.8, WaterClass.III) == pytest.approx(0.2)
    assert section_class({"temperature": 40.0}) is None
