"""Live correction: what the stations saw of the plume re-fits the river between them (pure).

When the plume reaches a station below the one that raised the alert, that station has seen how
late it came (first exceedance, peak), how long it lasted and how high it was. For each stretch
between two consecutive stations that saw it, :func:`fit_stretches` finds the factors on the
file's velocities and dispersion that reproduce what the lower station saw, starting from what
the upper one saw. The playbook then runs with those factors on every reach of the stretch, and
with the last stretch's factors on every reach below it: a river that was 30 % faster than the
file between two stations is most likely faster below them too (wrong typical velocities, a flow
above typical), and every ETA below moves with it.

The fit alternates two one-dimensional updates that converge in a few runs because each feature
depends mainly on one factor: the peak (or the first exceedance) comes ∝ 1/velocity, and the time
the plume takes to pass grows with the square root of dispersion (or its peak falls with it).

:func:`revised_etas` is what a notifier needs: the intakes whose deadline moved by more than a
margin between two playbooks of the same incident.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from playbooks.cards import SAFETY_MARGIN
from playbooks.hydraulics import Factors, Piece, channel, spread_s
from playbooks.models import Playbook, StationCheck, StationObservation, StretchFit
from playbooks.network import RiverNetwork
from playbooks.transport import Forecast, forecast, pulse_sigma

#: Bounds of the fitted factors: beyond them the observation, not the river, is more likely wrong.
VELOCITY_BOUNDS: Final = (0.3, 3.0)
DISPERSION_BOUNDS: Final = (0.05, 20.0)
_ROUNDS: Final = 4


@dataclass(frozen=True, slots=True)
class Seen:
    """An observation placed on the network, with the level its times refer to."""

    observation: StationObservation
    river_km: float
    threshold: float | None

    def sigma_s(self, default_s: float) -> float:
        """σ (s) of the plume that passed: from how long it stayed above the threshold, if known."""
        o = self.observation
        if o.first_exceeded_at is None or o.normal_again_at is None:
            return default_s
        duration = (o.normal_again_at - o.first_exceeded_at).total_seconds()
        ratio = None
        if o.peak_concentration is not None and self.threshold is not None and self.threshold > 0:
            ratio = o.peak_concentration / self.threshold
        if ratio is None or ratio <= 1.05:
            return pulse_sigma(duration)  # the threshold is near the peak's 10 %-edge: read as a pulse
        return duration / (2.0 * math.sqrt(2.0 * math.log(ratio)))


def place(
    network: RiverNetwork, observations: Sequence[StationObservation], default_threshold: float | None
) -> list[Seen]:
    """The observations on the network, upstream → downstream (unknown stations are an error)."""
    seen = [
        Seen(o, network.station(o.station_id).river_km, o.threshold or default_threshold) for o in observations
    ]
    return sorted(seen, key=lambda s: s.river_km)


def fit_stretches(
    network: RiverNetwork,
    seen: Sequence[Seen],
    *,
    flow_ratio: float,
    decay_per_s: float,
    default_sigma_s: float,
) -> list[StretchFit]:
    """Factors for each stretch between consecutive stations that saw the plume."""
    fits: list[StretchFit] = []
    fixed: dict[str, tuple[float, float]] = {}
    for upper, lower in itertools.pairwise(seen):
        if lower.river_km <= upper.river_km:
            continue
        velocity, dispersion = 1.0, 1.0
        reaches = _reaches_between(network, upper.river_km, lower.river_km)
        for _ in range(_ROUNDS):
            run = _run(network, {**fixed, **dict.fromkeys(reaches, (velocity, dispersion))}, upper, lower,
                       flow_ratio, decay_per_s, default_sigma_s)
            observed, predicted = _features(upper, lower, run)
            new_velocity = _clamp(velocity * _timing_ratio(observed, predicted), VELOCITY_BOUNDS)
            new_dispersion = _clamp(dispersion * _spread_ratio(observed, predicted), DISPERSION_BOUNDS)
            done = abs(new_velocity / velocity - 1.0) < 0.005 and abs(new_dispersion / dispersion - 1.0) < 0.02
            velocity, dispersion = new_velocity, new_dispersion
            if done:
                break
        fixed.update(dict.fromkeys(reaches, (velocity, dispersion)))
        fits.append(
            StretchFit(
                from_station=upper.observation.station_id,
                to_station=lower.observation.station_id,
                from_km=upper.river_km,
                to_km=lower.river_km,
                velocity_factor=round(velocity, 3),
                dispersion_factor=round(dispersion, 3),
            )
        )
    return fits


def reach_factors(network: RiverNetwork, fits: Sequence[StretchFit]) -> dict[str, tuple[float, float]]:
    """Per reach: the factors of the stretch it lies in; below the last stretch, the last fit's."""
    factors: dict[str, tuple[float, float]] = {}
    if not fits:
        return factors
    last = fits[-1]
    for reach in network.chain:
        if reach.to_km > last.to_km:
            factors[reach.id] = (last.velocity_factor, last.dispersion_factor)
    for fit in fits:
        for reach_id in _reaches_between(network, fit.from_km, fit.to_km):
            factors[reach_id] = (fit.velocity_factor, fit.dispersion_factor)
    return factors


