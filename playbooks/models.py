"""The playbook's data: receptors with arrival times, action steps, suspected sources, contacts.

Built by :func:`playbooks.playbook.build_playbook`; rendered by :mod:`playbooks.render`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from riverguard.parameters import PollutantClass

ReceptorKind = Literal["intake", "station", "interception", "confluence", "outlet"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    """A registered upstream risk source that could explain the alert."""

    name: str
    kind: str
    city: str
    river_km: float
    distance_km: float
    travel_h: float
    match: Literal["pollutant", "class"]
    pollutants: tuple[str, ...]


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
    data_quality: str = ""

    @property
    def nearest_intake(self) -> ReceptorArrival | None:
        """The first drinking-water intake the plume reaches."""
        return next((r for r in self.receptors if r.kind == "intake"), None)
