"""An incident book to test with: the routing of a river bureau, its targets, detections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.book import IncidentBook
from alerts.routing import RoutingConfig
from alerts.targets import Directory, Target
from riverguard.incidents import Channel
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding

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
