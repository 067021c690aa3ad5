"""The routing file: who gets what, when to escalate, silences, rate limits and timings.

Routes select Apprise *tags* (the Apprise YAML config maps tags to URLs), by river, city,
warning level, detection kind and route (pollution / maintenance). Every route whose ``match``
fits an incident contributes its tags; escalation stages add more tags after N minutes without
acknowledgement. See ``deploy/alerts/routing.yaml`` for a commented example.

>>> cfg = RoutingConfig.model_validate({"routes": [{"name": "tuo", "match": {"river": ["tuo"]}, "notify": ["duty"]}]})
>>> cfg.routes[0].match.min_level
<WarningLevel.BLUE: 'blue'>
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.errors import AlertConfigError
from alerts.intakes import CHINA
from alerts.severity import SeverityRule
from riverguard.errors import describe_validation_error
from riverguard.incidents import Channel, Incident, Route, Silence, SilenceRecord, WarningLevel
from riverguard.models import DetectionKind
from riverguard.yamlfile import read_yaml_mapping

PLAYBOOK_TAG: Final = "playbook"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Match(_Section):
    """Empty lists match anything. ``kind`` holds detection kinds (``limit_exceedance``, ...)."""

    route: Route | None = None
    river: tuple[str, ...] = ()
    city: tuple[str, ...] = ()
    kind: tuple[DetectionKind, ...] = ()
    min_level: WarningLevel = WarningLevel.BLUE
    max_level: WarningLevel = WarningLevel.RED

    def fits(self, incident: Incident) -> bool:
        return (
            (self.route is None or incident.route is self.route)
            and (not self.river or incident.river in self.river)
            and (not self.city or any(c in self.city for c in incident.cities))
            and (not self.kind or incident.kind in self.kind)
            and self.min_level.rank <= incident.level.rank <= self.max_level.rank
        )


class RouteRule(_Section):
    name: str = Field(min_length=1)
    match: Match = Match()
    notify: tuple[str, ...] = Field(min_length=1)


class EscalationStage(_Section):
    after_min: float = Field(gt=0)
    notify: tuple[str, ...] = Field(min_length=1)


class Escalation(_Section):
    """Stages fire in order while an incident stays unacknowledged; all stop on acknowledgement."""

    min_level: WarningLevel = WarningLevel.YELLOW
    stages: tuple[EscalationStage, ...] = ()
    reminder_every_min: float | None = Field(default=15.0, gt=0)
    max_reminders: int = Field(default=8, ge=0)

    @model_validator(mode="after")
    def _increasing(self) -> Escalation:
        times = [s.after_min for s in self.stages]
        if times != sorted(times):
            raise ValueError(f"stages must be in increasing after_min order, got {times}")
        return self


class RateLimit(_Section):
    """Token bucket per target: ``burst`` at once, then ``per_hour`` refilled evenly."""

    burst: int = Field(default=10, ge=1)
    per_hour: float = Field(default=30.0, gt=0)


class Lifecycle(_Section):
    resolve_after_min: float = Field(default=60.0, gt=0)  # back to normal this long → resolved
    reopen_within_min: float = Field(default=120.0, ge=0)  # returns within this → same incident reopens
    # A detection processed this long after its reading is from a backlog (an outage, a replay), and
    # its messages say so. Hourly-data stations deliver a reading up to an hour after its time stamp.
    late_after_min: float = Field(default=30.0, gt=0)

    @property
    def resolve_after(self) -> timedelta:
        return timedelta(minutes=self.resolve_after_min)

    @property
    def reopen_within(self) -> timedelta:
        return timedelta(minutes=self.reopen_within_min)

    @property
    def late_after(self) -> timedelta:
        return timedelta(minutes=self.late_after_min)


class Digest(_Section):
    """A daily summary of the maintenance route's incidents (instrument faults, maintenance
    windows, data gaps) for the operations team, at ``at`` Beijing time."""

    notify: tuple[str, ...] = Field(min_length=1)
    at: time = time(8, 0)

    def due_since(self, now: datetime) -> datetime:
        """The latest digest time at or before ``now`` (aware, UTC)."""
        local = now.astimezone(CHINA)
        today = datetime.combine(local.date(), self.at, tzinfo=CHINA)
        return (today if today <= local else today - timedelta(days=1)).astimezone(UTC)


class Retry(_Section):
    base_s: float = Field(default=5.0, gt=0)
    max_s: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff after ``attempts`` failed attempts."""
        return timedelta(seconds=min(self.max_s, self.base_s * 2 ** max(0, attempts - 1)))


