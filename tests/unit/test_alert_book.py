"""The incident book: grouping, lifecycle, escalation, silences, rate limits, retries (pure, manual time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.book import Context, IncidentBook, incident_id_for
from alerts.errors import IncidentStateError, UnknownIncidentError
from alerts.messages import MessageContext, render
from alerts.routing import RoutingConfig
from alerts.targets import Directory, Target
from riverguard.incidents import (
    Channel,
    DeliveryOutcome,
    DeliveryStatus,
    Incident,
    IncidentStatus,
    IntakeArrival,
    NotificationReason,
    OutboxEntry,
    Route,
    WarningLevel,
)
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding
from riverguard.parameters import PollutantClass

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)

ROUTING = {
    "routes": [
        {"name": "tuo-duty", "match": {"river": ["tuo"], "route": "pollution"}, "notify": ["tuo-duty"]},
        {"name": "red", "match": {"min_level": "red", "route": "pollution"}, "notify": ["bureau"]},
        {"name": "ops", "match": {"route": "maintenance"}, "notify": ["ops"]},
    ],
    "escalation": {
        "min_level": "yellow",
        "stages": [{"after_min": 15, "notify": ["chief"]}, {"after_min": 30, "notify": ["bureau"]}],
        "reminder_every_min": 10,
        "max_reminders": 2,
    },
    "rate_limits": {"default": {"burst": 100, "per_hour": 100}},
    "lifecycle": {"resolve_after_min": 30, "reopen_within_min": 60},
    "retry": {"base_s": 10, "max_s": 60, "max_attempts": 3},
}


def targets() -> Directory:
    return Directory(
        (
            Target("duty-sms", frozenset({"tuo-duty"}), Channel.SMS, "json://duty"),
            Target("chief-im", frozenset({"chief"}), Channel.IM, "json://chief"),
            Target("bureau-mail", frozenset({"bureau"}), Channel.EMAIL, "mailto://bureau"),
            Target("ops-im", frozenset({"ops"}), Channel.IM, "json://ops"),
        )
    )


def book(**overrides: object) -> IncidentBook:
    return IncidentBook(RoutingConfig.model_validate({**ROUTING, **overrides}), targets())


def detection(
    n: int = 0,
    *,
    station: str = "tuo-jiaoxiancun",
    event: str = "evt-1",
    multiple: float | None = 1.5,
    parameter: str = "NH3N",
    kind: DetectionKind = DetectionKind.LIMIT_EXCEEDANCE,
    phase: DetectionPhase = DetectionPhase.ONSET,
    river: str = "tuo",
) -> Detection:
    value = 1.0 * (1 + (multiple or 0))
    findings = (Finding(parameter=parameter, value=value, limit=1.0, multiple=multiple, unit="mg/L"),)
    return Detection(
        detection_id=f"{event}-{n}",
        event_id=event,
        station_id=station,
        river=river,
        time=T0 + timedelta(minutes=n),
        kind=kind,
        phase=phase,
        findings=findings if kind.is_pollution else (),
        detector="test",
    )


def only(b: IncidentBook) -> Incident:
    incidents = b.incidents()
    assert len(incidents) == 1
    return incidents[0]


def targets_of(incident: Incident, reason: NotificationReason) -> set[str]:
    return {e.target_id for e in incident.outbox if e.reason is reason}


def intake(name: str, km: float, leading: datetime, passing: timedelta = timedelta(hours=3)) -> IntakeArrival:
    """A playbook's forecast for one intake: the fast band an hour early, the tail ``passing`` later."""
    return IntakeArrival(name=name, river_km=km, leading_edge_at=leading,
                         leading_edge_fast_at=leading - timedelta(hours=1), trailing_edge_at=leading + passing)


def deliver_due(b: IncidentBook, now: datetime) -> None:
    """What the service does between batches: send everything due, successfully."""
    for incident, entry in b.due(now):
        b.record_attempt(incident.incident_id, entry.notification_id, entry.target_id, ok=True, error="", now=now,
                         title="t")


def test_first_detection_opens_an_incident_and_pages_the_route() -> None:
    b = book()
    effects = b.observe(detection(), Context(city="内江"), T0)
    incident = only(b)
    assert incident.incident_id == incident_id_for("evt-1")
    assert incident.level is WarningLevel.YELLOW
    assert incident.route is Route.POLLUTION
    assert targets_of(incident, NotificationReason.OPENED) == {"duty-sms"}
    assert list(effects.incidents) == [incident.incident_id]
    assert [e for _, e in b.due(T0)] == list(incident.outbox)


