"""Verdict labels per station (riverguard.verdicts) from incidents the real book resolved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.book import Context, IncidentBook
from alerts.routing import RoutingConfig
from alerts.targets import Directory, Target
from riverguard.incidents import Channel, Incident, Verdict
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding
from riverguard.verdicts import StationRecord, station_records, station_verdicts

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)


def book() -> IncidentBook:
    return IncidentBook(RoutingConfig.model_validate({"routes": [{"name": "all", "notify": ["duty"]}]}),
                        Directory((Target("d", frozenset({"duty"}), Channel.IM, "json://d"),)))


def seen(b: IncidentBook, station: str, minutes: int, event: str = "e1") -> None:
    detection = Detection(
        detection_id=f"{event}-{station}-{minutes}", event_id=f"{event}-{station}", station_id=station, river="tuo",
        time=T0 + timedelta(minutes=minutes), kind=DetectionKind.LIMIT_EXCEEDANCE, phase=DetectionPhase.ONSET,
        findings=(Finding(parameter="NH3N", value=3.0, limit=1.0, multiple=2.0, unit="mg/L"),), detector="test")
    b.observe(detection, Context(), T0 + timedelta(minutes=minutes + 2))


def only(b: IncidentBook) -> Incident:
    (incident,) = b.incidents()
    return incident


def test_one_label_per_station_with_who_when_and_the_reading_window() -> None:
    b = book()
    seen(b, "tuo-jiaoxiancun", 0)
    seen(b, "tuo-damozi", 40)
    assert station_verdicts(only(b)) == []  # no verdict, no label
    incident_id = only(b).incident_id
    b.resolve(incident_id, "张三", T0 + timedelta(hours=2), "探头附着物", verdict=Verdict.FALSE_ALARM)
    labels = station_verdicts(only(b))
    assert [(v.station_id, v.verdict, v.by, v.at) for v in labels] == [
        ("tuo-jiaoxiancun", Verdict.FALSE_ALARM, "张三", T0 + timedelta(hours=2)),
        ("tuo-damozi", Verdict.FALSE_ALARM, "张三", T0 + timedelta(hours=2)),
    ]
    assert {(v.window_start, v.window_end, v.parameters) for v in labels} == {
        (T0, T0 + timedelta(minutes=40), ("NH3N",))}
    # corrected later by someone else: the label says who and when, and replaces the first
    b.resolve(incident_id, "科长", T0 + timedelta(days=1), verdict=Verdict.CONFIRMED_POLLUTION)
    corrected = station_verdicts(only(b))
    assert {(v.verdict, v.by, v.at) for v in corrected} == {
        (Verdict.CONFIRMED_POLLUTION, "科长", T0 + timedelta(days=1))}
    assert [v.label_id for v in corrected] == [v.label_id for v in labels]


def test_the_false_alarm_rate_leaves_drills_out() -> None:
    b = book()
    for n, verdict in enumerate((Verdict.FALSE_ALARM, Verdict.DRILL, Verdict.INSTRUMENT_FAULT, Verdict.FALSE_ALARM)):
        seen(b, "tuo-jiaoxiancun", 600 * n, event=f"e{n}")
        incident = next(i for i in b.incidents() if i.is_active)
        b.resolve(incident.incident_id, "张三", T0 + timedelta(minutes=600 * n + 60), verdict=verdict)
    record = station_records(b.incidents())["tuo-jiaoxiancun"]
    assert (record.false_alarms, record.judged, record.false_alarm_rate) == (2, 3, 2 / 3)
    assert [v.verdict for v in record.verdicts] == [Verdict.FALSE_ALARM, Verdict.INSTRUMENT_FAULT, Verdict.DRILL,
                                                   Verdict.FALSE_ALARM]  # newest first
    assert StationRecord.of(()).false_alarm_rate is None
