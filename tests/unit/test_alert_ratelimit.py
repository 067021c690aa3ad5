"""Priority lanes: a storm of instrument faults never holds back or buries a pollution alert (issue 16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.book import Context, IncidentBook
from alerts.messages import MessageContext, render
from alerts.ratelimit import Lane, lane_of
from alerts.routing import RoutingConfig
from alerts.targets import Directory, Target
from riverguard.incidents import (
    Channel,
    DeliveryStatus,
    Incident,
    NotificationReason,
    OutboxEntry,
    PollutionKey,
    Route,
    WarningLevel,
)
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding

T0 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
STATIONS = ("tuo-hongyuan", "tuo-sanhuangmiao", "tuo-shunhechang", "tuo-lijiawan", "tuo-jiaoxiancun", "tuo-damozi",
            "jialing-shangshipan")
PARAMETERS = ("NH3N", "TP", "CODMn", "pH", "DO")
# a small bureau: the duty officer's one phone gets pollution and maintenance alike
DESK = Target("desk", frozenset({"duty", "ops"}), Channel.SMS, "json://desk")
ROUTING = {
    "routes": [
        {"name": "duty", "match": {"route": "pollution"}, "notify": ["duty"]},
        {"name": "ops", "match": {"route": "maintenance"}, "notify": ["ops"]},
    ],
    "escalation": {"min_level": "yellow", "reminder_every_min": 10, "max_reminders": 3},
    "rate_limits": {"default": {"burst": 3, "per_hour": 6}},
    "lifecycle": {"resolve_after_min": 600, "reopen_within_min": 600},
}


def book() -> IncidentBook:
    return IncidentBook(RoutingConfig.model_validate(ROUTING), Directory((DESK,)))


def detection(station: str, parameter: str, kind: DetectionKind, at: datetime, *, multiple: float | None = None,
              event: str | None = None, phase: DetectionPhase = DetectionPhase.ONSET) -> Detection:
    finding = Finding(parameter=parameter, value=1.0 + (multiple or 0), limit=1.0, multiple=multiple, unit="mg/L")
    return Detection(detection_id=f"{event or station + parameter}-{at.isoformat()}",
                     event_id=event or f"{station}-{parameter}-{kind.value}", station_id=station,
                     river=station.partition("-")[0], time=at, kind=kind, phase=phase, findings=(finding,),
                     detector="test")


def entries(incident: Incident, reason: NotificationReason) -> list[OutboxEntry]:
    return [e for e in incident.outbox if e.reason is reason]


def storm(b: IncidentBook) -> Incident:
    """Issue 16 in the book: 35 instrument faults in two minutes, the routine pollution notices of
    three blue incidents, then a Tuo NH3N spill that opens yellow and rises to red."""
    for n, (station, parameter) in enumerate((s, p) for s in STATIONS for p in PARAMETERS):
        b.observe(detection(station, parameter, DetectionKind.SENSOR_FAULT, T0 + timedelta(seconds=3 * n)),
                  Context(), T0 + timedelta(seconds=3 * n))
    for parameter in ("TP", "CODMn", "COD"):  # blue pollution notices use up the pollution bucket
        b.observe(detection("tuo-damozi", parameter, DetectionKind.LIMIT_EXCEEDANCE, T0, multiple=0.2,
                            event=f"blue-{parameter}"), Context(reach=f"r-{parameter}"), T0 + timedelta(minutes=2))
    spill = "spill-NH3N"
    now = T0 + timedelta(minutes=3)
    b.observe(detection("tuo-hongyuan", "NH3N", DetectionKind.LIMIT_EXCEEDANCE, now, multiple=1.5, event=spill),
              Context(reach="tuo-r1"), now)
    send_spill(b, now)
    for minutes, multiple in ((4, 4.0), (5, 12.0)):
        at = T0 + timedelta(minutes=minutes)
        b.observe(detection("tuo-hongyuan", "NH3N", DetectionKind.LIMIT_EXCEEDANCE, at, multiple=multiple, event=spill,
                            phase=DetectionPhase.UPDATE), Context(reach="tuo-r1"), at)
        send_spill(b, at)
    return next(i for i in b.incidents() if i.pollutant == "NH3N" and i.route is Route.POLLUTION)


def send_spill(b: IncidentBook, now: datetime) -> None:
    """What the service does between detections: sends what is due (here the spill's pages)."""
    for incident, entry in b.due(now):
        if incident.pollutant == "NH3N" and incident.route is Route.POLLUTION:
            b.record_attempt(incident.incident_id, entry.notification_id, entry.target_id, ok=True, error="",
                             now=now, title="")


def test_instrument_faults_are_one_incident_per_station_listing_its_parameters() -> None:
    b = book()
    storm(b)
    maintenance = [i for i in b.incidents() if i.route is Route.MAINTENANCE]
    assert len(maintenance) == len(STATIONS)  # not 35
    assert {i.parameters for i in maintenance} == {PARAMETERS}
    assert all(len(entries(i, NotificationReason.OPENED)) == 1 for i in maintenance)


def test_the_spill_is_never_held_back_by_the_storm() -> None:
    b = book()
    red = storm(b)
    assert red.level is WarningLevel.RED
    pages = [e for e in red.outbox if e.target_id == "desk"]
    assert [e.reason for e in pages] == [NotificationReason.OPENED, NotificationReason.LEVEL_RAISED,
                                         NotificationReason.LEVEL_RAISED]
    assert {e.status for e in pages} == {DeliveryStatus.SENT}  # none held back, none suppressed
    # while the same target's buckets are empty: routine notices of both routes were held back
    held = [(i.route, e) for i in b.incidents() for e in i.outbox if e.status is DeliveryStatus.SUPPRESSED]
    assert {route for route, _ in held} == {Route.MAINTENANCE}
    blue = [i for i in b.incidents() if i.route is Route.POLLUTION and i.level is WarningLevel.BLUE]
    assert [e.status for i in blue for e in i.outbox] == [DeliveryStatus.PENDING] * 3  # their own bucket


def test_a_red_incident_reminds_through_an_empty_bucket_and_only_a_silence_holds_it_back() -> None:
    routing = RoutingConfig.model_validate({**ROUTING, "escalation": {"reminder_every_min": 1}})
    b = IncidentBook(routing, Directory((DESK,)))
    red = storm(b)
    at = T0 + timedelta(minutes=6)  # a minute after the last page; the pollution bucket has 0.4 tokens
    b.observe(detection("tuo-damozi", "BOD5", DetectionKind.LIMIT_EXCEEDANCE, at, multiple=0.2, event="blue-BOD5"),
              Context(reach="r-BOD5"), at)
    b.tick(at)
    (reminder,) = entries(b.get(red.incident_id), NotificationReason.REMINDER)
    assert reminder.status is DeliveryStatus.PENDING
    blue = next(i for i in b.incidents() if i.pollutant == "BOD5")
    assert [e.note for e in blue.outbox] == ["rate-limited"]  # the same bucket, empty for a routine notice
    silence = {"river": "tuo", "until": (T0 + timedelta(days=1)).isoformat(), "reason": "应急演练"}
    silenced = IncidentBook(RoutingConfig.model_validate({**ROUTING, "silences": [silence]}), Directory((DESK,)))
    red = storm(silenced)
    assert {e.status for e in red.outbox} == {DeliveryStatus.SUPPRESSED}
    assert "应急演练" in red.silenced_by


def test_summaries_keep_to_one_route_and_name_the_level() -> None:
    b = book()
    red = storm(b)
    b.tick(T0 + timedelta(minutes=20))  # one token each again (6 per hour)
    summaries = [(i, e) for i in b.incidents() for e in entries(i, NotificationReason.SUMMARY)]
    assert len(summaries) == 1  # only the maintenance bucket held anything back
    carrier, summary = summaries[0]
    assert {c.route for c in summary.covers} == {Route.MAINTENANCE}
    assert red.incident_id not in {c.incident_id for c in summary.covers}
    assert sum(c.held for c in summary.covers) == len(STATIONS) - 3
    text = render(carrier, summary, MessageContext(), T0 + timedelta(minutes=20)).body
    assert text.startswith("【限流汇总·运维】限流期间4条通知未发送：")
    assert "仪器故障" in text
    assert "超标" not in text


def test_a_pollution_summary_lists_the_most_severe_first_and_says_the_highest_level() -> None:
    routing = RoutingConfig.model_validate({**ROUTING, "rate_limits": {"default": {"burst": 1, "per_hour": 6}},
                                            "escalation": {"reminder_every_min": None}})
    b = IncidentBook(routing, Directory((DESK,)))
    for n, (parameter, multiple) in enumerate((("TP", 0.3), ("CODMn", 0.2), ("COD", 0.6))):  # all blue
        b.observe(detection("tuo-damozi", parameter, DetectionKind.LIMIT_EXCEEDANCE, T0, multiple=multiple,
                            event=f"e-{parameter}"), Context(reach=f"r{n}"), T0 + timedelta(seconds=n))
    # a blue incident whose held notice is a resolution, after it was raised to orange by a later reading
    orange = next(i for i in b.incidents() if i.pollutant == "COD")
    b.observe(detection("tuo-damozi", "COD", DetectionKind.LIMIT_EXCEEDANCE, T0, multiple=3.5, event="e-COD",
                        phase=DetectionPhase.UPDATE), Context(reach="r2"), T0 + timedelta(seconds=5))
    assert b.get(orange.incident_id).level is WarningLevel.ORANGE
    b.tick(T0 + timedelta(minutes=10))
    ((carrier, summary),) = [(i, e) for i in b.incidents() for e in entries(i, NotificationReason.SUMMARY)]
    assert summary.covers[0].incident_id == orange.incident_id
    assert [c.level for c in summary.covers] == [WarningLevel.ORANGE, WarningLevel.BLUE]
    message = render(carrier, summary, MessageContext(), T0 + timedelta(minutes=10))
    assert message.body.startswith("【限流汇总·污染·最高橙色】")
    assert message.body.index(orange.incident_id) < message.body.index(summary.covers[1].incident_id)


def pollution(level: WarningLevel) -> Incident:
    return Incident(incident_id="RG-1", key=PollutionKey(river="tuo", reach="r", pollutant="NH3N"),
                    route=Route.POLLUTION, river="tuo", reach="r", pollutant="NH3N",
                    kind=DetectionKind.LIMIT_EXCEEDANCE, level=level, opened_at=T0, updated_at=T0, last_active_at=T0)


@pytest.mark.parametrize(
    ("level", "reason", "lane"),
    [
        (WarningLevel.BLUE, NotificationReason.OPENED, Lane.ROUTINE),
        (WarningLevel.YELLOW, NotificationReason.OPENED, Lane.URGENT),
        (WarningLevel.YELLOW, NotificationReason.REOPENED, Lane.URGENT),
        (WarningLevel.YELLOW, NotificationReason.ESCALATION, Lane.URGENT),
        (WarningLevel.ORANGE, NotificationReason.REMINDER, Lane.ROUTINE),
        (WarningLevel.ORANGE, NotificationReason.RESOLVED, Lane.ROUTINE),
        (WarningLevel.BLUE, NotificationReason.LEVEL_RAISED, Lane.URGENT),
        (WarningLevel.RED, NotificationReason.REMINDER, Lane.URGENT),
        (WarningLevel.RED, NotificationReason.RESOLVED, Lane.URGENT),
    ],
)
def test_lanes(level: WarningLevel, reason: NotificationReason, lane: Lane) -> None:
    assert lane_of(pollution(level), reason) is lane


def test_a_pollution_page_goes_out_before_the_maintenance_messages_queued_ahead_of_it() -> None:
    b = book()
    for n, station in enumerate(STATIONS[:3]):  # three maintenance messages wait for the desk
        b.observe(detection(station, "TP", DetectionKind.SENSOR_FAULT, T0), Context(), T0 + timedelta(seconds=n))
    spill = T0 + timedelta(minutes=1)
    b.observe(detection("tuo-hongyuan", "NH3N", DetectionKind.LIMIT_EXCEEDANCE, spill, multiple=1.5, event="s"),
              Context(reach="tuo-r1"), spill)
    first, entry = b.due(spill)[0]
    assert (first.route, entry.reason) == (Route.POLLUTION, NotificationReason.OPENED)
    assert [i.route for i, _ in b.due(spill)[1:]] == [Route.MAINTENANCE] * 3
