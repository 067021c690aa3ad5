"""Wire models of the alert service: ``Incident`` (compacted ``incidents`` topic, key = incident id)
and ``NotificationRecord`` (``notifications`` topic, one record per delivery attempt).

Both are plain JSON on the wire (``riverguard.models.encode``), so the InfluxDB sink and
dashboards read them without importing ``alerts``. An incident carries its own outbox (the
notifications it still owes): the record that says "sent" is the one that stops a resend after a
restart.

>>> from datetime import datetime, timezone
>>> t = datetime(2024, 1, 5, 10, 30, tzinfo=timezone.utc)
>>> key = PollutionKey(river="tuo", reach="tuo-r2", pollutant="NH3N")
>>> i = Incident(incident_id="RG-0A1B2C3D", key=key, route=Route.POLLUTION,
...              river="tuo", reach="tuo-r2", pollutant="NH3N", kind=DetectionKind.LIMIT_EXCEEDANCE,
...              level=WarningLevel.YELLOW, opened_at=t, updated_at=t, last_active_at=t)
>>> i.status, i.level.label_zh
(<IncidentStatus.OPEN: 'open'>, '黄色')
>>> Incident.model_validate_json(i.model_dump_json()) == i
True

Changes go through :meth:`~_Frozen.evolve`, which validates them as the constructor would
(``model_copy(update=...)`` would accept a misspelt field or a wrong type without a word):

>>> i.evolve(level="purple")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Incident
level
  Input should be 'blue', 'yellow', 'orange' or 'red' [type=enum, input_value='purple', input_type=str]
...
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from riverguard.models import Detection, DetectionKind, RiverId, StationId

HISTORY_LIMIT: Final = 50
M = TypeVar("M", bound=BaseModel)


def evolved(model: M, **changes: Any) -> M:
    """A copy of ``model`` with ``changes`` applied and validated (unknown fields and wrong types raise).

    Fields not changed are handed over as they are: nested models are not validated again.
    """
    return model.model_validate({**model.__dict__, **changes})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def evolve(self, **changes: Any) -> Self:
        """:func:`evolved`: a validated copy with ``changes``."""
        return evolved(self, **changes)


class WarningLevel(StrEnum):
    """China's four environmental-emergency warning levels, lowest to highest."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def label_zh(self) -> str:
        return _LABELS_ZH[self]

    @classmethod
    def from_rank(cls, rank: int) -> WarningLevel:
        """Clamp ``rank`` to 1..4 and return the level."""
        return _BY_RANK[max(1, min(4, rank))]


_RANKS: Final = {WarningLevel.BLUE: 1, WarningLevel.YELLOW: 2, WarningLevel.ORANGE: 3, WarningLevel.RED: 4}
_BY_RANK: Final = {rank: level for level, rank in _RANKS.items()}
_LABELS_ZH: Final = {
    WarningLevel.BLUE: "蓝色",
    WarningLevel.YELLOW: "黄色",
    WarningLevel.ORANGE: "橙色",
    WarningLevel.RED: "红色",
}


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Route(StrEnum):
    """Pollution incidents page people; instrument trouble goes to the lower-priority maintenance route."""

    POLLUTION = "pollution"
    MAINTENANCE = "maintenance"


class Channel(StrEnum):
    SMS = "sms"
    SMS_TEMPLATE = "sms_template"  # Chinese SMS gateways (Aliyun, Tencent): approved template + variables
    IM = "im"  # DingTalk / WeCom / Feishu markdown
    EMAIL = "email"
    WEBHOOK = "webhook"  # anything else (json://, ntfy, ...): the IM markdown text


class KindGroup(StrEnum):
    """Detections of one river reach and pollutant share an incident unless they differ in this."""

    WATER = "water"  # water quality: spikes, limit exceedances, class downgrades
    FLOW = "flow"  # ecological minimum flow


class PollutionKey(_Frozen):
    """What pollution detections share an incident by: river, reach, main pollutant and kind group."""

    route: Literal[Route.POLLUTION] = Route.POLLUTION
    river: RiverId
    reach: str = Field(min_length=1)
    pollutant: str = Field(min_length=1)
    group: KindGroup = KindGroup.WATER

    def on_reach(self, reach: str) -> PollutionKey:
        """The same river, pollutant and group on another reach (a plume joins the incident upstream)."""
        return self.evolve(reach=reach)


class MaintenanceKey(_Frozen):
    """Instrument trouble is per station: one incident lists every parameter and kind of it."""

    route: Literal[Route.MAINTENANCE] = Route.MAINTENANCE
    station: StationId


