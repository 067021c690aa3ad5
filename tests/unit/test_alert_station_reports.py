"""What stations did for an incident (超标留样 through the HJ 212 gateway): in its history and messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from alerts.book import Context
from alerts.messages import MessageContext, render
from riverguard.incidents import NotificationReason, StationReport
from tests.support.alert_book import T0, book, detection

KEPT = StationReport(result_id="RG-1:retain_sample:tuo-jiaoxiancun#executed", station_id="tuo-jiaoxiancun",
                     at=T0 + timedelta(minutes=3), sample_kept=True, zh="脚仙村站已超标留样（1 号瓶，10:03）",
                     en="脚仙村 kept a sample (bottle 1, 10:03)")


def test_a_kept_sample_is_on_the_incident_once_and_in_its_next_messages() -> None:
    b = book()
    b.observe(detection(0), Context(), T0)
    incident_id = b.incidents()[0].incident_id

    changed = b.record_station_report(incident_id, KEPT, T0 + timedelta(minutes=4))
    again = b.record_station_report(incident_id, KEPT, T0 + timedelta(minutes=5))  # a replayed result

    incident = b.get(incident_id)
    assert list(changed.incidents) == [incident_id]
    assert not again.incidents
    assert incident.station_reports == (KEPT,)
    assert [(e.what, e.note) for e in incident.history if e.what == "sample_retained"] == [
        ("sample_retained", KEPT.zh)
    ]
    entry = next(e for e in incident.outbox if e.reason is NotificationReason.OPENED)
    languages: tuple[tuple[Literal["zh", "en"], str, str], ...] = (
        ("zh", "已留样", KEPT.zh), ("en", "sample kept", KEPT.en),
    )
    for language, marker, fact in languages:
        message = render(incident, entry.evolve(channel="sms"), MessageContext(language=language), T0)
        assert marker in message.body
        im = render(incident, entry.evolve(channel="im"), MessageContext(language=language), T0)
        assert fact in im.body


def test_a_report_for_an_incident_the_book_does_not_have_changes_nothing() -> None:
    b = book()
    assert not b.record_station_report("RG-NOSUCH", KEPT, T0).incidents
    assert b.incidents() == []
