"""The river network (一河): reaches, junctions, stations, receptors and resources of one river.

A network is one main stem described as a chain of reaches, measured in river-km that grow
downstream from the network's upstream end. Every feature (station, intake, interception point,
depot, risk source, tributary junction) sits at a river-km on that chain; map coordinates come
from the ``course`` polyline unless a feature gives its own ``lon``/``lat``. The file format is
documented, with every field commented, in ``playbooks/networks/example.yaml``.

>>> from playbooks.loader import load_network
>>> tuo = load_network("tuo")
>>> [r.id for r in tuo.chain][:2]
['tuo-r1', 'tuo-r2']
>>> tuo.station("tuo-tuojiangdaqiao").name
'沱江大桥'
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from playbooks.errors import UnknownFeatureError
from riverguard.parameters import PARAMETERS

RiverKm = Annotated[float, Field(ge=0)]
Lon = Annotated[float, Field(ge=-180, le=180)]
Lat = Annotated[float, Field(ge=-90, le=90)]
_KM_TOLERANCE = 1e-6


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CoursePoint(_Item):
    """A knot of the river's centre line, used to place features on the map."""

    river_km: RiverKm
    lon: Lon
    lat: Lat


class Reach(_Item):
    """A stretch of the main stem with uniform typical hydraulics.

    ``downstream`` names the next reach (``None`` for the last one); the chain is followed
    through these links, so a file's list order does not matter.
    """

    id: Annotated[str, Field(min_length=1)]
    name: str = ""
    from_km: RiverKm
    to_km: RiverKm
    velocity_ms: Annotated[float, Field(gt=0)]
    discharge_m3s: Annotated[float, Field(gt=0)]
    width_m: Annotated[float, Field(gt=0)]
    depth_m: Annotated[float, Field(gt=0)]
    slope: Annotated[float, Field(gt=0, lt=1)]
    reservoir: bool = False
    #: Measured longitudinal dispersion (m²/s); overrides Fischer's estimate when given.
    dispersion_m2s: Annotated[float, Field(gt=0)] | None = None
    downstream: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _positive_length(self) -> Reach:
        if self.to_km - self.from_km <= _KM_TOLERANCE:
            raise ValueError(
                f"reach {self.id!r}: length {self.to_km - self.from_km:g} km is not positive "
                f"(from_km {self.from_km:g}, to_km {self.to_km:g}; river-km grows downstream)"
            )
        return self

    @property
    def length_km(self) -> float:
        return self.to_km - self.from_km


class _Feature(_Item):
    name: Annotated[str, Field(min_length=1)]
    river_km: RiverKm
    city: str = ""
    lon: Lon | None = None
    lat: Lat | None = None
    #: True when the position (river-km and coordinates) is an estimate, not a surveyed value.
    estimated_position: bool = False
    note: str = ""


class Junction(_Feature):
    """A tributary joining the main stem (adds discharge downstream; drawn as a stub)."""

    name_en: str = ""
    discharge_m3s: Annotated[float, Field(ge=0)] | None = None
    #: A point up the tributary, only for drawing its mouth on the map.
    upstream_lon: Lon | None = None
    upstream_lat: Lat | None = None


class StationSite(_Feature):
    """An automatic monitoring station (ids match ``riverguard/data/stations.yaml``)."""

    station_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class Intake(_Feature):
    """A drinking-water intake. Exact positions are not public: they default to estimates."""

    population: Annotated[int, Field(ge=0)] | None = None
    operator: str = ""
    estimated_position: bool = True


Capability = Literal["hold", "divert", "dose", "dilute", "boom"]


class InterceptionPoint(_Feature):
    """A dam, sluice, weir, pond or bridge usable to hold, divert, dose or dilute polluted water."""

    kind: Literal["dam", "sluice", "weir", "pond", "bridge", "reach"]
    capabilities: Annotated[tuple[Capability, ...], Field(min_length=1)]


class Depot(_Feature):
    """An emergency material depot (activated carbon, lime, booms, sorbents ...)."""

    materials: Annotated[tuple[str, ...], Field(min_length=1)]


