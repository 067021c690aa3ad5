"""The alert text catalogue: every message in both languages, with the same fields, and every id in use."""

from __future__ import annotations

import re
import string
from enum import StrEnum
from pathlib import Path

import pytest

from alerts.catalogue import CATALOGUE, LANGUAGES, named, say
from riverguard.incidents import IncidentStatus, NotificationReason, Route, WarningLevel
from riverguard.models import DetectionKind

ALERTS = Path(__file__).resolve().parents[2] / "alerts"
# ids built from an enum's value (named("level", level)); each family must cover its enum exactly
FAMILIES: dict[str, type[StrEnum]] = {
    "level": WarningLevel, "alert": WarningLevel, "tag": NotificationReason, "status": IncidentStatus,
    "route": Route, "kind": DetectionKind,
}


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("message_id", sorted(CATALOGUE))
def test_every_message_has_both_languages_with_the_same_fields(message_id: str) -> None:
    text = CATALOGUE[message_id]
    templates = {language: text(language) for language in LANGUAGES}
    assert set(templates) == {"zh", "en"}
    # an empty template is only right where both languages say nothing (the tag of a first page)
    assert bool(text.zh) == bool(text.en), message_id
    assert fields(text.zh) == fields(text.en), message_id


@pytest.mark.parametrize(("family", "enum"), sorted(FAMILIES.items()))
def test_id_families_cover_their_enum(family: str, enum: type[StrEnum]) -> None:
    ids = {i for i in CATALOGUE if i.split(".")[0] == family and i.count(".") == 1}
    assert ids == {f"{family}.{member.value}" for member in enum}
    for member in enum:
        assert named(family, member) is CATALOGUE[f"{family}.{member.value}"]


def test_every_other_id_is_used_by_the_alert_code() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in ALERTS.glob("*.py") if p.name != "catalogue.py")
    used = set(re.findall(r"""["']([a-z_]+(?:\.[a-z_]+)+)["']""", source))
    family_ids = {i for i in CATALOGUE if i.split(".")[0] in FAMILIES and i.count(".") == 1}
    assert sorted(set(CATALOGUE) - family_ids - used) == []


def test_fields_in_both_languages_are_put_in_the_message_language() -> None:
    assert say("zh", "fact.why", level=named("level", WarningLevel.RED)) == "级别依据（红色）"
    assert say("en", "fact.why", level=named("level", WarningLevel.RED)) == "Why red"
    assert say("en", "message.prefix", reason=named("tag", NotificationReason.REMINDER).format("en", stage=2),
               level=named("alert", WarningLevel.RED)) == "[REMINDER 2 RED alert] "
    with pytest.raises(KeyError, match=r"no\.such"):
        say("zh", "no.such.message")
