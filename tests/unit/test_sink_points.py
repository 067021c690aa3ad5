"""Records → InfluxDB points: schema, idempotent timestamps, rejects, and the line encoding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point as ClientPoint
from influxdb_client.domain.write_precision import WritePrecision

from riverguard.errors import PayloadError
from riverguard.incidents import (
    Channel,
    DeliveryOutcome,
    Incident,
    IncidentStatus,
    NotificationReason,
    NotificationRecord,
    Route,
    WarningLevel,
)
from riverguard.models import (
    DataFlag,
    Detection,
    DetectionKind,
    Finding,
    Measurement,
    Reading,
    SourceFormat,
    encode,
)
from riverguard.settings import TopicSettings
from sink.line import Point
from sink.points import reading_points, record_lines, record_points, time_ns

T0 = datetime(2024, 1, 5, 10, 30, 0, 123456, tzinfo=UTC)
TOPICS = TopicSettings()


def reading(**values: float) -> Reading:
    return Reading(
        station_id="tuo-sanhuangmiao",
        river="tuo",
        section="三皇庙",
        time=T0,
        values={k: Measurement(value=v) for k, v in values.items()},
        source_format=SourceFormat.JSON,
    )


def test_a_reading_gives_one_point_per_parameter_with_bounded_tags() -> None:
    r = reading(NH3N=0.42, pH=7.6).model_copy(
        update={"values": {"NH3N": Measurement(value=0.42), "pH": Measurement(value=7.6, flag=DataFlag.CALIBRATION)}}
    )
    points = record_points(TOPICS.readings, encode(r), TOPICS)
    assert [p.tags for p in points] == [
        {"river": "tuo", "station": "tuo-sanhuangmiao", "section": "三皇庙", "parameter": "NH3N"},
        {"river": "tuo", "station": "tuo-sanhuangmiao", "section": "三皇庙", "parameter": "pH"},
    ]
    assert [p.fields for p in points] == [{"value": 0.42, "flag": "N"}, {"value": 7.6, "flag": "C"}]
    assert {p.time_ns for p in points} == {1704450600123456000}


@pytest.mark.parametrize("section", ["三皇庙", "a b,c=d\\", None])
def test_the_reading_fast_path_writes_exactly_the_points_text(section: str | None) -> None:
    r = Reading(
        station_id="tuo-sanhuangmiao",
        river="tuo",
        section=section,
        time=T0,
        values={
            "NH3N": Measurement(value=0.42),
            "pH": Measurement(value=7.0, flag=DataFlag.CALIBRATION),
            "w99.x": Measurement(value=1e-7),
            "conductivity": Measurement(value=12345.125),
        },
        source_format=SourceFormat.JSON,
    )
    expected = [p.to_line_protocol() for p in reading_points(r)]
    assert record_lines(TOPICS.readings, encode(r), TOPICS) == expected


def test_a_replayed_record_maps_to_identical_points() -> None:
    """The point identity (measurement, tags, time) comes from the record, not the clock."""
    raw_first = encode(reading(NH3N=0.42))
    raw_again = encode(reading(NH3N=0.42))  # new envelope: other trace id and produced_at
    assert raw_first != raw_again
    first = [p.to_line_protocol() for p in record_points(TOPICS.readings, raw_first, TOPICS)]
    again = [p.to_line_protocol() for p in record_points(TOPICS.readings, raw_again, TOPICS)]
    assert first == again


def test_a_detection_gives_one_point_per_finding_with_ids_as_fields() -> None:
    d = Detection(
        detection_id="det-1",
        event_id="ev-1",
        station_id="min-pengshan",
        river="min",
        time=T0,
        kind=DetectionKind.LIMIT_EXCEEDANCE,
        findings=(
            Finding(parameter="Cd", value=0.012, limit=0.005, multiple=1.4),
            Finding(parameter="Pb", value=0.02, baseline=0.004),
        ),
        score=8.5,
        confidence=0.9,
        detector="limits",
        message="镉超标 1.4 倍",
    )
    points = record_points(TOPICS.detections, encode(d), TOPICS)
    assert [p.tags["parameter"] for p in points] == ["Cd", "Pb"]
    assert points[0].tags["kind"] == "limit_exceedance"
    assert points[0].fields["multiple"] == 1.4
    assert "limit" not in points[1].fields
    assert points[1].fields["baseline"] == 0.004
    assert all(p.fields["detection_id"] == "det-1" and "detection_id" not in p.tags for p in points)
    assert points[0].time_ns == time_ns(T0, "det-1")


def test_an_incident_record_of_the_alerts_model_maps_to_a_state_point() -> None:
    incident = Incident(
        incident_id="RG-0A1B2C3D",
        key="pollution|tuo|tuo|NH3N",
        route=Route.POLLUTION,
        river="tuo",
        reach="tuo",
        pollutant="NH3N",
        kind=DetectionKind.LIMIT_EXCEEDANCE,
        status=IncidentStatus.ACKNOWLEDGED,
        level=WarningLevel.ORANGE,
        opened_at=T0,
        updated_at=T0 + timedelta(minutes=10),
        last_active_at=T0,
        first_station="tuo-sanhuangmiao",
        peak_multiple=2,
        detection_count=3,
    )
    (point,) = record_points(TOPICS.incidents, encode(incident), TOPICS)
    assert point.measurement == "incident"
    assert point.tags == {
        "river": "tuo", "station": "tuo-sanhuangmiao", "parameter": "NH3N", "level": "orange", "status": "acknowledged"
    }
    assert point.fields["incident_id"] == "RG-0A1B2C3D"
    assert point.fields["peak_multiple"] == 2.0
    assert isinstance(point.fields["peak_multiple"], float)  # an int now and a float later would conflict
    assert point.fields["opened_at"] == "2024-01-05T10:30:00.123456Z"  # as the record carries it
    assert point.time_ns == time_ns(T0 + timedelta(minutes=10), "RG-0A1B2C3D")


def test_a_notification_record_keeps_only_the_scheme_of_its_target() -> None:
    record = NotificationRecord(
        record_id="n-1#2",
        notification_id="n-1",
        incident_id="RG-1",
        target_id="duty-tuo",
        target="dingtalk://secret-token@robot/",
        channel=Channel.IM,
        reason=NotificationReason.OPENED,
        level=WarningLevel.YELLOW,
        river="tuo",
        attempt=2,
        outcome=DeliveryOutcome.FAILED,
        at=T0,
        error="timeout",
    )
    (point,) = record_points(TOPICS.notifications, encode(record), TOPICS)
    assert point.tags == {"channel": "im", "outcome": "failed", "river": "tuo"}
    assert point.fields["target"] == "dingtalk://…"
    assert "secret-token" not in point.to_line_protocol()
    assert point.fields["attempt"] == 2
    assert point.time_ns == time_ns(T0, "n-1#2")


def test_two_ids_at_the_same_microsecond_are_two_points_and_one_id_is_one() -> None:
    assert time_ns(T0, "n-1#1") != time_ns(T0, "n-2#1")
    assert time_ns(T0, "n-1#1") == time_ns(T0, "n-1#1")
    assert time_ns(T0, "n-1#1") // 1000 == time_ns(T0) // 1000


@pytest.mark.parametrize(
    ("topic", "raw", "fragment"),
    [
        (TOPICS.readings, b"not json", "telemetry.readings"),
        (TOPICS.readings, b'{"type": "Reading", "payload": {"station_id": "x"}}', "payload.river"),
        (TOPICS.incidents, b'{"payload": {"river": "tuo", "updated_at": "2024-01-05T10:30:00Z"}}', "incident_id"),
        (TOPICS.incidents, b'{"payload": {"incident_id": "i", "river": "tuo", "updated_at": "soon"}}', "'soon'"),
        (TOPICS.notifications, b'{"payload": [1]}', "payload"),
        ("some.other.topic", b"{}", "no mapping"),
    ],
)
def test_unmappable_records_raise_a_payload_error_naming_the_problem(topic: str, raw: bytes, fragment: str) -> None:
    with pytest.raises(PayloadError) as caught:
        record_points(topic, raw, TOPICS)
    assert fragment in str(caught.value)


def test_a_tombstone_has_no_points() -> None:
    assert record_points(TOPICS.incidents, None, TOPICS) == []


texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)
field_values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**63 - 1), st.booleans(), texts
)


@given(
    tags=st.dictionaries(texts.filter(lambda t: not t.startswith("_")), texts, max_size=4),
    fields=st.dictionaries(texts, field_values, min_size=1, max_size=4),
    stamp=st.integers(0, 2**62),
)
def test_line_encoding_matches_the_influxdb_client(tags: dict[str, str], fields: dict[str, object], stamp: int) -> None:
    ours = Point("reading")
    theirs = ClientPoint("reading")  # type: ignore[no-untyped-call]
    for k, v in tags.items():
        ours.tag(k, v)
        theirs.tag(k, v)  # type: ignore[no-untyped-call]
    for k, fv in fields.items():
        assert isinstance(fv, bool | int | float | str)
        ours.field(k, fv)
        theirs.field(k, fv)  # type: ignore[no-untyped-call]
    ours.time(stamp)
    theirs.time(stamp, WritePrecision.NS)  # type: ignore[no-untyped-call]
    assert ours.to_line_protocol() == theirs.to_line_protocol()  # type: ignore[no-untyped-call]