def test_later_detections_update_the_same_incident_and_raise_the_level() -> None:
    b = book()
    b.observe(detection(0, multiple=1.5), Context(), T0)
    deliver_due(b, T0)
    b.observe(detection(1, multiple=0.5, station="tuo-damozi", event="evt-2"), Context(), T0 + timedelta(minutes=5))
    update = detection(2, multiple=12.0, event="evt-1", phase=DetectionPhase.UPDATE)
    b.observe(update, Context(), T0 + timedelta(minutes=6))
    incident = only(b)
    assert incident.stations == ("tuo-jiaoxiancun", "tuo-damozi")
    assert incident.peak_multiple == 12.0
    assert incident.level is WarningLevel.RED
    assert "≥ 10 倍" in incident.level_reasons[0].zh
    assert targets_of(incident, NotificationReason.OPENED) == {"duty-sms"}
    # red brings the bureau route in: the raise goes to the duty officer and the bureau
    assert targets_of(incident, NotificationReason.LEVEL_RAISED) == {"duty-sms", "bureau-mail"}


def test_replayed_detections_queue_nothing_twice() -> None:
    b = book()
    for _ in range(3):
        b.observe(detection(0), Context(), T0)
    assert len(only(b).outbox) == 1


def test_sensor_faults_go_to_the_maintenance_route_only() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    b.observe(detection(kind=DetectionKind.SENSOR_FAULT, event="evt-f"), Context(), T0)
    maintenance = next(i for i in b.incidents() if i.route is Route.MAINTENANCE)
    assert maintenance.level is WarningLevel.BLUE
    assert {e.target_id for e in maintenance.outbox} == {"ops-im"}
    pollution = next(i for i in b.incidents() if i.route is Route.POLLUTION)
    assert "ops-im" not in {e.target_id for e in pollution.outbox}


def test_maintenance_window_turns_pollution_detections_into_maintenance() -> None:
    window = [{"kind": "maintenance", "station": "tuo-jiaoxiancun", "until": "2024-06-02T00:00:00+08:00",
               "reason": "更换探头"}]
    b = book(silences=window)
    b.observe(detection(multiple=20.0), Context(), T0)
    assert only(b).route is Route.MAINTENANCE


def test_escalation_runs_on_schedule_until_acknowledged() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    incident_id = only(b).incident_id
    b.tick(T0 + timedelta(minutes=14))
    assert targets_of(only(b), NotificationReason.ESCALATION) == set()
    b.tick(T0 + timedelta(minutes=15))
    assert targets_of(only(b), NotificationReason.ESCALATION) == {"chief-im"}
    assert only(b).escalation_stage == 1
    b.acknowledge(incident_id, "张三", T0 + timedelta(minutes=16))
    for minute in range(17, 59):  # at 60 min without detections it resolves by itself
        b.tick(T0 + timedelta(minutes=minute))
    incident = only(b)
    assert incident.status is IncidentStatus.ACKNOWLEDGED
    assert incident.escalation_stage == 1
    assert "bureau-mail" not in {e.target_id for e in incident.outbox}
    assert all(e.created_at < T0 + timedelta(minutes=16) for e in incident.outbox)


def test_reminders_repeat_while_unacknowledged_up_to_the_limit() -> None:
    b = book(escalation={"min_level": "yellow", "reminder_every_min": 10, "max_reminders": 2})
    b.observe(detection(), Context(), T0)
    for minute in range(1, 90):
        b.tick(T0 + timedelta(minutes=minute))
    reminders = [e for e in only(b).outbox if e.reason is NotificationReason.REMINDER]
    assert [(e.stage, e.created_at - T0) for e in reminders] == [(1, timedelta(minutes=10)), (2, timedelta(minutes=20))]


def test_ack_suppresses_paging_that_is_still_pending() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    b.tick(T0 + timedelta(minutes=15))
    b.acknowledge(only(b).incident_id, "李四", T0 + timedelta(minutes=15, seconds=1))
    escalation = next(e for e in only(b).outbox if e.reason is NotificationReason.ESCALATION)
    assert escalation.status is DeliveryStatus.SUPPRESSED
    assert b.due(T0 + timedelta(minutes=16)) == [
        (only(b), e) for e in only(b).outbox if e.reason is NotificationReason.OPENED
    ]


