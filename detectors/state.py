"""Detector checkpoints as versioned plain data: what a station's detector learned, never code.

A checkpoint is one JSON document: the format name and version, then the running statistics of
every part of the detector (baselines, health statistics, HalfSpaceTrees masses and splits, open
events, the last readings kept as evidence). Restoring parses and validates it field by field
with pydantic (``extra="forbid"``, finite numbers, bounded sizes); nothing in it is ever executed
or imported, so a record forged into the changelog topic can at worst reset a station's learning.

Why no HMAC: every river model the detectors use here can be written as data (HalfSpaceTrees
is a set of random splits and mass counters; the P² quantile is five markers), so there is no
opaque object left that would need a signature to be trusted.

Older checkpoints (format 1, a pickled detector behind the header ``riverguard.detector-state/1``)
are refused, not unpickled — loading them is exactly what could run code. Their stations start
fresh once and re-learn their baselines (``warmup_readings`` readings before spikes are scored;
regulatory limits apply at once); the next checkpoint is written in this format.

>>> try:
...     decode(b"riverguard.detector-state/1\\n\\x80\\x05...", "tuo-a")
... except StateError as exc:
...     print(str(exc).split(";")[0])
checkpoint of station tuo-a is a pickled detector (format 1 of an older riverguard)
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from detectors.errors import StateError
from riverguard.errors import describe_validation_error
from riverguard.models import DetectionKind, Reading

FORMAT: Final = "riverguard.detector-state"
VERSION: Final = 2
#: How format 1 (pickled detectors) began; recognised only to name it in the refusal.
PICKLED_HEADER: Final = b"riverguard.detector-state/1\n"

Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, lt=2**63)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
#: A reporting interval or span in seconds: non-negative, finite.
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class _State(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LatchState(_State):
    """An :class:`~detectors.events.EventLatch`: its persistence and its window of verdicts."""

    k: Annotated[int, Field(ge=1, le=64)]
    n: Annotated[int, Field(ge=1, le=64)]
    close_after: Annotated[int, Field(ge=1)]
    bits: Annotated[int, Field(ge=0, lt=2**64)]
    quiet: Count
    active: bool

    @model_validator(mode="after")
    def _k_of_n(self) -> LatchState:
        if self.k > self.n:
            raise ValueError(f"a latch needs k <= n, got k={self.k} n={self.n}")
        return self


class ChannelState(_State):
    """One kind of event on one parameter (key ``*``: station-wide) and its open event."""

    kind: DetectionKind
    key: Name
    latch: LatchState
    event_id: Annotated[str, Field(max_length=64)]
    parameters: tuple[Name, ...]
    seq: Count
    since_emit: Count
    emitted_peak: Finite
    open_readings: Count


Five = Annotated[tuple[Finite, Finite, Finite, Finite, Finite], Field()]


class QuantileState(_State):
    """river's P² quantile estimator: its five markers (heights and positions) and their increments."""

    q: Annotated[float, Field(gt=0, lt=1)]
    increments: Five
    desired: Five
    positions: Five
    heights: Five
    count: Annotated[int, Field(ge=0, le=5)]
    sorted: bool


class TrackState(_State):
    """A :class:`~detectors.baseline.ParameterTrack`: baseline, noise scale, health statistics."""

    n: Count
    level: Finite
    scale: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    #: Smallest change seen (the instrument's resolution); ``None`` before any change.
    quantum: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None
    prev: Finite | None
    diurnal: Annotated[tuple[Finite, ...], Field(min_length=24, max_length=24)]
    change_rate: Fraction
    run: Count
    run_rate: Fraction
    dscale: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    dn: Count
    jump: Finite
    tail: QuantileState | None


class PageHinkleyState(_State):
    """river's ``PageHinkley`` drift test: its parameters and running sums."""

    min_instances: Annotated[int, Field(ge=1)]
    delta: Finite
    threshold: Finite
    alpha: Annotated[float, Field(gt=0, le=1)]
    n: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    mean: Finite
    sum_increase: Finite
    sum_decrease: Finite
    #: ``None`` before the first value (river starts it at infinity).
    min_increase: Finite | None
    max_decrease: Finite
    detected: bool


class SensorState(_State):
    """A :class:`~detectors.faults.SensorFaults`: recent roughness and a level shift in progress."""

    jumps: QuantileState | None
    rough: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    trend: Finite
    last_surprise: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    shift_from: Finite
    shift_to: Finite
    shift_sum: Finite
    shift_low: Finite
    shift_high: Finite
    shift_left: Annotated[int, Field(ge=0, le=1000)]
    shift_open: bool
    shift_age: Count
    shift_trigger: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    block_sum: Finite
    block_count: Annotated[int, Field(ge=0, le=10_000)]
    block_lone: Annotated[int, Field(ge=0, le=10_000)]
    drift: PageHinkleyState
    drift_open: bool
    drift_level: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    drift_side: Annotated[int, Field(ge=-1, le=1)] = 0
    drift_since: Finite = 0.0
    drift_pending: bool = False


