"""The incident wire model: typed keys (and the string keys of earlier releases), validated changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from riverguard.incidents import (
    Incident,
    KindGroup,
    MaintenanceKey,
    OutboxEntry,
    PollutionKey,
    Route,
    WarningLevel,
)
from riverguard.models import DetectionKind

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)


def incident(key: object, route: Route = Route.POLLUTION) -> Incident:
    return Incident.model_validate(
        {"incident_id": "RG-1", "key": key, "route": route, "river": "tuo", "reach": "tuo-r2", "pollutant": "NH3N",
         "kind": DetectionKind.LIMIT_EXCEEDANCE, "level": WarningLevel.YELLOW, "opened_at": T0, "updated_at": T0,
         "last_active_at": T0}
    )


def test_a_key_round_trips_as_an_object_and_is_a_dictionary_key() -> None:
    key = PollutionKey(river="tuo", reach="tuo-r2", pollutant="NH3N", group=KindGroup.FLOW)
    restored = Incident.model_validate_json(incident(key).model_dump_json())
    assert restored.key == key
    assert {key: 1}[restored.key] == 1
    assert restored.model_dump(mode="json")["key"] == {
        "route": "pollution", "river": "tuo", "reach": "tuo-r2", "pollutant": "NH3N", "group": "flow"
    }


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("pollution|tuo|tuo-r2|NH3N|water", PollutionKey(river="tuo", reach="tuo-r2", pollutant="NH3N")),
        ("pollution|tuo|tuo|NH3N", PollutionKey(river="tuo", reach="tuo", pollutant="NH3N")),
        ("maintenance|tuo-hongyuan|sensor_fault",
         MaintenanceKey(station="tuo-hongyuan")),
    ],
)
def test_string_keys_of_earlier_releases_still_restore(text: str, key: object) -> None:
    route = Route.MAINTENANCE if text.startswith("maintenance") else Route.POLLUTION
    assert incident(text, route).key == key


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("pollution|tuo", "neither pollution|river|reach|pollutant|group"),
        ("pollution|tuo|r|NH3N|air", "group"),
        ({"route": "pollution", "river": "Tuo River", "reach": "r", "pollutant": "NH3N"}, "river"),
    ],
)
def test_a_bad_key_is_refused_naming_what_is_wrong(key: object, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        incident(key)


def test_the_route_must_be_the_keys() -> None:
    with pytest.raises(ValidationError, match="route maintenance but key of the pollution route"):
        incident(PollutionKey(river="tuo", reach="r", pollutant="NH3N"), Route.MAINTENANCE)


def test_changes_are_validated_like_the_constructor_input() -> None:
    i = incident(PollutionKey(river="tuo", reach="r", pollutant="NH3N"))
    assert i.evolve(level="red").level is WarningLevel.RED
    with pytest.raises(ValidationError, match="levle"):
        i.evolve(levle=WarningLevel.RED)
    with pytest.raises(ValidationError, match="updated_at"):
        i.evolve(updated_at=datetime(2024, 6, 1, 2, 0))
    entry = OutboxEntry(notification_id="n", target_id="t", channel="sms", reason="opened", created_at=T0,
                        next_attempt_at=T0)
    with pytest.raises(ValidationError, match="attempts"):
        entry.evolve(attempts="many")


def test_history_keeps_the_latest_lines() -> None:
    i = incident(PollutionKey(river="tuo", reach="r", pollutant="NH3N"))
    for n in range(60):
        i = i.with_event(T0, "updated", note=str(n))
    assert len(i.history) == 50
    assert i.history[-1].note == "59"
    assert i.history[0].note == "10"