RateLimitScope = Literal["default", "sms", "im", "email", "webhook"]


_SCOPES: Final[dict[Channel, RateLimitScope]] = {
    Channel.SMS: "sms", Channel.SMS_TEMPLATE: "sms", Channel.IM: "im", Channel.EMAIL: "email",
    Channel.WEBHOOK: "webhook",
}


def _default_rate_limits() -> dict[RateLimitScope, RateLimit]:
    return {"default": RateLimit(), "sms": RateLimit(burst=3, per_hour=6)}


class RoutingConfig(_Section):
    routes: tuple[RouteRule, ...] = (RouteRule(name="everyone", notify=("all",)),)
    escalation: Escalation = Escalation()
    rate_limits: dict[RateLimitScope, RateLimit] = Field(
        default_factory=_default_rate_limits
    )
    channels: dict[str, Channel] = Field(default_factory=dict)  # Apprise tag → channel override
    silences: tuple[Silence, ...] = ()
    severity: SeverityRule = SeverityRule()
    lifecycle: Lifecycle = Lifecycle()
    retry: Retry = Retry()
    digest: Digest | None = None

    @model_validator(mode="after")
    def _unique_route_names(self) -> RoutingConfig:
        names = [r.name for r in self.routes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique, duplicated: {', '.join(duplicates)}")
        return self

    def rate_limit(self, channel: Channel) -> RateLimit:
        scope = _SCOPES[channel]
        return self.rate_limits.get(scope) or self.rate_limits.get("default") or RateLimit()

    def first_tags(self, incident: Incident) -> tuple[str, ...]:
        """Tags of every route that fits (stage 0); ``playbook`` stands for the departments the
        incident's playbook names in its action steps (the downstream cities' duty posts)."""
        tags: list[str] = []
        for rule in self.routes:
            if rule.match.fits(incident):
                for tag in rule.notify:
                    expanded = incident.playbook_tags if tag == PLAYBOOK_TAG else (tag,)
                    tags.extend(t for t in expanded if t not in tags)
        return tuple(tags)

    def tags_up_to(self, incident: Incident, stage: int) -> tuple[str, ...]:
        """Stage-0 tags plus those of escalation stages 1..``stage``."""
        tags = list(self.first_tags(incident))
        for s in self.escalation.stages[:stage]:
            tags.extend(t for t in s.notify if t not in tags)
        return tuple(tags)

    def silence_records(self) -> tuple[SilenceRecord, ...]:
        """The file's silences as records (id ``routing:N``), beside the ones set at runtime."""
        epoch = datetime(1970, 1, 1, tzinfo=UTC)  # the file says no time of creation
        return tuple(
            SilenceRecord(silence_id=f"routing:{n}", silence=s, created_by="routing file", created_at=epoch)
            for n, s in enumerate(self.silences)
        )

    def all_tags(self) -> dict[str, str]:
        """Every tag the file uses → where (for checking against the Apprise config)."""
        where: dict[str, str] = {}
        for i, rule in enumerate(self.routes):
            for tag in rule.notify:
                if tag != PLAYBOOK_TAG:  # the service logs playbook tags that select no target
                    where.setdefault(tag, f"routes[{i}] ({rule.name})")
        for i, stage in enumerate(self.escalation.stages):
            for tag in stage.notify:
                where.setdefault(tag, f"escalation.stages[{i}]")
        for tag in self.digest.notify if self.digest else ():
            where.setdefault(tag, "digest")
        return where


def load_routing(path: Path | None) -> RoutingConfig:
    """Read and check the routing file; without one, everything goes to every target."""
    if path is None:
        return RoutingConfig()
    data = read_yaml_mapping(path, "routing file", error=AlertConfigError)
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        raise AlertConfigError(f"routing file {path}: {describe_validation_error(exc)}") from exc