class TreeState(_State):
    """One half-space tree in depth-first order: the split of every branch, the masses of every node."""

    splits: list[tuple[Annotated[int, Field(ge=0)], Finite]]
    l_mass: list[Count]
    r_mass: list[Count]


class ForestState(_State):
    """river's ``HalfSpaceTrees``: its parameters, the features its trees split on, the trees."""

    n_trees: Annotated[int, Field(ge=1, le=256)]
    height: Annotated[int, Field(ge=1, le=12)]
    window_size: Annotated[int, Field(ge=1)]
    seed: int | None
    features: list[Name]
    counter: Count
    first_window: bool
    trees: list[TreeState]

    @model_validator(mode="after")
    def _complete_trees(self) -> ForestState:
        if self.trees and len(self.trees) != self.n_trees:
            raise ValueError(f"{len(self.trees)} trees, expected none or {self.n_trees}")
        branches, nodes = 2**self.height - 1, 2 ** (self.height + 1) - 1
        for i, tree in enumerate(self.trees):
            if (len(tree.splits), len(tree.l_mass), len(tree.r_mass)) != (branches, nodes, nodes):
                raise ValueError(f"tree {i} is not a complete tree of height {self.height}")
            if any(feature >= len(self.features) for feature, _ in tree.splits):
                raise ValueError(f"tree {i} splits on a feature it does not have")
        return self


class SpikeState(_State):
    forest: ForestState | None
    features: list[Name]
    previous: dict[Name, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(max_length=256)


class CadenceState(_State):
    """When the station last reported, how often it usually does, and an open silence."""

    last_time: AwareDatetime | None
    interval_s: Seconds
    silent_since: AwareDatetime | None


class ExpectedState(_State):
    """A parameter an upstream station reported pollution in, and until when a rise here counts."""

    parameter: Name
    until: AwareDatetime
    source: Name


class VerdictState(_State):
    """An operator's verdict on one incident of the station (the latest per label)."""

    label: Annotated[str, Field(min_length=1, max_length=200)]
    verdict: Literal["confirmed_pollution", "instrument_fault", "false_alarm", "drill"]
    start: AwareDatetime
    end: AwareDatetime


class FloodState(_State):
    """A :class:`~detectors.flood.FloodWindow`: the current flood's start, its last high water
    (epoch seconds) and whether the water is high now."""

    since: Finite | None = None
    last: Finite | None = None
    high: bool = False


class StationState(_State):
    """Everything one station's detector learned (the tuning itself is configuration, not state)."""

    format: Literal["riverguard.detector-state"]
    version: Literal[2]
    station_id: Name
    readings: Count
    stale_readings: Count
    last_score: Finite
    cadence: CadenceState
    tracks: dict[Name, TrackState] = Field(max_length=256)
    sensors: dict[Name, SensorState] = Field(max_length=256)
    channels: list[ChannelState] = Field(max_length=1024)
    #: Limit-checked parameters that have exceeded their limit at least once.
    watched: list[Name] = Field(max_length=256)
    spikes: SpikeState
    recent: list[Reading] = Field(max_length=64)
    expected: list[ExpectedState] = Field(max_length=256)
    verdicts: list[VerdictState] = Field(max_length=256)
    #: Absent in checkpoints written before floods were followed: no flood then.
    flood: FloodState = FloodState()


def encode(state: StationState) -> bytes:
    """The checkpoint bytes of ``state`` (compact JSON)."""
    return state.model_dump_json().encode()


def decode(data: bytes, station_id: str) -> StationState:
    """Parse and validate a checkpoint of ``station_id``; :class:`StateError` says why it is refused."""
    where = f"checkpoint of station {station_id}"
    if data.startswith(PICKLED_HEADER):
        raise StateError(
            f"{where} is a pickled detector (format 1 of an older riverguard); it is not unpickled, "
            "because unpickling runs code"
        )
    try:
        header = _Header.model_validate_json(data)
    except ValidationError as exc:
        raise StateError(f"{where} is not a detector state document ({describe_validation_error(exc)})") from exc
    if header.format != FORMAT:
        raise StateError(f"{where} has format {header.format!r}, expected {FORMAT!r}")
    if header.version != VERSION:
        raise StateError(f"{where} has format version {header.version}, this riverguard reads version {VERSION}")
    try:
        state = StationState.model_validate_json(data)
    except ValidationError as exc:
        raise StateError(f"{where} is malformed: {describe_validation_error(exc)}") from exc
    if state.station_id != station_id:
        raise StateError(f"{where} holds the state of station {state.station_id}")
    return state


class _Header(BaseModel):
    """What any version of the format starts with: enough to name a version this one cannot read."""

    model_config = ConfigDict(extra="ignore")

    format: str
    version: int
