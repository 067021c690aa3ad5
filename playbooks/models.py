"""The playbook's data: receptors with arrival times, action steps, suspected sources, contacts.

Built by :func:`playbooks.playbook.build_playbook`; rendered by :mod:`playbooks.render`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from riverguard.parameters import PollutantClass

ReceptorKind = Literal["intake", "station", "interception", "confluence", "outlet"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StationObservation(_Model):
    """What one station saw of a plume: when the pollutant first exceeded ``threshold`` (mg/L; by
    default the pollutant's drinking-water limit), when it peaked and at what, and when it was
    back under the threshold. Give what is known; a station still in the plume has no
    ``normal_again_at`` yet."""

    station_id: str
    first_exceeded_at: AwareDatetime | None = None
    peak_at: AwareDatetime | None = None
    peak_concentration: float | None = Field(default=None, ge=0)
    normal_again_at: AwareDatetime | None = None
    threshold: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> StationObservation:
        times = [t for t in (self.first_exceeded_at, self.peak_at, self.normal_again_at) if t is not None]
        if self.first_exceeded_at is None and self.peak_at is None:
            raise ValueError(f"station {self.station_id!r}: give at least one of first_exceeded_at, peak_at")
        if times != sorted(times):
            raise ValueError(
                f"station {self.station_id!r}: first_exceeded_at ≤ peak_at ≤ normal_again_at must hold, "
                f"got {', '.join(t.isoformat() for t in times)}"
            )
        return self

    @property
    def centre(self) -> datetime:
        """When the middle of the plume passed: its peak, else the middle of the exceedance."""
        if self.peak_at is not None:
            return self.peak_at
        first = self.first_exceeded_at
        if first is None:
            raise AssertionError("validated: first_exceeded_at or peak_at is set")
        if self.normal_again_at is not None:
            return first + (self.normal_again_at - first) / 2
        return first


class StationCheck(_Model):
    """A station below the first that saw the plume: what the model said before it came, and what
    the station saw (times timezone-aware; the model's arrival is its crossing of the threshold)."""

    station_id: str
    name: str
    river_km: float
    predicted_arrival_at: AwareDatetime | None = None
    predicted_peak_at: AwareDatetime | None = None
    predicted_peak_concentration: float | None = None
    observed_first_exceeded_at: AwareDatetime | None = None
    observed_peak_at: AwareDatetime | None = None
    observed_peak_concentration: float | None = None

    @property
    def arrival_error_h(self) -> float | None:
        """Observed − predicted arrival (h): positive when the plume came later than said."""
        if self.observed_first_exceeded_at is None or self.predicted_arrival_at is None:
            return None
        return (self.observed_first_exceeded_at - self.predicted_arrival_at).total_seconds() / 3600.0


class StretchFit(_Model):
    """The live correction of the river between two stations that saw the plume: the factors on the
    file's velocities and dispersion that reproduce what the lower one saw (applied below it too)."""

    from_station: str
    to_station: str
    from_km: float
    to_km: float
    velocity_factor: float
    dispersion_factor: float


class ReceptorArrival(_Model):
    """When the plume reaches one downstream feature (times are timezone-aware)."""

    name: str
    kind: ReceptorKind
    city: str
    river_km: float
    distance_km: float
    leading_edge_at: AwareDatetime
    peak_at: AwareDatetime
    trailing_edge_at: AwareDatetime
    #: The leading edge if all velocities are 30 % higher (fast) / lower (slow).
    leading_edge_fast_at: AwareDatetime
    leading_edge_slow_at: AwareDatetime
    peak_concentration: float | None = None
    #: Whether the peak exceeds the GB 3838 class III limit (drinking-water sources); None if unknown.
    exceeds_limit: bool | None = None
    population: int | None = None
    estimated_position: bool = False
    station_id: str | None = None
    capabilities: tuple[str, ...] = ()


class ActionStep(_Model):
    """One step of the plan: what, where, who, by when, and who to notify."""

    order: int
    what_zh: str
    what_en: str
    where: str
    who: str
    deadline: AwareDatetime | None = None
    apprise_tags: tuple[str, ...] = ()


class SuspectedSource(_Model):
    """An upstream source that could explain the alert: a registered outfall or risk source, or an
    unregistered discharge somewhere on a reach (``kind`` "unregistered"). ``probability`` comes
    from source tracing (:mod:`playbooks.tracing`); without it the list is by distance."""

    name: str
    kind: str
    city: str
    river_km: float
    distance_km: float
    travel_h: float
    match: Literal["pollutant", "class", "other"]
    pollutants: tuple[str, ...]
    probability: float | None = None
    enterprise: str = ""


class ReleaseEstimate(_Model):
    """Where and when the release most likely was (92 % intervals), and how much was released."""

    km_low: float
    km_high: float
    km_best: float
    start_low: AwareDatetime
    start_high: AwareDatetime
    mass_kg: float
    #: The reach an unregistered discharge would be in, when no registered source fits well.
    unregistered_reach: tuple[float, float] | None = None


class PlumeSpan(_Model):
    """Where the plume is ``hours`` after the alert: river-km above 10 % of its highest concentration."""

    hours: float
    from_km: float
    to_km: float


class DepartmentContact(_Model):
    name: str
    city: str
    role: str
    apprise_tags: tuple[str, ...]


class Playbook(_Model):
    """A complete response plan for one alert on one river."""

    river: str
    river_name_zh: str
    station_id: str
    station_name: str
    station_city: str
    station_km: float
    pollutant: str
    pollutant_name_zh: str
    pollutant_name_en: str
    pollutant_class: PollutantClass
    unit: str
    at: AwareDatetime
    concentration: float | None = None
    discharge_m3s: float | None = None
    horizon_h: float
    #: Assumed time (h) the plume takes to pass the alerting station; sets its initial spread.
    pulse_h: float
    receptors: list[ReceptorArrival] = Field(default_factory=list)
    #: Downstream receptors the plume reaches only after the horizon (named, not dropped).
    beyond_horizon: list[str] = Field(default_factory=list)
    actions: list[ActionStep] = Field(default_factory=list)
    suspected_sources: list[SuspectedSource] = Field(default_factory=list)
    departments: list[DepartmentContact] = Field(default_factory=list)
    #: The plume on the map: now and later (hours after the alert), while it is on the network.
    plume: list[PlumeSpan] = Field(default_factory=list)
    #: Stations below the first that saw the plume: predicted against observed.
    station_checks: list[StationCheck] = Field(default_factory=list)
    #: Live correction: the factors fitted between stations that saw the plume (empty: the file's).
    corrections: list[StretchFit] = Field(default_factory=list)
    #: Source tracing: where and when it was released (None: not traced, e.g. pH).
    release: ReleaseEstimate | None = None
    data_quality: str = ""

    @property
    def nearest_intake(self) -> ReceptorArrival | None:
        """The first drinking-water intake the plume reaches."""
        return next((r for r in self.receptors if r.kind == "intake"), None)