def test_blue_incidents_do_not_escalate() -> None:
    b = book()
    b.observe(detection(multiple=0.2), Context(), T0)
    for minute in range(1, 60):
        b.tick(T0 + timedelta(minutes=minute))
    assert only(b).level is WarningLevel.BLUE
    assert {e.reason for e in only(b).outbox} == {NotificationReason.OPENED}


def test_auto_resolve_after_clear_and_reopen_within_the_window() -> None:
    b = book()
    b.observe(detection(0), Context(), T0)
    b.observe(detection(1, phase=DetectionPhase.CLEARED), Context(), T0 + timedelta(minutes=5))
    b.tick(T0 + timedelta(minutes=34))
    assert only(b).status is IncidentStatus.OPEN
    b.tick(T0 + timedelta(minutes=35))
    resolved = only(b)
    assert resolved.status is IncidentStatus.RESOLVED
    # everyone paged so far (the duty officer, and the chief after 15 min) hears it is over
    assert targets_of(resolved, NotificationReason.RESOLVED) == {"duty-sms", "chief-im"}
    b.observe(detection(2, event="evt-3"), Context(), T0 + timedelta(minutes=80))
    reopened = only(b)
    assert reopened.incident_id == resolved.incident_id
    assert reopened.status is IncidentStatus.OPEN
    assert reopened.reopen_count == 1
    assert targets_of(reopened, NotificationReason.REOPENED) == {"duty-sms"}


def test_a_return_after_the_window_opens_a_new_incident() -> None:
    b = book()
    b.observe(detection(0), Context(), T0)
    b.resolve(only(b).incident_id, "王五", T0 + timedelta(minutes=10))
    b.observe(detection(1, event="evt-9"), Context(), T0 + timedelta(minutes=200))
    assert {i.incident_id for i in b.incidents()} == {incident_id_for("evt-1"), incident_id_for("evt-9")}


def test_no_detections_at_all_resolves_after_twice_the_quiet_time() -> None:
    b = book()
    b.observe(detection(0), Context(), T0)
    b.acknowledge(only(b).incident_id, "赵六", T0)
    b.tick(T0 + timedelta(minutes=59))
    assert only(b).is_active
    b.tick(T0 + timedelta(minutes=60))
    assert only(b).status is IncidentStatus.RESOLVED


def test_downstream_reach_joins_the_incident_upstream() -> None:
    b = book()
    b.observe(detection(0), Context(reach="tuo-2", upstream_reaches=("tuo-1",)), T0)
    downstream = Context(reach="tuo-3", upstream_reaches=("tuo-1", "tuo-2"))
    b.observe(detection(1, station="tuo-damozi", event="evt-2"), downstream, T0)
    b.observe(detection(2, station="tuo-up", event="evt-3"), Context(reach="tuo-1"), T0)
    keys = sorted(i.reach for i in b.incidents())
    assert keys == ["tuo-1", "tuo-2"]
    assert next(i for i in b.incidents() if i.reach == "tuo-2").stations == ("tuo-jiaoxiancun", "tuo-damozi")


def test_severity_uses_pollutant_class_and_intake_arrival() -> None:
    b = book()
    arrival = T0 + timedelta(hours=1, minutes=30)
    ctx = Context(pollutant_class=PollutantClass.HEAVY_METAL, intakes=(intake("内江二水厂", 30.0, arrival),),
                  station_km=10.0)
    b.observe(detection(multiple=0.4, parameter="Cd"), ctx, T0)
    incident = only(b)
    assert incident.level is WarningLevel.RED  # blue + heavy metal + intake within 2 h
    assert [r.en.split(" → ")[1] for r in incident.level_reasons] == ["blue", "up 1", "up 2"]
    assert "内江二水厂" in incident.level_reasons[2].zh
    assert incident.nearest_intake == "内江二水厂"
    assert incident.intake_arrival_at == arrival


def test_silence_suppresses_and_records_notifications() -> None:
    silence = [{"river": "tuo", "until": "2024-06-01T12:00:00+08:00", "reason": "演练"}]
    b = book(silences=silence)
    effects = b.observe(detection(), Context(), T0)
    entry = only(b).outbox[0]
    assert entry.status is DeliveryStatus.SUPPRESSED
    assert "演练" in entry.note
    assert [r.outcome for r in effects.records] == [DeliveryOutcome.SUPPRESSED]
    assert b.due(T0) == []