class RiskSource(_Feature):
    """A registered upstream risk source and the pollutants it could release."""

    kind: Literal[
        "chemical_park",
        "tailings_pond",
        "phosphorus_plant",
        "outfall",
        "wastewater_plant",
        "industrial",
        "mine",
        "oil_depot",
        "livestock",
    ]
    pollutants: Annotated[tuple[str, ...], Field(min_length=1)]

    @field_validator("pollutants")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p not in PARAMETERS]
        if unknown:
            raise ValueError(f"unknown pollutants {unknown}; use canonical names such as NH3N, TP, Cd, petroleum")
        return value


#: A reach boundary whose flow differs from what arrives (upstream reach + its junctions) by more
#: than this share of the larger of the two is a contradiction in the file, not an ungauged inflow.
BALANCE_TOLERANCE: Final = 0.2


@dataclass(frozen=True, slots=True)
class BoundaryFlow:
    """The flow arriving at the top of ``reach_id`` against the reach's own discharge."""

    reach_id: str
    river_km: float
    arriving_m3s: float
    reach_m3s: float

    @property
    def residual_m3s(self) -> float:
        """Ungauged inflow (> 0) or withdrawal (< 0) where the reach begins."""
        return self.reach_m3s - self.arriving_m3s

    @property
    def balanced(self) -> bool:
        return abs(self.residual_m3s) <= BALANCE_TOLERANCE * max(self.arriving_m3s, self.reach_m3s)


def inflows(junctions: tuple[Junction, ...], reach: Reach) -> list[Junction]:
    """Junctions adding water to ``reach``: below its start, down to and including its end."""
    return [j for j in junctions if j.discharge_m3s and reach.from_km < j.river_km <= reach.to_km]


def flow_balance(chain: tuple[Reach, ...], junctions: tuple[Junction, ...]) -> list[BoundaryFlow]:
    """For each reach below the first: what arrives from above (reach + junctions) and its own flow.

    >>> from playbooks.loader import load_network
    >>> net = load_network("jialing")
    >>> [f"{b.reach_id} {b.arriving_m3s:g}→{b.reach_m3s:g}" for b in flow_balance(net.chain, net.junctions)][:2]
    ['jialing-r2 300→320', 'jialing-r3 570→600']
    """
    out = []
    for upper, lower in itertools.pairwise(chain):
        arriving = upper.discharge_m3s + sum(j.discharge_m3s or 0.0 for j in inflows(junctions, upper))
        out.append(BoundaryFlow(lower.id, lower.from_km, arriving, lower.discharge_m3s))
    return out


class Outfall(_Item):
    """A registered river outfall (入河排污口): where, whose, what it may discharge and how much.

    It sits on the main stem (``river_km``) or on a tributary (``tributary``: a junction's name; it
    counts at that junction's km). Entries come from the local 入河排污口名录 — the shipped ones
    are illustrative estimates.
    """

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: Annotated[str, Field(min_length=1)]
    river_km: RiverKm | None = None
    tributary: str | None = None
    city: str = ""
    enterprise: str = ""
    pollutants: Annotated[tuple[str, ...], Field(min_length=1)]
    permitted_flow_m3d: Annotated[float, Field(ge=0)] | None = None
    lon: Lon | None = None
    lat: Lat | None = None
    estimated_position: bool = True
    note: str = ""

    @field_validator("pollutants")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return RiskSource._known(value)

    @model_validator(mode="after")
    def _placed(self) -> Outfall:
        if (self.river_km is None) == (self.tributary is None):
            raise ValueError(f"outfall {self.id!r}: give either river_km (main stem) or tributary (a junction's name)")
        return self


Role = Literal["environment", "water", "emergency", "water_supply", "government", "transport"]


class Department(_Item):
    """A responsible department of a city and the Apprise tags that reach its duty officers."""

    city: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    role: Role
    apprise_tags: Annotated[tuple[str, ...], Field(min_length=1)]


