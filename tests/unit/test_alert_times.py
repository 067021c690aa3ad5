"""Reading time and processing time; times said as when the message is sent; the maintenance digest."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from alerts.book import Context, IncidentBook
from alerts.messages import MessageContext, render
from alerts.routing import RoutingConfig
from alerts.targets import Directory, Target
from riverguard.incidents import (
    Channel,
    DeliveryOutcome,
    Incident,
    IncidentStatus,
    IntakeArrival,
    NotificationReason,
    OutboxEntry,
    Route,
    WarningLevel,
)
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding

BJ = timedelta(hours=8)
T0 = datetime(2024, 7, 3, 0, 40, tzinfo=UTC)  # 08:40 Beijing
TARGETS = Directory((Target("sms", frozenset({"duty"}), Channel.SMS, "json://sms"),
                     Target("ops", frozenset({"ops"}), Channel.IM, "json://ops"),
                     Target("gateway", frozenset({"duty"}), Channel.SMS_TEMPLATE, "aliyunsms://***")))
ROUTING = {
    "routes": [{"name": "duty", "match": {"route": "pollution"}, "notify": ["duty"]},
               {"name": "ops", "match": {"route": "maintenance"}, "notify": ["ops"]}],
    "escalation": {"reminder_every_min": None},
    "lifecycle": {"resolve_after_min": 60, "reopen_within_min": 60},
}
# 简阳: the fast band reaches it at 12:40 Beijing, the nominal forecast at 14:52 (issue 16's demo)
JIANYANG = IntakeArrival(name="简阳城区取水口", river_km=58.0, leading_edge_at=datetime(2024, 7, 3, 6, 52, tzinfo=UTC),
                         leading_edge_fast_at=datetime(2024, 7, 3, 4, 40, tzinfo=UTC),
                         trailing_edge_at=datetime(2024, 7, 3, 10, 0, tzinfo=UTC))


def book(**overrides: object) -> IncidentBook:
    return IncidentBook(RoutingConfig.model_validate({**ROUTING, **overrides}), TARGETS)


def detection(at: datetime, *, multiple: float = 1.5, kind: DetectionKind = DetectionKind.LIMIT_EXCEEDANCE,
              parameter: str = "NH3N", station: str = "tuo-hongyuan", phase: DetectionPhase = DetectionPhase.ONSET,
              event: str | None = None) -> Detection:
    return Detection(detection_id=f"{event}-{parameter}-{at.isoformat()}-{phase.value}",
                     event_id=event or f"{station}-{parameter}-{kind.value}", station_id=station, river="tuo", time=at,
                     kind=kind, phase=phase, detector="test",
                     findings=(Finding(parameter=parameter, value=1 + multiple, limit=1.0, multiple=multiple,
                                       unit="mg/L"),))


def pending(b: IncidentBook, target: str, reason: NotificationReason) -> tuple[Incident, OutboxEntry]:
    return next((i, e) for i, e in b.due(datetime.max.replace(tzinfo=UTC)) if e.target_id == target
                and e.reason is reason)


def test_an_sms_states_one_notion_of_arrival_as_clock_times_at_send_time() -> None:
    b = book()
    b.observe(detection(T0), Context(station_km=20.0, intakes=(JIANYANG,)), T0)
    incident, opened = pending(b, "sms", NotificationReason.OPENED)
    at_1235 = datetime(2024, 7, 3, 4, 35, tzinfo=UTC)  # sent late, at 12:35 Beijing
    text = render(incident, opened, MessageContext(), at_1235).body
    assert "简阳城区取水口最早12:40、预计14:52到达" in text
    assert "小时" not in text  # no hours that go stale between writing and reading
    # the level's reason names the same two times, and when it was assessed
    why = incident.level_reasons[-1].zh
    assert "最早07-03 12:40、预计07-03 14:52到达" in why
    assert "07-03 08:40时" in why
    # five minutes later the fast band may have arrived: the message says "may", and still both times
    text = render(incident, opened, MessageContext(), at_1235 + timedelta(minutes=10)).body
    assert "污染团可能已到简阳城区取水口（最早12:40，预计14:52）" in text


def test_readings_processed_late_say_their_time_and_how_late() -> None:
    b = book()
    reading = T0
    processed = T0 + timedelta(hours=3, minutes=12)  # after an outage the backlog comes through
    effects = b.observe(detection(reading), Context(), processed)
    incident = next(iter(effects.incidents.values()))
    assert (incident.first_reading_at, incident.reading_at, incident.opened_at) == (reading, reading, processed)
    assert incident.lag == timedelta(hours=3, minutes=12)
    _, entry = pending(b, "sms", NotificationReason.OPENED)
    assert (entry.reading_at, entry.created_at) == (reading, processed)
    text = render(incident, entry, MessageContext(), processed).body
    assert "（数据时间07-03 08:40，晚到3.2小时）" in text
    im = render(incident, entry, MessageContext(), processed).body
    assert "07-03 08:40" in im
    record = b.record_attempt(incident.incident_id, entry.notification_id, "sms", ok=True, error="",
                              now=processed, title="").records[0]
    assert (record.reading_at, record.at, record.outcome) == (reading, processed, DeliveryOutcome.SENT)
    # a live reading is not late
    live = book()
    live.observe(detection(T0), Context(), T0 + timedelta(minutes=2))
    incident, entry = pending(live, "sms", NotificationReason.OPENED)
    assert "晚到" not in render(incident, entry, MessageContext(), T0 + timedelta(minutes=2)).body


def test_gateway_templates_get_short_named_fields() -> None:
    b = book()
    b.observe(detection(T0, multiple=2.2), Context(station_km=20.0, intakes=(JIANYANG,)), T0)
    incident, entry = pending(b, "gateway", NotificationReason.OPENED)
    message = render(incident, entry, MessageContext(station_names={"tuo-hongyuan": "宏缘"}), T0)
    fields = json.loads(message.body)
    assert fields == {"level": "橙色预警", "river": "沱江", "station": "宏缘", "event": "氨氮超标2.2倍",
                      "outlook": "简阳城区 最早12:40 预计14:52", "incident": incident.incident_id}
    assert max(len(v) for v in fields.values()) <= 20


def test_a_station_with_several_faults_is_one_incident_that_resolves_when_all_clear() -> None:
    b = book()
    for n, parameter in enumerate(("NH3N", "TP")):
        b.observe(detection(T0, kind=DetectionKind.SENSOR_FAULT, parameter=parameter), Context(),
                  T0 + timedelta(minutes=n))
    b.observe(detection(T0, kind=DetectionKind.DATA_GAP, parameter="pH"), Context(), T0 + timedelta(minutes=2))
    (incident,) = b.incidents()
    assert (incident.route, incident.parameters) == (Route.MAINTENANCE, ("NH3N", "TP", "pH"))
    assert incident.kinds == (DetectionKind.SENSOR_FAULT, DetectionKind.DATA_GAP)
    assert [e.reason for e in incident.outbox] == [NotificationReason.OPENED]  # one message, not three
    clear = T0 + timedelta(minutes=10)
    for parameter, kind in (("NH3N", DetectionKind.SENSOR_FAULT), ("pH", DetectionKind.DATA_GAP)):
        b.observe(detection(clear, kind=kind, parameter=parameter, phase=DetectionPhase.CLEARED), Context(), clear)
    b.tick(clear + timedelta(hours=2))
    (incident,) = b.incidents()
    assert incident.status is IncidentStatus.OPEN  # TP still faulty
    b.observe(detection(clear, kind=DetectionKind.SENSOR_FAULT, parameter="TP", phase=DetectionPhase.CLEARED),
              Context(), clear + timedelta(hours=2))
    b.tick(clear + timedelta(hours=3))
    (incident,) = b.incidents()
    assert incident.status is IncidentStatus.RESOLVED


def test_the_daily_digest_lists_the_days_maintenance_incidents_once() -> None:
    b = book(digest={"notify": ["ops"], "at": "08:00"})
    day_before = datetime(2024, 7, 2, 1, 0, tzinfo=UTC)  # 09:00 Beijing the day before
    for station in ("tuo-hongyuan", "tuo-damozi"):
        b.observe(detection(day_before, kind=DetectionKind.SENSOR_FAULT, station=station), Context(), day_before)
    b.observe(detection(day_before, kind=DetectionKind.LIMIT_EXCEEDANCE, multiple=0.5), Context(), day_before)
    assert not any(e.reason is NotificationReason.DIGEST for i in b.incidents() for e in i.outbox)
    eight = datetime(2024, 7, 3, 0, 0, tzinfo=UTC)  # 08:00 Beijing
    b.tick(eight - timedelta(minutes=1))  # yesterday's digest (due 07-02 08:00) had nothing to list
    assert not any(e.reason is NotificationReason.DIGEST for i in b.incidents() for e in i.outbox)
    b.tick(eight)
    digests = [(i, e) for i in b.incidents() for e in i.outbox if e.reason is NotificationReason.DIGEST]
    assert [(e.stage, e.target_id) for _, e in digests] == [(20240703, "ops")]
    carrier, today = digests[-1]
    assert {c.route for c in today.covers} == {Route.MAINTENANCE}
    assert {c.station for c in today.covers} == {"tuo-hongyuan", "tuo-damozi"}
    assert {c.level for c in today.covers} == {WarningLevel.BLUE}
    text = render(carrier, today, MessageContext(station_names={"tuo-hongyuan": "宏缘", "tuo-damozi": "大磨子"}),
                  eight).body
    assert text.startswith("### 【运维日报·07-03】2个站点有仪器事件")
    assert "宏缘站 仪器故障：氨氮（未确认，07-02 09:00起）" in text
    b.tick(eight + timedelta(hours=5))
    restored = book(digest={"notify": ["ops"], "at": "08:00"})
    restored.restore(b.incidents())
    restored.tick(eight + timedelta(hours=6))
    assert sum(e.reason is NotificationReason.DIGEST for i in restored.incidents() for e in i.outbox) == 1