def test_a_storm_of_routine_notifications_is_rate_limited_and_then_summarised() -> None:
    b = book(rate_limits={"default": {"burst": 2, "per_hour": 6}}, escalation={"reminder_every_min": None})
    for n in range(5):  # blue: below the limit's multiple, so routine (lanes: tests/unit/test_alert_ratelimit.py)
        p = ["NH3N", "TP", "COD", "CODMn", "BOD5"][n]
        b.observe(detection(n, parameter=p, event=f"evt-{p}", multiple=0.2), Context(), T0)
    held = [e for i in b.incidents() for e in i.outbox if e.status is DeliveryStatus.SUPPRESSED]
    sent = [e for i in b.incidents() for e in i.outbox if e.status is DeliveryStatus.PENDING]
    assert len(sent) == 2
    assert len(held) == 3
    b.tick(T0 + timedelta(minutes=5))  # no token yet (one per 10 min)
    assert not [e for i in b.incidents() for e in i.outbox if e.reason is NotificationReason.SUMMARY]
    b.tick(T0 + timedelta(minutes=10))
    summaries = [e for i in b.incidents() for e in i.outbox if e.reason is NotificationReason.SUMMARY]
    assert len(summaries) == 1
    assert [c.held for c in summaries[0].covers] == [1, 1, 1]
    b.tick(T0 + timedelta(minutes=30))
    assert len([e for i in b.incidents() for e in i.outbox if e.reason is NotificationReason.SUMMARY]) == 1


def test_failed_sends_back_off_then_give_up() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    incident = only(b)
    entry = incident.outbox[0]
    effects = b.record_attempt(incident.incident_id, entry.notification_id, entry.target_id, ok=False,
                               error="HTTP 500", now=T0, title="t")
    assert effects.records[0].outcome is DeliveryOutcome.FAILED
    assert b.due(T0 + timedelta(seconds=9)) == []
    assert len(b.due(T0 + timedelta(seconds=10))) == 1
    b.record_attempt(incident.incident_id, entry.notification_id, entry.target_id, ok=False, error="x",
                     now=T0 + timedelta(seconds=10), title="t")
    assert b.due(T0 + timedelta(seconds=29)) == []
    last = b.record_attempt(incident.incident_id, entry.notification_id, entry.target_id, ok=False, error="x",
                            now=T0 + timedelta(seconds=30), title="t")
    assert last.records[0].outcome is DeliveryOutcome.GAVE_UP
    assert last.records[0].record_id.endswith("#3")
    assert b.due(T0 + timedelta(days=1)) == []


def test_a_sent_notification_is_not_due_again_after_restore() -> None:
    b = book()
    b.observe(detection(), Context(), T0)
    incident = only(b)
    entry = incident.outbox[0]
    b.record_attempt(incident.incident_id, entry.notification_id, entry.target_id, ok=True, error="", now=T0, title="t")
    restored = book()
    restored.restore([only(b)])
    restored.observe(detection(), Context(), T0 + timedelta(minutes=1))  # the uncommitted input again
    assert restored.due(T0 + timedelta(minutes=1)) == []


def test_operator_errors_name_the_incident() -> None:
    b = book()
    with pytest.raises(UnknownIncidentError, match="RG-NOPE"):
        b.acknowledge("RG-NOPE", "x", T0)
    b.observe(detection(), Context(), T0)
    incident_id = only(b).incident_id
    b.resolve(incident_id, "x", T0)
    with pytest.raises(IncidentStateError, match="resolved"):
        b.acknowledge(incident_id, "x", T0)


def test_a_clear_without_findings_still_clears_its_event() -> None:
    b = book()
    b.observe(detection(0), Context(), T0)
    clear = detection(1, phase=DetectionPhase.CLEARED).model_copy(update={"findings": ()})
    b.observe(clear, Context(), T0 + timedelta(minutes=1))
    assert only(b).active_events == ()
    assert only(b).normal_since == T0 + timedelta(minutes=1)