def _from_text(value: object) -> object:
    """Keys written before they were typed were ``pollution|river|reach|pollutant[|group]`` or
    ``maintenance|station|kind``: read them, so the incidents topic of an earlier release restores."""
    if not isinstance(value, str):
        return value
    route, *parts = value.split("|")
    if route == Route.MAINTENANCE and len(parts) == 2:  # the kind is no longer part of the key
        return {"route": route, "station": parts[0]}
    if route == Route.POLLUTION and len(parts) in (3, 4):
        return {"route": route, **dict(zip(("river", "reach", "pollutant", "group"), parts, strict=False))}
    raise ValueError(f"incident key {value!r} is neither pollution|river|reach|pollutant|group nor "
                     "maintenance|station|kind")


IncidentKey = Annotated[PollutionKey | MaintenanceKey, Field(discriminator="route"), BeforeValidator(_from_text)]


class Verdict(StrEnum):
    """What an incident turned out to be, said by whoever resolves it (feeds detector tuning)."""

    CONFIRMED_POLLUTION = "confirmed_pollution"
    INSTRUMENT_FAULT = "instrument_fault"
    FALSE_ALARM = "false_alarm"
    DRILL = "drill"


class Silence(_Frozen):
    """``silence`` mutes notifications (the incident is still tracked and recorded); ``maintenance``
    also turns the station's detections into maintenance-route events. Empty fields match anything,
    but a silence needs a station or a river: nothing mutes every river at once."""

    kind: Literal["silence", "maintenance"] = "silence"
    station: StationId | None = None
    river: RiverId | None = None
    pollutant: str | None = None
    route: Route | None = None
    starts: AwareDatetime | None = None
    until: AwareDatetime
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _scoped(self) -> Silence:
        if self.station is None and self.river is None:
            raise ValueError("a silence needs a station or a river")
        if self.starts is not None and self.starts >= self.until:
            raise ValueError(f"a silence must start before it ends (starts {self.starts}, until {self.until})")
        return self

    def covers(
        self, *, station: str | None, river: str, at: datetime, pollutant: str | None = None, route: Route | None = None
    ) -> bool:
        if at >= self.until or (self.starts is not None and at < self.starts):
            return False
        return (
            (self.station is None or self.station == station)
            and (self.river is None or self.river == river)
            and (self.pollutant is None or self.pollutant == pollutant)
            and (self.route is None or self.route is route)
        )

    def describe(self) -> str:
        scope = " ".join(s for s in (self.station or self.river, self.pollutant, self.route) if s)
        return f"{self.kind} {scope} until {self.until.isoformat()}: {self.reason}"


class SilenceRecord(_Frozen):
    """A silence and who set it: the routing file's, or one set at runtime (persisted by its id).

    ``silence_id`` is ``routing:N`` for the routing file's N-th silence.
    """

    silence_id: str = Field(min_length=1)
    silence: Silence
    created_by: str = Field(min_length=1)
    created_at: AwareDatetime
    expired_at: AwareDatetime | None = None
    expired_by: str = ""

    def active(self, at: datetime) -> bool:
        return (self.expired_at is None or at < self.expired_at) and at < self.silence.until

    def describe(self) -> str:
        return f"{self.silence_id} ({self.created_by}): {self.silence.describe()}"


class ActionTick(_Frozen):
    """One playbook action ticked (or unticked) on the incident's checklist."""

    action_id: str = Field(min_length=1)  # the console's stable id of the action (e.g. its step order)
    done: bool = True
    by: str = Field(min_length=1)
    at: AwareDatetime


class Covered(_Frozen):
    """One incident a summary or a digest speaks for."""

    incident_id: str
    route: Route
    level: WarningLevel
    status: IncidentStatus
    river: str
    station: str
    subject: tuple[str, ...]  # the pollutant, or the instrument's parameters
    kinds: tuple[DetectionKind, ...] = ()
    held: int = 0  # notifications of it the rate limit held back
    opened_at: AwareDatetime


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # not sent yet, or failed and waiting for its next attempt
    SENT = "sent"
    GAVE_UP = "gave_up"  # failed max attempts
    SUPPRESSED = "suppressed"  # silenced or rate limited (rate-limited ones are summarised later)


class NotificationReason(StrEnum):
    OPENED = "opened"
    LEVEL_RAISED = "level_raised"
    ESCALATION = "escalation"
    REMINDER = "reminder"
    REOPENED = "reopened"
    RESOLVED = "resolved"
    SUMMARY = "summary"  # what a rate limit held back during a storm
    DIGEST = "digest"  # the day's maintenance incidents, for the operations team


class Reason(_Frozen):
    """One factor of the warning level, in both languages ("why red")."""

    zh: str
    en: str


class IntakeArrival(_Frozen):
    """When a playbook expects the plume at one drinking-water intake downstream."""

    name: str
    river_km: float  # along the river, growing downstream
    leading_edge_at: AwareDatetime
    leading_edge_fast_at: AwareDatetime  # the leading edge if the water runs 30 % faster: the earliest
    trailing_edge_at: AwareDatetime