class RiverNetwork(_Item):
    """One river's validated network. ``chain`` is the reaches in upstream→downstream order."""

    river: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
    name_zh: Annotated[str, Field(min_length=1)]
    name_en: str = ""
    description: str = ""
    data_quality: str = ""
    course: Annotated[tuple[CoursePoint, ...], Field(min_length=2)]
    reaches: Annotated[tuple[Reach, ...], Field(min_length=1)]
    junctions: tuple[Junction, ...] = ()
    stations: tuple[StationSite, ...] = ()
    intakes: tuple[Intake, ...] = ()
    interception_points: tuple[InterceptionPoint, ...] = ()
    depots: tuple[Depot, ...] = ()
    risk_sources: tuple[RiskSource, ...] = ()
    outfalls: tuple[Outfall, ...] = ()
    departments: tuple[Department, ...] = ()

    @model_validator(mode="after")
    def _valid(self) -> RiverNetwork:
        chain = _resolve_chain(self.reaches)
        start, end = chain[0].from_km, chain[-1].to_km
        kms = [p.river_km for p in self.course]
        if any(b <= a for a, b in itertools.pairwise(kms)):
            raise ValueError("course: river_km of the course points must strictly increase downstream")
        if kms[0] > start + _KM_TOLERANCE or kms[-1] < end - _KM_TOLERANCE:
            raise ValueError(f"course: covers km {kms[0]:g}–{kms[-1]:g} but the reaches span km {start:g}–{end:g}")
        groups: list[tuple[str, tuple[_Feature, ...]]] = [
            ("junctions", self.junctions),
            ("stations", self.stations),
            ("intakes", self.intakes),
            ("interception_points", self.interception_points),
            ("depots", self.depots),
            ("risk_sources", self.risk_sources),
        ]
        for group, features in groups:
            names: set[str] = set()
            for feature in features:
                label = getattr(feature, "station_id", feature.name)
                if not start - _KM_TOLERANCE <= feature.river_km <= end + _KM_TOLERANCE:
                    raise ValueError(
                        f"{group}: {label!r} at river-km {feature.river_km:g} is off the chain "
                        f"(reaches span km {start:g}–{end:g})"
                    )
                if label in names:
                    raise ValueError(f"{group}: {label!r} appears twice")
                names.add(label)
            _check_order(group, features)
        for boundary in flow_balance(chain, self.junctions):
            if not boundary.balanced:
                raise ValueError(
                    f"reaches: {boundary.reach_id!r} carries {boundary.reach_m3s:g} m³/s, but "
                    f"{boundary.arriving_m3s:g} m³/s arrive from above (the reach above plus its junctions): "
                    f"more than {BALANCE_TOLERANCE:.0%} apart — fix a reach's or a junction's discharge_m3s"
                )
        _check_outfalls(self.outfalls, {j.name: j.river_km for j in self.junctions}, start, end)
        cities = {d.city for d in self.departments}
        for intake in self.intakes:
            if intake.city not in cities:
                raise ValueError(f"intakes: {intake.name!r} is in city {intake.city!r}, which has no departments")
        return self

    @cached_property
    def chain(self) -> tuple[Reach, ...]:
        return _resolve_chain(self.reaches)

    @property
    def start_km(self) -> float:
        return self.chain[0].from_km

    @property
    def end_km(self) -> float:
        return self.chain[-1].to_km

    def reach_at(self, river_km: float) -> Reach:
        """The reach containing ``river_km`` (a boundary belongs to the downstream reach)."""
        starts = [r.from_km for r in self.chain]
        index = max(0, min(bisect.bisect_right(starts, river_km) - 1, len(self.chain) - 1))
        return self.chain[index]

    def station(self, station_id: str) -> StationSite:
        for site in self.stations:
            if site.station_id == station_id:
                return site
        known = ", ".join(s.station_id for s in self.stations)
        raise UnknownFeatureError(f"station {station_id!r} is not on the {self.river} network; known: {known}")

    def outfall_km(self, outfall: Outfall) -> float:
        """Where an outfall's discharge reaches the main stem."""
        if outfall.river_km is not None:
            return outfall.river_km
        return next(j.river_km for j in self.junctions if j.name == outfall.tributary)

    def departments_of(self, city: str, *roles: Role) -> list[Department]:
        """Departments of ``city`` with one of ``roles`` (all roles when none given), in file order."""
        return [d for d in self.departments if d.city == city and (not roles or d.role in roles)]

    def position(self, river_km: float) -> tuple[float, float]:
        """(lon, lat) on the course line at ``river_km`` (linear between course points)."""
        kms = [p.river_km for p in self.course]
        index = max(1, min(bisect.bisect_left(kms, river_km), len(kms) - 1))
        a, b = self.course[index - 1], self.course[index]
        f = (river_km - a.river_km) / (b.river_km - a.river_km)
        f = max(0.0, min(1.0, f)) if index in (1, len(kms) - 1) else f
        return (a.lon + f * (b.lon - a.lon), a.lat + f * (b.lat - a.lat))

    def coordinates(self, feature: _Feature) -> tuple[float, float]:
        """A feature's own coordinates, else its place on the course line."""
        if feature.lon is not None and feature.lat is not None:
            return (feature.lon, feature.lat)
        return self.position(feature.river_km)