def test_a_playbook_route_notifies_the_departments_the_playbook_names() -> None:
    routes = [{"name": "depts", "match": {"min_level": "orange"}, "notify": ["playbook"]},
              {"name": "duty", "notify": ["tuo-duty"]}]
    b = IncidentBook(
        RoutingConfig.model_validate({**ROUTING, "routes": routes}),
        Directory((*targets().targets, Target("zigong", frozenset({"zigong-duty"}), Channel.IM, "json://zg"))),
    )
    ctx = Context(playbook_tags=("zigong-duty", "luzhou-duty"))
    b.observe(detection(0, multiple=1.5), ctx, T0)
    assert targets_of(only(b), NotificationReason.OPENED) == {"duty-sms"}
    deliver_due(b, T0)
    b.observe(detection(1, multiple=4.0, phase=DetectionPhase.UPDATE), ctx, T0)
    assert targets_of(only(b), NotificationReason.LEVEL_RAISED) == {"duty-sms", "zigong"}


# -- the plume front and its intakes (demo: spill at 宏缘, passes 简阳 at ~14:30, reaches 三皇庙 at ~19:40) --

JIANYANG_AT = T0 + timedelta(hours=6)
HONGYUAN = Context(station_km=0.0, intakes=(intake("简阳城区取水口", 60.0, JIANYANG_AT),
                                            intake("资阳城区取水口", 120.0, T0 + timedelta(hours=19))))


def sms_at(b: IncidentBook, now: datetime, reason: NotificationReason = NotificationReason.REMINDER) -> str:
    incident = only(b)
    entry = OutboxEntry(notification_id=f"{incident.incident_id}:{reason.value}:1", target_id="duty-sms",
                        channel=Channel.SMS, reason=reason, stage=1, created_at=now, next_attempt_at=now)
    return render(incident, entry, MessageContext(ack_url="http://127.0.0.1:8470/ack/x"), now).body


def test_at_a_downstream_station_the_next_intake_is_named_not_the_one_passed() -> None:
    b = book()
    b.observe(detection(0, station="tuo-hongyuan", multiple=1.5), HONGYUAN, T0)
    opened = only(b)
    assert opened.nearest_intake == "简阳城区取水口"
    assert opened.level is WarningLevel.ORANGE  # yellow, and 简阳 within 8 h
    # the reason names the intake, both arrival times and when it was assessed
    assert opened.level_reasons[-1].zh == (
        "简阳城区取水口最早06-01 15:00、预计06-01 16:00到达，06-01 10:00时距预计到达 6.0 小时（≤ 8 小时）→ 升 1 级"
    )
    deliver_due(b, T0)
    # 11 h later the plume reaches 三皇庙 (km 100): 简阳 (km 60) is behind it, 资阳 ahead
    later = T0 + timedelta(hours=11)
    ziyang_at = later + timedelta(hours=5, minutes=10)
    sanhuangmiao = Context(station_km=100.0, intakes=(intake("资阳城区取水口", 120.0, ziyang_at),))
    b.observe(detection(660, station="tuo-sanhuangmiao", event="evt-2", multiple=1.5), sanhuangmiao, later)
    incident = only(b)
    assert incident.stations == ("tuo-hongyuan", "tuo-sanhuangmiao")
    assert (incident.nearest_intake, incident.intake_arrival_at) == ("资阳城区取水口", ziyang_at)
    assert incident.level is WarningLevel.ORANGE  # the passed intake raises nothing
    assert targets_of(incident, NotificationReason.LEVEL_RAISED) == set()
    # still orange, and now for the intake ahead
    assert incident.level_reasons[-1].zh == (
        "资阳城区取水口最早06-02 01:10、预计06-02 02:10到达，06-01 21:00时距预计到达 5.2 小时（≤ 8 小时）→ 升 1 级"
    )
    text = sms_at(b, later)
    assert "资阳城区取水口最早06-02 01:10、预计06-02 02:10到达" in text  # tomorrow's times carry the date
    assert "简阳" not in text
    assert "0.0小时" not in text


def test_the_nearest_intake_moves_on_once_the_plume_has_passed_it() -> None:
    # as in the demo: no paging on ticks, and the incident stays open while the plume travels
    b = book(escalation={"min_level": "yellow", "reminder_every_min": None},
             lifecycle={"resolve_after_min": 720, "reopen_within_min": 720})
    b.observe(detection(0, station="tuo-hongyuan", multiple=1.5), HONGYUAN, T0)
    b.tick(JIANYANG_AT)  # the plume is at 简阳: still the nearest one (and, reached now, red)
    assert only(b).nearest_intake == "简阳城区取水口"
    assert only(b).level is WarningLevel.RED
    assert "污染团已到简阳城区取水口，预计19:00前后通过" in sms_at(b, JIANYANG_AT)
    passed = JIANYANG_AT + timedelta(hours=3, minutes=1)  # its trailing edge is behind us
    effects = b.tick(passed)
    incident = only(b)
    assert list(effects.incidents) == [incident.incident_id]
    assert incident.nearest_intake == "资阳城区取水口"
    assert incident.level is WarningLevel.RED  # a tick never lowers it
    assert incident.history[-1].note == "plume passed 简阳城区取水口; next intake: 资阳城区取水口"
    assert "资阳城区取水口最早06-02 04:00、预计06-02 05:00到达" in sms_at(b, passed)