class IncidentEvent(_Frozen):
    """A line of the incident's history."""

    at: AwareDatetime
    what: str  # opened, updated, level_raised, escalated, acknowledged, resolved, reopened
    by: str = ""
    note: str = ""


class OutboxEntry(_Frozen):
    """A notification owed to one target. ``notification_id`` is stable across replays."""

    notification_id: str
    target_id: str
    channel: Channel
    reason: NotificationReason
    stage: int = 0
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    created_at: AwareDatetime
    next_attempt_at: AwareDatetime
    last_error: str = ""
    note: str = ""  # why suppressed
    reading_at: AwareDatetime | None = None  # the reading time the notification speaks of
    covers: tuple[Covered, ...] = ()  # a summary's or digest's incidents, most severe first

    def suppressed(self, why: str) -> OutboxEntry:
        """Not to be sent, and why (kept, with a delivery record, so nothing vanishes without a trace)."""
        return self.evolve(status=DeliveryStatus.SUPPRESSED, note=why)


class Incident(_Frozen):
    """The latest state of one incident (one river reach + pollutant (+ kind) while active)."""

    incident_id: str
    key: IncidentKey
    route: Route
    river: str
    reach: str
    pollutant: str
    kind: DetectionKind
    status: IncidentStatus = IncidentStatus.OPEN
    level: WarningLevel
    level_reasons: tuple[Reason, ...] = ()
    opened_at: AwareDatetime  # processing times: when the service opened it, last changed it,
    updated_at: AwareDatetime  # last saw a detection of it
    last_active_at: AwareDatetime
    first_reading_at: AwareDatetime | None = None  # reading (event) times: of its first detection
    reading_at: AwareDatetime | None = None  # and of its latest one
    normal_since: AwareDatetime | None = None
    acknowledged_at: AwareDatetime | None = None
    acknowledged_by: str = ""
    resolved_at: AwareDatetime | None = None
    resolved_by: str = ""
    verdict: Verdict | None = None
    reopen_count: int = 0
    first_station: str = ""
    stations: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()  # every parameter its detections named (an instrument's: what failed)
    kinds: tuple[DetectionKind, ...] = ()  # every detection kind it has seen
    active_events: tuple[str, ...] = ()  # detector event ids not yet cleared
    detection_count: int = 0
    peak_value: float | None = None
    peak_multiple: float | None = None
    unit: str = ""
    nearest_intake: str = ""
    playbook_tags: tuple[str, ...] = ()  # Apprise tags of the departments the playbook's actions name
    intake_arrival_at: AwareDatetime | None = None
    # every intake the plume front's playbook names, downstream order; nearest_intake is the next one
    intakes: tuple[IntakeArrival, ...] = ()
    front_km: float | None = None  # river km of the most downstream station that saw the plume
    paging_since: AwareDatetime | None = None  # escalation clock: opened or reopened at
    escalation_stage: int = 0
    reminders_sent: int = 0
    last_notified_at: AwareDatetime | None = None
    silenced_by: str = ""  # what the silence holding its notifications back says
    silence_id: str = ""
    checklist: tuple[ActionTick, ...] = ()  # the latest tick per playbook action
    latest_detection: Detection | None = None
    history: tuple[IncidentEvent, ...] = ()
    outbox: tuple[OutboxEntry, ...] = ()

    @model_validator(mode="after")
    def _route_of_key(self) -> Incident:
        if self.key.route is not self.route:
            raise ValueError(f"route {self.route.value} but key of the {self.key.route.value} route")
        return self

    @property
    def is_active(self) -> bool:
        return self.status is not IncidentStatus.RESOLVED

    @property
    def lag(self) -> timedelta | None:
        """How far behind its readings the latest detection was processed (a backlog shows here)."""
        return None if self.reading_at is None else self.last_active_at - self.reading_at

    def with_event(self, at: datetime, what: str, by: str = "", note: str = "") -> Incident:
        """The incident with a line added to its history (the oldest lines beyond the limit dropped)."""
        history = (*self.history, IncidentEvent(at=at, what=what, by=by, note=note))[-HISTORY_LIMIT:]
        return self.evolve(history=history)


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # will be retried
    GAVE_UP = "gave_up"
    SUPPRESSED = "suppressed"


class NotificationRecord(_Frozen):
    """One delivery attempt (or suppression) of one notification to one target."""

    record_id: str  # notification_id + "#" + attempt: stable, so a replay overwrites
    notification_id: str
    incident_id: str
    target_id: str
    target: str  # the Apprise URL with secrets redacted
    channel: Channel
    reason: NotificationReason
    level: WarningLevel
    river: str
    attempt: int
    outcome: DeliveryOutcome
    at: AwareDatetime  # when the attempt was made (processing time)
    reading_at: AwareDatetime | None = None  # the reading time the notification speaks of
    route: Route | None = None
    covers: tuple[str, ...] = ()  # incident ids a summary or digest speaks for
    error: str = ""
    title: str = ""