def station_checks(
    network: RiverNetwork,
    seen: Sequence[Seen],
    *,
    flow_ratio: float,
    decay_per_s: float,
    default_sigma_s: float,
) -> list[StationCheck]:
    """Each station below the first that saw the plume: the file's model from the first, against it."""
    if len(seen) < 2:
        return []
    first = seen[0]
    below = [s for s in seen[1:] if s.river_km > first.river_km]
    if not below:
        return []
    pieces = channel(network, flow_ratio=flow_ratio)
    sigma = first.sigma_s(default_sigma_s)
    run = forecast(pieces, first.river_km, [s.river_km for s in below], sigma_s=sigma,
                   max_run_s=_run_length(pieces, first.river_km, below[-1].river_km, sigma),
                   decay_per_s=decay_per_s)
    origin = first.observation
    checks = []
    for s in below:
        predicted_peak_s = run.arrivals[s.river_km].peak_s
        scale = origin.peak_concentration
        arrival_s = _arrival_s(run, s.river_km, scale, s.threshold)
        checks.append(
            StationCheck(
                station_id=s.observation.station_id,
                name=network.station(s.observation.station_id).name,
                river_km=s.river_km,
                predicted_arrival_at=_after(origin.centre, arrival_s),
                predicted_peak_at=_after(origin.centre, predicted_peak_s),
                predicted_peak_concentration=(
                    None if scale is None else float(f"{scale * run.arrivals[s.river_km].peak_concentration:.4g}")
                ),
                observed_first_exceeded_at=s.observation.first_exceeded_at,
                observed_peak_at=s.observation.peak_at,
                observed_peak_concentration=s.observation.peak_concentration,
            )
        )
    return checks


@dataclass(frozen=True, slots=True)
class RevisedEta:
    """An intake whose deadline moved between two playbooks of one incident."""

    intake: str
    river_km: float
    previous_arrival_at: datetime
    revised_arrival_at: datetime
    previous_deadline: datetime
    revised_deadline: datetime

    @property
    def shift(self) -> timedelta:
        """How far the deadline moved: negative when it came earlier (act sooner)."""
        return self.revised_deadline - self.previous_deadline


def revised_etas(previous: Playbook, revised: Playbook, margin: timedelta = timedelta(minutes=30)) -> list[RevisedEta]:
    """Intakes in both playbooks whose deadline (fast leading edge − the safety margin) moved by
    more than ``margin``, upstream first — the "revised ETA" notifications to send.

    >>> from datetime import timezone
    >>> from playbooks.loader import load_network
    >>> at = datetime(2024, 5, 14, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    >>> from playbooks.playbook import build_playbook
    >>> tuo = load_network("tuo")
    >>> before = build_playbook(tuo, station_id="tuo-sanhuangmiao", pollutant="NH3N", at=at)
    >>> after = build_playbook(tuo, station_id="tuo-sanhuangmiao", pollutant="NH3N", at=at, discharge_m3s=480.0)
    >>> moved = revised_etas(before, after)
    >>> moved[0].intake, moved[0].shift < timedelta(0)
    ('资阳城区取水口', True)
    """
    old = {r.name: r for r in previous.receptors if r.kind == "intake"}
    out = []
    for new in revised.receptors:
        if new.kind != "intake" or new.name not in old:
            continue
        before = old[new.name]
        previous_deadline = max(previous.at, before.leading_edge_fast_at - SAFETY_MARGIN)
        revised_deadline = max(revised.at, new.leading_edge_fast_at - SAFETY_MARGIN)
        if abs(revised_deadline - previous_deadline) > margin:
            out.append(
                RevisedEta(new.name, new.river_km, before.leading_edge_at, new.leading_edge_at, previous_deadline,
                           revised_deadline)
            )
    return sorted(out, key=lambda r: r.river_km)