def test_an_intake_the_plume_covers_now_raises_the_level_and_says_so() -> None:
    b = book()
    b.observe(detection(0, station="tuo-hongyuan", multiple=1.5), HONGYUAN, T0)
    deliver_due(b, T0)
    # at km 50 five and a half hours later: 简阳 (km 60) is inside the fast band's reach, not yet passed
    now = T0 + timedelta(hours=5, minutes=30)
    below = Context(station_km=50.0, intakes=(intake("简阳城区取水口", 60.0, now + timedelta(minutes=40)),))
    b.observe(detection(330, station="tuo-mid", event="evt-2", multiple=1.5), below, now)
    incident = only(b)
    assert incident.level is WarningLevel.RED  # yellow + 2 for an intake reached now
    assert incident.level_reasons[-1].zh == (
        "06-01 15:30时污染团可能已到简阳城区取水口（最早06-01 15:10，预计06-01 16:10）→ 升 2 级"
    )
    assert targets_of(incident, NotificationReason.LEVEL_RAISED) == {"duty-sms", "bureau-mail"}
    text = sms_at(b, now, NotificationReason.LEVEL_RAISED)
    assert "污染团可能已到简阳城区取水口（最早15:10，预计16:10）" in text
    assert "小时" not in text


def test_an_incident_that_opens_and_rises_in_one_batch_sends_one_opening_message() -> None:
    b = book()
    b.observe(detection(0, multiple=1.5), Context(), T0)  # yellow
    b.observe(detection(1, multiple=12.0, phase=DetectionPhase.UPDATE), Context(), T0)  # red, same batch
    incident = only(b)
    assert incident.level is WarningLevel.RED
    duty = [e for e in incident.outbox if e.target_id == "duty-sms"]
    assert [e.reason for e in duty] == [NotificationReason.OPENED]
    # the bureau is paged because of red: the raise is its first news, and the history keeps the rise
    assert targets_of(incident, NotificationReason.LEVEL_RAISED) == {"bureau-mail"}
    assert [h.what for h in incident.history] == ["opened", "level_raised"]
    (due_incident, entry), = [(i, e) for i, e in b.due(T0) if e.target_id == "duty-sms"]
    text = render(due_incident, entry, MessageContext(), T0).body
    assert text.startswith("【红色预警】")
    assert "升级" not in text


def test_a_rise_after_the_opening_message_went_to_the_sender_is_its_own_message() -> None:
    b = book()
    b.observe(detection(0, multiple=1.5), Context(), T0)
    (_, opening), = b.due(T0)
    b.claim(opening.notification_id, opening.target_id)  # being written and sent at yellow
    b.observe(detection(1, multiple=4.0, phase=DetectionPhase.UPDATE), Context(), T0)
    assert targets_of(only(b), NotificationReason.LEVEL_RAISED) == {"duty-sms"}
    b.release(opening.notification_id, opening.target_id)


# -- the level rises with time alone as the plume nears an intake (no new detection) --

JIANYANG_IN_5H = Context(station_km=0.0, intakes=(intake("简阳城区取水口", 60.0, T0 + timedelta(hours=5)),))


def quiet_book() -> IncidentBook:
    """No reminders, and the incident stays open for hours without detections (the plume travels)."""
    return book(escalation={"min_level": "yellow", "reminder_every_min": None},
                lifecycle={"resolve_after_min": 720, "reopen_within_min": 720})


def raises(incident: Incident) -> list[OutboxEntry]:
    return [e for e in incident.outbox if e.reason is NotificationReason.LEVEL_RAISED]