def _resolve_chain(reaches: tuple[Reach, ...]) -> tuple[Reach, ...]:
    """Follow the ``downstream`` links into one contiguous upstream→downstream chain."""
    by_id: dict[str, Reach] = {}
    for reach in reaches:
        if reach.id in by_id:
            raise ValueError(f"reaches: id {reach.id!r} appears twice")
        by_id[reach.id] = reach
    upstream_of: dict[str, str] = {}
    for reach in reaches:
        if reach.downstream is None:
            continue
        if reach.downstream not in by_id:
            raise ValueError(f"reaches: {reach.id!r} names downstream reach {reach.downstream!r}, which does not exist")
        if reach.downstream in upstream_of:
            raise ValueError(
                f"reaches: {upstream_of[reach.downstream]!r} and {reach.id!r} both flow into {reach.downstream!r}; "
                "a network is one main stem (model tributaries as junctions)"
            )
        upstream_of[reach.downstream] = reach.id
    heads = [r for r in reaches if r.id not in upstream_of]
    if not heads:
        raise ValueError(f"reaches form a cycle: {' → '.join(_cycle_from(reaches[0].id, by_id))}")
    if len(heads) > 1:
        raise ValueError(
            f"reaches: {', '.join(repr(h.id) for h in heads)} all have no upstream reach; "
            "link them into one chain with `downstream`"
        )
    chain = [heads[0]]
    while chain[-1].downstream is not None:
        chain.append(by_id[chain[-1].downstream])
    if len(chain) < len(reaches):
        rest = next(r for r in reaches if r not in chain)
        raise ValueError(f"reaches form a cycle: {' → '.join(_cycle_from(rest.id, by_id))}")
    for upper, lower in itertools.pairwise(chain):
        if abs(lower.from_km - upper.to_km) > _KM_TOLERANCE:
            raise ValueError(
                f"reaches: {lower.id!r} starts at km {lower.from_km:g} but the reach above it, {upper.id!r}, "
                f"ends at km {upper.to_km:g} (the chain must be contiguous, river-km growing downstream)"
            )
    return tuple(chain)


def _cycle_from(start: str, by_id: dict[str, Reach]) -> list[str]:
    path = [start]
    while (nxt := by_id[path[-1]].downstream) is not None and nxt not in path:
        path.append(nxt)
    return [*path, nxt] if nxt is not None else path


def _check_outfalls(outfalls: tuple[Outfall, ...], junctions: dict[str, float], start: float, end: float) -> None:
    ids: set[str] = set()
    previous: tuple[str, float] | None = None
    for outfall in outfalls:
        if outfall.id in ids:
            raise ValueError(f"outfalls: {outfall.id!r} appears twice")
        ids.add(outfall.id)
        if outfall.tributary is not None and outfall.tributary not in junctions:
            raise ValueError(
                f"outfalls: {outfall.id!r} is on tributary {outfall.tributary!r}, which is not a junction "
                f"(known: {', '.join(junctions) or 'none'})"
            )
        km = outfall.river_km if outfall.river_km is not None else junctions[str(outfall.tributary)]
        if not start - _KM_TOLERANCE <= km <= end + _KM_TOLERANCE:
            raise ValueError(f"outfalls: {outfall.id!r} at river-km {km:g} is off the chain (km {start:g}–{end:g})")
        if previous is not None and km < previous[1]:
            raise ValueError(
                f"outfalls: {outfall.id!r} (km {km:g}) is listed after {previous[0]!r} (km {previous[1]:g}); "
                "list outfalls upstream → downstream"
            )
        previous = (outfall.id, km)


def _check_order(group: str, features: tuple[_Feature, ...]) -> None:
    """Every list runs upstream → downstream: a feature listed out of order is usually a typo in its km."""
    for upper, lower in itertools.pairwise(features):
        if lower.river_km < upper.river_km:
            first = getattr(upper, "station_id", upper.name)
            second = getattr(lower, "station_id", lower.name)
            raise ValueError(
                f"{group}: {second!r} (km {lower.river_km:g}) is listed after {first!r} "
                f"(km {upper.river_km:g}); list {group} upstream → downstream"
            )