# -- internals ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Features:
    first_s: float | None = None
    peak_s: float | None = None
    normal_s: float | None = None
    peak_concentration: float | None = None


def _reaches_between(network: RiverNetwork, from_km: float, to_km: float) -> list[str]:
    return [r.id for r in network.chain if r.to_km > from_km and r.from_km < to_km]


def _run(
    network: RiverNetwork,
    factors: Factors,
    upper: Seen,
    lower: Seen,
    flow_ratio: float,
    decay_per_s: float,
    default_sigma_s: float,
) -> Forecast:
    pieces = channel(network, flow_ratio=flow_ratio, factors=factors)
    sigma = upper.sigma_s(default_sigma_s)
    return forecast(pieces, upper.river_km, [lower.river_km], sigma_s=sigma,
                    max_run_s=_run_length(pieces, upper.river_km, lower.river_km, sigma), decay_per_s=decay_per_s)


def _run_length(pieces: Sequence[Piece], from_km: float, to_km: float, sigma: float) -> float:
    travel, spread = spread_s(tuple(pieces), from_km, to_km, sigma)
    return 2.0 * travel + 10.0 * spread + 6 * 3600.0


def _features(upper: Seen, lower: Seen, run: Forecast) -> tuple[_Features, _Features]:
    """(observed, predicted) features at the lower station, times in s after the upper one's centre."""
    origin = upper.observation.centre
    o = lower.observation

    def since(at: datetime | None) -> float | None:
        return None if at is None else (at - origin).total_seconds()

    observed = _Features(since(o.first_exceeded_at), since(o.peak_at), since(o.normal_again_at), o.peak_concentration)
    scale = upper.observation.peak_concentration
    got = run.arrivals[lower.river_km]
    level = _level(scale, lower.threshold)
    rise, fall = run.crossings(lower.river_km, level) if level is not None else (None, None)
    predicted = _Features(rise, got.peak_s, fall, None if scale is None else scale * got.peak_concentration)
    return observed, predicted


def _level(scale: float | None, threshold: float | None) -> float | None:
    """The threshold on the unit curve (observed peak at the origin = 1)."""
    if scale is None or threshold is None or scale <= 0:
        return None
    return threshold / scale


def _arrival_s(run: Forecast, km: float, scale: float | None, threshold: float | None) -> float | None:
    """When the model has the plume exceed the threshold there; its leading edge if it never does."""
    level = _level(scale, threshold)
    rise = run.crossings(km, level)[0] if level is not None else None
    return rise if rise is not None else run.arrivals[km].leading_s


def _timing_ratio(observed: _Features, predicted: _Features) -> float:
    """predicted / observed time since the origin: the velocity factor's correction."""
    for seen_s, model_s in ((observed.peak_s, predicted.peak_s), (observed.first_s, predicted.first_s)):
        if seen_s is not None and model_s is not None and seen_s > 0 and model_s > 0:
            return model_s / seen_s
    return 1.0


def _spread_ratio(observed: _Features, predicted: _Features) -> float:
    """The dispersion factor's correction: from how long it stayed above the threshold, else its peak."""
    seen, model = _duration(observed), _duration(predicted)
    if seen is not None and model is not None and seen > 0 and model > 0:
        return (seen / model) ** 2
    if observed.peak_concentration and predicted.peak_concentration:
        return (predicted.peak_concentration / observed.peak_concentration) ** 2
    return 1.0


def _duration(features: _Features) -> float | None:
    if features.first_s is None or features.normal_s is None:
        return None
    return features.normal_s - features.first_s


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return min(max(value, bounds[0]), bounds[1])


def _after(at: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else at + timedelta(seconds=seconds)