def test_a_tick_turns_the_incident_red_once_its_intake_is_within_two_hours() -> None:
    b = quiet_book()
    b.observe(detection(0, station="tuo-hongyuan", multiple=1.5), JIANYANG_IN_5H, T0)
    assert only(b).level is WarningLevel.ORANGE  # yellow, and 简阳 within 8 h
    deliver_due(b, T0)
    assert b.tick(T0 + timedelta(hours=2, minutes=59)).incidents == {}
    assert only(b).level is WarningLevel.ORANGE
    now = T0 + timedelta(hours=3)
    effects = b.tick(now)
    incident = only(b)
    assert list(effects.incidents) == [incident.incident_id]
    assert incident.level is WarningLevel.RED
    assert incident.level_reasons[-1].zh == (
        "简阳城区取水口最早06-01 14:00、预计06-01 15:00到达，06-01 13:00时距预计到达 2.0 小时（≤ 2 小时）→ 升 2 级"
    )
    assert [(h.what, h.note) for h in incident.history[-1:]] == [("level_raised", "orange → red")]
    # one notification, to the duty officer and (red) the bureau, as a detection-driven rise
    assert {e.notification_id for e in raises(incident)} == {f"{incident.incident_id}:level_raised:4"}
    assert targets_of(incident, NotificationReason.LEVEL_RAISED) == {"duty-sms", "bureau-mail"}
    assert {e.created_at for e in raises(incident)} == {now}
    mail = next(e for e in raises(incident) if e.target_id == "bureau-mail")
    assert "简阳城区取水口最早06-01 14:00、预计06-01 15:00到达（距最早到达约1.0小时）" in render(
        incident, mail, MessageContext(), now
    ).body
    deliver_due(b, now)
    for later in (now, now + timedelta(minutes=1), now + timedelta(hours=1, minutes=30), now + timedelta(hours=2)):
        effects = b.tick(later)
        assert [e.reason for i in effects.incidents.values() for e in raises(i) if e.created_at == later] == []
        assert effects.records == []
    assert len(raises(only(b))) == 2
    assert b.due(now + timedelta(hours=2)) == []


def test_a_restored_book_does_not_announce_a_tick_rise_again() -> None:
    b = quiet_book()
    b.observe(detection(0, station="tuo-hongyuan", multiple=1.5), JIANYANG_IN_5H, T0)
    b.tick(T0 + timedelta(hours=3))
    deliver_due(b, T0 + timedelta(hours=3))
    restored = quiet_book()
    restored.restore([only(b)])  # what the incidents topic holds
    for later in (T0 + timedelta(hours=3), T0 + timedelta(hours=4)):
        restored.tick(later)
    assert raises(only(restored)) == raises(only(b))
    assert restored.due(T0 + timedelta(hours=4)) == []


def test_a_tick_never_lowers_the_level() -> None:
    b = quiet_book()
    b.observe(detection(0, station="tuo-hongyuan", multiple=1.5), HONGYUAN, T0)
    assert only(b).level is WarningLevel.ORANGE  # 简阳 within 8 h
    reasons = only(b).level_reasons
    # 简阳 passed, 资阳 more than 8 h ahead: assessed afresh this would be yellow
    b.tick(JIANYANG_AT + timedelta(hours=3, minutes=1))
    incident = only(b)
    assert incident.nearest_intake == "资阳城区取水口"
    assert incident.level is WarningLevel.ORANGE
    assert incident.level_reasons == reasons
    assert raises(incident) == []


def test_a_tick_rise_reaches_an_acknowledged_incident_as_a_detection_rise_does() -> None:
    def rise(by_detection: bool) -> Incident:
        b = quiet_book()
        b.observe(detection(0, station="tuo-hongyuan", multiple=1.5), JIANYANG_IN_5H, T0)
        deliver_due(b, T0)
        b.acknowledge(only(b).incident_id, "张三", T0 + timedelta(minutes=5))
        now = T0 + timedelta(hours=3)
        if by_detection:
            b.observe(detection(1, station="tuo-hongyuan", multiple=12.0, phase=DetectionPhase.UPDATE),
                      Context(), T0 + timedelta(minutes=6))
        else:
            b.tick(now)
        return only(b)

    ticked, detected = rise(by_detection=False), rise(by_detection=True)
    assert ticked.status is detected.status is IncidentStatus.ACKNOWLEDGED
    assert ticked.level is detected.level is WarningLevel.RED
    assert [(e.target_id, e.status) for e in raises(ticked)] == [(e.target_id, e.status) for e in raises(detected)]
    assert {e.status for e in raises(ticked)} == {DeliveryStatus.PENDING}
