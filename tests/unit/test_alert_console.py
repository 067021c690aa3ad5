"""The book's operator actions for the console (issue 20): runtime silences, checklist ticks, verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.book import Context, IncidentBook
from alerts.errors import SilenceError
from alerts.routing import RoutingConfig
from alerts.targets import Directory, Target
from riverguard.incidents import (
    Channel,
    DeliveryOutcome,
    DeliveryStatus,
    Incident,
    NotificationReason,
    Silence,
    SilenceRecord,
    Verdict,
)
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
ROUTING = {"routes": [{"name": "all", "notify": ["duty"]}], "escalation": {"reminder_every_min": 10},
           "silences": [{"station": "min-yuelai", "until": "2030-01-01T00:00:00+08:00", "reason": "断面迁移"}]}


def book() -> IncidentBook:
    return IncidentBook(RoutingConfig.model_validate(ROUTING), Directory((Target("d", frozenset({"duty"}),
                                                                                 Channel.IM, "json://d"),)))


def detection(n: int = 0, station: str = "tuo-damozi", parameter: str = "NH3N") -> Detection:
    phase = DetectionPhase.ONSET if n == 0 else DetectionPhase.UPDATE
    return Detection(detection_id=f"d{n}", event_id=f"e-{station}-{parameter}", station_id=station,
                     river=station.split("-", maxsplit=1)[0], time=T0 + timedelta(minutes=n),
                     kind=DetectionKind.LIMIT_EXCEEDANCE, phase=phase,
                     findings=(Finding(parameter=parameter, value=3.0, limit=1.0, multiple=2.0, unit="mg/L"),),
                     detector="test")


def only(b: IncidentBook) -> Incident:
    (incident,) = b.incidents()
    return incident


def test_a_silence_holds_back_what_is_pending_shows_on_the_incident_and_persists() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    silence = Silence(river="tuo", pollutant="NH3N", until=T0 + timedelta(hours=4), reason="上游企业报备的检修排放")
    record, effects = b.add_silence(silence, "值班员张三", T0 + timedelta(minutes=1))
    assert effects.silences == {record.silence_id: record}
    incident = only(b)
    assert effects.incidents == {incident.incident_id: incident}
    assert (incident.silence_id, incident.outbox[0].status) == (record.silence_id, DeliveryStatus.SUPPRESSED)
    assert "检修排放" in incident.silenced_by
    assert [(r.outcome, r.notification_id) for r in effects.records] == [
        (DeliveryOutcome.SUPPRESSED, incident.outbox[0].notification_id)
    ]
    assert [h.what for h in incident.history][-1] == "silenced"
    b.tick(T0 + timedelta(minutes=11))  # the reminder is held back too
    assert [e.status for e in only(b).outbox if e.reason is NotificationReason.REMINDER] == [DeliveryStatus.SUPPRESSED]
    # the record is plain data: a restarted book restores it from what was persisted
    restored = book()
    restored.restore([only(b)])
    restored.restore_silences([SilenceRecord.model_validate_json(record.model_dump_json())])
    assert [r.silence_id for r in restored.silences(T0 + timedelta(minutes=12))] == ["routing:0", record.silence_id]


def test_expiring_a_silence_lets_notifications_through_again() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    record, _ = b.add_silence(Silence(river="tuo", until=T0 + timedelta(hours=4), reason="演练"), "张三", T0)
    effects = b.expire_silence(record.silence_id, "李四", T0 + timedelta(minutes=5))
    expired = effects.silences[record.silence_id]
    assert (expired.expired_by, expired.expired_at) == ("李四", T0 + timedelta(minutes=5))
    assert only(b).silence_id == ""
    assert record.silence_id not in {r.silence_id for r in b.silences(T0 + timedelta(minutes=5))}
    b.tick(T0 + timedelta(minutes=11))
    assert [e.status for e in only(b).outbox if e.reason is NotificationReason.REMINDER] == [DeliveryStatus.PENDING]


def test_silence_errors_name_the_silence() -> None:
    b = book()
    with pytest.raises(SilenceError, match="routing file"):
        b.expire_silence("routing:0", "张三", T0)
    with pytest.raises(SilenceError, match="SIL-NOPE"):
        b.expire_silence("SIL-NOPE", "张三", T0)
    with pytest.raises(ValueError, match="station or a river"):
        Silence(until=T0, reason="everything")


def test_a_maintenance_window_set_at_runtime_reroutes_the_station() -> None:
    b = book()
    window = Silence(kind="maintenance", station="tuo-damozi", until=T0 + timedelta(hours=2), reason="换探头")
    b.add_silence(window, "运维李四", T0)
    b.observe(detection(1), Context(), T0 + timedelta(minutes=1))
    assert only(b).route.value == "maintenance"


def test_checklist_ticks_keep_who_and_when_per_action() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    incident_id = only(b).incident_id
    b.tick_action(incident_id, "1", "张三", T0 + timedelta(minutes=3))
    b.tick_action(incident_id, "2", "李四", T0 + timedelta(minutes=4))
    b.tick_action(incident_id, "1", "王五", T0 + timedelta(minutes=5), done=False)
    assert b.tick_action(incident_id, "1", "王五", T0 + timedelta(minutes=6), done=False).incidents == {}
    ticks = {t.action_id: (t.done, t.by, t.at) for t in only(b).checklist}
    assert ticks == {"1": (False, "王五", T0 + timedelta(minutes=5)), "2": (True, "李四", T0 + timedelta(minutes=4))}
    assert [(h.what, h.by, h.note) for h in only(b).history[-3:]] == [
        ("action_done", "张三", "1"), ("action_done", "李四", "2"), ("action_undone", "王五", "1")
    ]


def test_a_verdict_is_recorded_on_resolve_and_can_be_given_later() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    incident_id = only(b).incident_id
    b.resolve(incident_id, "张三", T0 + timedelta(hours=1), "探头污染", verdict=Verdict.INSTRUMENT_FAULT)
    assert only(b).verdict is Verdict.INSTRUMENT_FAULT
    effects = b.resolve(incident_id, "科长", T0 + timedelta(hours=2), verdict=Verdict.FALSE_ALARM)
    assert effects.incidents[incident_id].verdict is Verdict.FALSE_ALARM
    assert (only(b).history[-1].what, only(b).history[-1].note) == ("verdict", "false_alarm")
    assert only(b).resolved_by == "张三"
