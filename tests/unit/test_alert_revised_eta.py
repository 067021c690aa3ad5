"""A "revised ETA" goes out when a station further down moves an intake's action deadline (issue 17)."""

from __future__ import annotations

from datetime import timedelta

from alerts.book import Context
from alerts.messages import MessageContext, render
from alerts.ratelimit import Lane, lane_of
from riverguard.incidents import IntakeArrival, NotificationReason
from tests.support.alert_book import T0, book, detection


def intake(fast_h: float) -> IntakeArrival:
    fast = T0 + timedelta(hours=fast_h)
    return IntakeArrival(name="资中县城取水口", river_km=121.3, leading_edge_at=fast + timedelta(hours=1),
                         leading_edge_fast_at=fast, trailing_edge_at=fast + timedelta(hours=5))


def test_a_deadline_moved_by_more_than_the_margin_is_announced_once_as_urgent() -> None:
    b = book()
    # Far enough for the level not to rise with the move (a rise is announced as such).
    b.observe(detection(0, station="tuo-hongyuan"), Context(intakes=(intake(30),), station_km=26.1), T0)
    incident = b.incidents()[0]
    # The next station down saw the plume early: the intake's fast edge is now 90 min sooner.
    b.observe(detection(120, station="tuo-sanhuangmiao", event="evt-2"),
              Context(intakes=(intake(28.5),), station_km=97.8), T0 + timedelta(hours=2))
    revised = b.get(incident.incident_id)
    entries = [e for e in revised.outbox if e.reason is NotificationReason.REVISED_ETA]
    assert entries
    assert {e.stage for e in entries} == {1}
    assert revised.level is incident.level
    assert revised.eta_revisions == 1
    assert [e.what for e in revised.history].count("eta_revised") == 1
    assert lane_of(revised, NotificationReason.REVISED_ETA) is Lane.URGENT
    sms = render(revised, entries[0], MessageContext(language="zh"), T0 + timedelta(hours=2))
    assert sms.body.startswith("【到达时间第1次修正·")


def test_a_small_move_or_a_deadline_long_past_sends_nothing() -> None:
    b = book()
    b.observe(detection(0, station="tuo-hongyuan"), Context(intakes=(intake(30),), station_km=26.1), T0)
    b.observe(detection(120, station="tuo-sanhuangmiao", event="evt-2"),
              Context(intakes=(intake(29.75),), station_km=97.8), T0 + timedelta(hours=2))
    assert not [e for e in b.incidents()[0].outbox if e.reason is NotificationReason.REVISED_ETA]

    late = book()
    late.observe(detection(0, station="tuo-hongyuan"), Context(intakes=(intake(1),), station_km=26.1), T0)
    late.observe(detection(300, station="tuo-sanhuangmiao", event="evt-2"),
                 Context(intakes=(intake(2.5),), station_km=97.8), T0 + timedelta(hours=5))
    assert not [e for e in late.incidents()[0].outbox if e.reason is NotificationReason.REVISED_ETA]


def test_each_revision_has_its_own_title() -> None:
    b = book()
    b.observe(detection(0, station="tuo-hongyuan"), Context(intakes=(intake(30),), station_km=26.1), T0)
    b.observe(detection(120, station="tuo-sanhuangmiao", event="evt-2"),
              Context(intakes=(intake(28.5),), station_km=97.8), T0 + timedelta(hours=2))
    b.observe(detection(180, station="tuo-sanhuangmiao", event="evt-3"),
              Context(intakes=(intake(27),), station_km=97.8), T0 + timedelta(hours=3))
    incident = b.incidents()[0]
    entries = [e for e in incident.outbox if e.reason is NotificationReason.REVISED_ETA]
    assert incident.eta_revisions == 2
    ctx = MessageContext(language="zh")
    titles = {e.stage: render(incident, e, ctx, T0 + timedelta(hours=3)).body.split("】")[0] for e in entries}
    assert titles == {1: "【到达时间第1次修正·黄色预警", 2: "【到达时间第2次修正·黄色预警"}
