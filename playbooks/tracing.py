"""溯源: where and when was it released — inversion of what the stations saw (pure).

Method: Bayesian, over release location × start time × duration × mass × a velocity factor, with
the plume model itself as the forward model. Why Bayesian with the forward model rather than a
backward-probability density alone: stations report features (first exceedance of a threshold,
peak time and value, back to normal) and stations that saw nothing ("clean until") rule places
and times out; both need the concentration a candidate release would cause at each station, in
time, and the registered outfalls and risk sources enter naturally as point hypotheses with a
prior (an unregistered discharge anywhere on the reach is the alternative).

How, fast: one *backward* (adjoint) run of the model per station and velocity factor gives, for
every cell of the river at once, what a unit load released there adds at the station n steps
later (:meth:`playbooks.transport.Grid.adjoint_step`). A release of duration T is that response
averaged over T; its mass scales it, so the mass is fitted from the peak concentrations and the
start time from the feature times (both in closed form), leaving a grid over (velocity factor ×
duration × location) to weigh. Likelihood: Gaussian in each feature time (observation error plus a
model error that grows with the travel time: per-reach velocities are uncertain beyond the common
factor), log-normal in peak concentration, and for each clean station the probability that the
release had not yet reached it. Posterior summaries: a 92 % interval of the location and start,
the most probable location, the posterior median mass, and each registered source's probability.

>>> from datetime import UTC, datetime
>>> from playbooks.loader import load_network
>>> from playbooks.models import StationObservation
>>> t = datetime(2024, 7, 1, 12, tzinfo=UTC)
>>> seen = [StationObservation(station_id="tuo-sanhuangmiao", first_exceeded_at=t, peak_at=t.replace(hour=14),
...                            peak_concentration=3.0, threshold=1.0)]
>>> result = trace(load_network("tuo"), "NH3N", seen, ())
>>> result.release.km_low < result.release.km_best <= 97.8, result.candidates[0].probability > 0
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict

from playbooks.errors import PlaybookError
from playbooks.hydraulics import channel, spread_s
from playbooks.models import StationObservation
from playbooks.network import RiverNetwork
from playbooks.pollutants import Pollutant
from playbooks.pollutants import pollutant as lookup_pollutant
from playbooks.transport import Channel, Grid

if TYPE_CHECKING:
    from numpy.typing import NDArray

    Array = NDArray[np.float64]

#: Model step (s): about a station's report interval (peaks are refined between steps).
STEP_S: Final = 900.0
#: Velocity factors weighed (a common error of the file's velocities, ±30 %).
VELOCITY_FACTORS: Final = (0.7, 0.85, 1.0, 1.15, 1.3)
#: Release durations weighed (s): a spill of minutes to a discharge of most of a day.
DURATIONS_S: Final = (600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 57600.0)
#: Prior: registered sources together, against an unregistered discharge anywhere.
REGISTERED_PRIOR: Final = 0.8
#: Prior weight of a registered source by how its permitted pollutants match the one seen.
MATCH_PRIOR: Final = {"pollutant": 1.0, "class": 0.4, None: 0.1}
#: Errors: station report timing (s); the model's timing per second of travel (each reach's
#: velocity is uncertain beyond the common factor); how long the plume stays above the threshold
#: (log: dispersion is uncertain too); peak concentrations between stations (log).
OBSERVATION_S: Final = 900.0
MODEL_TIMING: Final = 0.15
LOG_DURATION: Final = 0.35
LOG_CONCENTRATION: Final = 0.5
#: The credible interval reported for place and start (92 %: a little wider than 90 %, because the
#: model's own errors — per-reach velocities and dispersion — are only approximated above).
INTERVAL: Final = (0.04, 0.96)
#: Releases earlier than this before the first report are not considered.
LOOKBACK_S: Final = 6 * 86400.0
#: Candidate places reach this far below the first station that saw it: dispersion carries a plume
#: a few km upstream, so a release just below a station can show there first.
BELOW_FIRST_KM: Final = 10.0


class CleanStation(BaseModel):
    """A station that saw nothing of the pollutant (no exceedance) up to ``until``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    station_id: str
    until: AwareDatetime


@dataclass(frozen=True, slots=True)
class Release:
    """Where and when (92 % intervals), the most probable place, and the released mass."""

    km_low: float
    km_high: float
    km_best: float
    start_low: datetime
    start_high: datetime
    mass_kg: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """A registered outfall or risk source (or an unregistered reach) and its probability."""

    name: str
    kind: str
    river_km: float
    probability: float
    city: str = ""
    enterprise: str = ""


@dataclass(frozen=True, slots=True)
class Trace:
    release: Release
    #: Most likely first; registered sources, plus "unregistered" when it carries weight.
    candidates: tuple[Candidate, ...]
    #: The reach an unregistered discharge would be in (when no registered source fits well).
    unregistered: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    kind: str
    river_km: float
    city: str
    enterprise: str
    prior: float


def trace(
    network: RiverNetwork,
    pollutant: str,
    observations: Sequence[StationObservation],
    clean: Sequence[CleanStation],
    *,
    flow_ratio: float = 1.0,
) -> Trace:
    """Where, when and how much — from the stations that saw ``pollutant`` and those that did not."""
    spec = lookup_pollutant(pollutant)
    limit = spec.drinking_limit()
    seen = sorted(
        ((network.station(o.station_id).river_km, o) for o in observations if o.peak_concentration is not None
         or o.first_exceeded_at is not None),
        key=lambda pair: pair[0],
    )
    if not seen:
        raise PlaybookError("tracing needs at least one station that saw the pollutant")
    first_km, lowest_km = seen[0][0], seen[-1][0]
    quiet = sorted(((network.station(c.station_id).river_km, c) for c in clean), key=lambda pair: pair[0])
    reference = min(o.first_exceeded_at or o.peak_at or o.centre for _, o in seen)
    # a clean station above the first that saw it, clean past that moment, was passed by nothing:
    # the release is below it (the plume only weakens downstream)
    top = max([network.start_km] + [km for km, c in quiet if km < first_km and c.until >= reference])
    bottom = min(lowest_km, first_km + BELOW_FIRST_KM)
    cell_km = _cells(top, bottom)
    sources = _sources(network, spec, top, bottom)
    points = np.concatenate((cell_km, [s.river_km for s in sources]))
    # the nearest clean station below everything seen says how far the plume had not yet come
    ahead = [(km, c) for km, c in quiet if km > lowest_km][:1]
    watched: list[tuple[float, StationObservation | CleanStation]] = [*seen, *ahead]
    latest = max(
        [(t - reference).total_seconds() for _, o in seen for t in (o.first_exceeded_at, o.peak_at,
                                                                       o.normal_again_at) if t is not None]
        + [(c.until - reference).total_seconds() for _, c in ahead]
    )
    steps = _steps(network, flow_ratio, top, watched[-1][0], latest)

    base = _responses(network, flow_ratio, spec.decay_per_s, [km for km, _ in watched], points,
                      math.ceil(steps * max(VELOCITY_FACTORS)))
    scores = []  # per velocity factor: (log-likelihood, t0, mass) arrays over (duration, point)
    for factor in VELOCITY_FACTORS:
        scores.append(_score(_faster(base, factor, steps, spec.decay_per_s), watched, reference, limit))
    loglik = np.stack([s[0] for s in scores])  # (factor, duration, point)
    starts = np.stack([s[1] for s in scores])
    masses = np.stack([s[2] for s in scores])
    return _summarise(loglik, starts, masses, cell_km, sources, reference)


# -- the forward model, backwards -----------------------------------------------------------------


def _steps(network: RiverNetwork, flow_ratio: float, top: float, lowest_km: float, latest_s: float) -> int:
    """Lags to follow: the slowest travel from the top of the reach to the lowest station, the
    time the reports span, and a wide tail — within the look-back."""
    pieces = channel(network, flow_ratio=flow_ratio, velocity_factor=min(VELOCITY_FACTORS))
    travel, spread = spread_s(pieces, top, lowest_km, 0.0)
    needed = travel + 6.0 * spread + latest_s + max(DURATIONS_S) + 6 * 3600.0
    return int(min(needed, LOOKBACK_S + latest_s) / STEP_S) + 1


def _cells(top: float, bottom: float) -> Array:
    """Candidate release points: about one per km between the reach's top and the first station."""
    count = max(2, math.ceil(bottom - top) + 1)
    return np.asarray(np.linspace(top, bottom, count)[:-1], dtype=np.float64)


def _sources(network: RiverNetwork, spec: Pollutant, top: float, bottom: float) -> list[_Source]:
    found = []
    for outfall in network.outfalls:
        km = network.outfall_km(outfall)
        if top <= km < bottom:
            found.append(_Source(outfall.name, "outfall", km, outfall.city, outfall.enterprise,
                                 MATCH_PRIOR[spec.emitted_by(outfall.pollutants)]))
    for risk in network.risk_sources:
        if top <= risk.river_km < bottom:
            found.append(_Source(risk.name, risk.kind, risk.river_km, risk.city, "",
                                 MATCH_PRIOR[spec.emitted_by(risk.pollutants)]))
    return found


def _faster(base: Array, factor: float, steps: int, decay_per_s: float) -> Array:
    """The responses with every velocity × ``factor``: the same plume, its clock ``factor`` times
    faster — h_f(t) = f·h(f·t), decay over the real time t. (Fischer's D, ∝ U², would make the spread
    scale as f^-½ rather than f^-1: within the dispersion's own uncertainty, and it spares a run
    per factor.)"""
    position = np.arange(steps + 1) * factor
    below = np.minimum(np.floor(position).astype(int), base.shape[1] - 2)
    share = (position - below)[None, :, None]
    scaled = base[:, below] * (1.0 - share) + base[:, below + 1] * share
    lag_s = np.arange(steps + 1) * STEP_S
    correction = np.exp(-decay_per_s * lag_s * (1.0 - factor))[None, :, None]
    return np.asarray(factor * scaled * correction, dtype=np.float64)


def _responses(
    network: RiverNetwork,
    flow_ratio: float,
    decay_per_s: float,
    stations_km: Sequence[float],
    points_km: Array,
    steps: int,
) -> Array:
    """(station, lag step, point): concentration at the station per gram released at the point."""
    ch = Channel(channel(network, flow_ratio=flow_ratio))
    grid = Grid(ch, 0.0, ch.end_tau, STEP_S, decay_per_s)
    position = np.asarray([grid.index_of(float(t)) for t in ch.tau(points_km)])
    below = np.clip(np.floor(position).astype(int), 0, len(grid) - 2)
    share = np.clip(position - below, 0.0, 1.0)
    # A station's reading averages the water passing it over a report interval: the probe weighs
    # the cells around it as a Gaussian of one cell's σ, which also keeps Crank–Nicolson from
    # ringing on a one-cell start (a delta would keep the backward run's window river-wide).
    weight = np.zeros((len(grid), len(stations_km)))
    cells = np.arange(len(grid))
    for s, km in enumerate(stations_km):
        probe = grid.index_of(float(ch.tau(km)))
        near = np.abs(cells - probe) <= 4.0
        kernel = np.where(near, np.exp(-0.5 * (cells - probe) ** 2), 0.0)
        weight[:, s] = kernel / kernel.sum() / grid.volume
    rows = np.flatnonzero(weight.any(axis=1))
    lo, hi = grid.window(int(rows[0]), int(rows[-1]))
    out = np.zeros((steps + 1, len(points_km), len(stations_km)))
    for n in range(steps + 1):
        if n:
            if hi <= lo:
                break
            lo, hi = grid.adjoint_step(weight, lo, hi, trim=n % 8 == 0)
        out[n] = weight[below] * (1.0 - share)[:, None] + weight[below + 1] * share[:, None]
    return np.ascontiguousarray(out.transpose(2, 0, 1))


# -- the likelihood ----------------------------------------------------------------------------------


def _score(
    responses: Array,
    watched: Sequence[tuple[float, StationObservation | CleanStation]],
    reference: datetime,
    limit: float | None,
) -> tuple[Array, Array, Array]:
    """Log-likelihood, fitted start time (s after ``reference``) and mass (g) per (duration, point)."""
    n_steps = responses.shape[1]
    loglik, starts, masses = [], [], []
    cumulative = np.concatenate((np.zeros((responses.shape[0], 1, responses.shape[2])),
                                 np.cumsum(responses, axis=1)), axis=1)
    lags = np.arange(n_steps) * STEP_S
    for duration in DURATIONS_S:
        k = max(1, round(duration / STEP_S))
        # the response to k steps of release, per gram released in all: a moving mean over k lags
        box = (cumulative[:, k:, :] - cumulative[:, :-k, :])[:, : n_steps - k + 1] / k
        box_lags = np.asarray(lags[: box.shape[1]] + (k - 1) * STEP_S, dtype=np.float64)  # lag after the start
        ll, t0, mass = _fit(box, box_lags, watched, reference, limit, duration)
        loglik.append(ll)
        starts.append(t0)
        masses.append(mass)
    return np.stack(loglik), np.stack(starts), np.stack(masses)


def _fit(
    box: Array,
    box_lags: Array,
    watched: Sequence[tuple[float, StationObservation | CleanStation]],
    reference: datetime,
    limit: float | None,
    duration: float,
) -> tuple[Array, Array, Array]:
    """For one release duration: log-likelihood, start (s after ``reference``) and mass (g) per point.

    The mass comes from the peak concentrations (their geometric mean over stations), the start
    from the peak times (else first exceedances), each weighted by its error; the likelihood then
    weighs what is left: the times against each other, how long the plume stayed above the
    threshold, the peaks against each other, and the clean station below.
    """
    points = box.shape[2]
    peak_index = np.argmax(box, axis=1)  # (station, point)
    peak_value = np.take_along_axis(box, peak_index[:, None, :], axis=1)[:, 0, :]
    peak_lag = box_lags[peak_index]
    seen = [(s, o) for s, (_, o) in enumerate(watched) if isinstance(o, StationObservation)]
    reach = np.all(peak_value[[s for s, _ in seen]] > 0, axis=0)
    safe = np.where(reach[None, :], peak_value, 1.0)
    logs = [np.log(o.peak_concentration) - np.log(safe[s]) for s, o in seen if o.peak_concentration]
    log_mass = np.mean(logs, axis=0) if logs else np.zeros(points)
    mass = np.exp(log_mass)
    chi2 = np.sum([((term - log_mass) / LOG_CONCENTRATION) ** 2 for term in logs], axis=0) if logs else 0.0
    offsets: list[tuple[Array, Array]] = []
    for s, o in seen:
        threshold = o.threshold or limit
        first, last = _crossings(box[s], box_lags, threshold / mass) if threshold else (None, None)
        timing = np.sqrt(OBSERVATION_S**2 + (MODEL_TIMING * peak_lag[s]) ** 2 + (0.25 * duration) ** 2)
        if o.peak_at is not None:
            offsets.append(((o.peak_at - reference).total_seconds() - peak_lag[s], timing))
        elif o.first_exceeded_at is not None and first is not None:
            offsets.append(((o.first_exceeded_at - reference).total_seconds() - first, 1.5 * timing))
        if first is not None and last is not None and o.first_exceeded_at and o.normal_again_at:
            seen_for = (o.normal_again_at - o.first_exceeded_at).total_seconds()
            model_for = last - first
            ok = np.isfinite(model_for)
            ratio = np.log((seen_for + STEP_S) / (np.where(ok, model_for, 0.0) + STEP_S))
            chi2 = chi2 + np.where(ok, (ratio / LOG_DURATION) ** 2, 25.0)
    if offsets:
        weights = [np.where(np.isfinite(e), 1.0 / sig**2, 0.0) for e, sig in offsets]
        total = np.maximum(np.sum(weights, axis=0), 1e-300)
        t0 = np.sum([np.nan_to_num(e) * w for (e, _), w in zip(offsets, weights, strict=True)], axis=0) / total
        for (e, sig), _ in zip(offsets, weights, strict=True):
            chi2 = chi2 + np.where(np.isfinite(e), ((np.nan_to_num(e) - t0) / sig) ** 2, 25.0)
    else:
        t0 = np.zeros(points)
    # the release comes before what it caused
    chi2 = chi2 + np.where(t0 > 0.0, (t0 / OBSERVATION_S) ** 2, 0.0)
    loglik = -0.5 * chi2 + _clean_terms(box, box_lags, watched, reference, limit, mass, t0)
    return np.where(reach, loglik, -np.inf), t0, mass


def _clean_terms(
    box: Array,
    box_lags: Array,
    watched: Sequence[tuple[float, StationObservation | CleanStation]],
    reference: datetime,
    limit: float | None,
    mass: Array,
    t0: Array,
) -> Array:
    """log P(a clean station was still clean at its ``until``) for each point."""
    total = np.zeros(box.shape[2])
    if limit is None:
        return total
    for s, (_, c) in enumerate(watched):
        if not isinstance(c, CleanStation):
            continue
        first, _ = _crossings(box[s], box_lags, limit / np.maximum(mass, 1e-300))
        arrives = t0 + first
        until = (c.until - reference).total_seconds()
        sigma = np.sqrt(OBSERVATION_S**2 + (MODEL_TIMING * np.nan_to_num(first, nan=0.0)) ** 2)
        z = np.where(np.isfinite(arrives), (arrives - until) / sigma, 10.0)
        total += np.log(np.maximum(0.5 * (1.0 + _erf(z / math.sqrt(2.0))), 1e-12))
    return total


def _crossings(curves: Array, lags: Array, level: Array) -> tuple[Array, Array]:
    """First and last lag (s) at which each column's curve is at or above its level (nan: never)."""
    above = curves >= level[None, :]
    anywhere = above.any(axis=0)
    first = np.argmax(above, axis=0)
    last = curves.shape[0] - 1 - np.argmax(above[::-1], axis=0)
    return (np.where(anywhere, lags[first], np.nan), np.where(anywhere, lags[last], np.nan))


def _erf(x: Array) -> Array:
    return np.asarray(np.vectorize(math.erf, otypes=[float])(x))


# -- the answer ------------------------------------------------------------------------------------


def _summarise(
    loglik: Array, starts: Array, masses: Array, cell_km: Array, sources: list[_Source], reference: datetime
) -> Trace:
    cells = len(cell_km)
    finite = np.isfinite(loglik)
    if not finite.any():
        raise PlaybookError("no release upstream of the stations explains what they saw")
    peak = loglik[finite].max()
    likelihood = np.where(finite, np.exp(loglik - peak), 0.0)  # (factor, duration, point)
    per_point = likelihood.mean(axis=(0, 1))
    # priors: each cell is one point of the unregistered alternative; each source its share
    weight_sources = np.array([s.prior for s in sources])
    prior = np.concatenate((
        np.full(cells, (1.0 - REGISTERED_PRIOR if sources else 1.0) / max(cells, 1)),
        REGISTERED_PRIOR * weight_sources / weight_sources.sum() if sources else np.zeros(0),
    ))
    posterior = prior * per_point
    if posterior.sum() <= 0:
        raise PlaybookError("no release upstream of the stations explains what they saw")
    posterior /= posterior.sum()
    # Where and when along the river, whatever the registry says: uniform over the cells. (With
    # the registry's prior the interval would hug the registered sources and miss an unregistered
    # discharge; the ranking below is where the registry counts.)
    along = likelihood[:, :, :cells]
    along = along / along.sum()
    km_low, km_high = _quantiles(cell_km, along.sum(axis=(0, 1)), INTERVAL)
    start_low, start_high = _quantiles(starts[:, :, :cells].ravel(), along.ravel(), INTERVAL)
    (mass_g,) = _quantiles(masses[:, :, :cells].ravel(), along.ravel(), (0.5,))
    points_km = np.concatenate((cell_km, [s.river_km for s in sources]))
    # the best single place: the likeliest registered source, unless an unregistered discharge is
    # likelier than it — then the median of where it would be (the place with the least expected
    # distance to the truth; a flat posterior has no meaningful mode)
    best_km = float(points_km[cells + int(np.argmax(posterior[cells:]))]) if sources else 0.0
    if not sources or posterior[:cells].sum() > posterior[cells:].max():
        (best_km,) = _quantiles(cell_km, posterior[:cells], (0.5,))
    release = Release(
        km_low=round(float(km_low), 1), km_high=round(float(km_high), 1), km_best=round(best_km, 1),
        start_low=_minute(reference + timedelta(seconds=float(start_low))),
        start_high=_minute(reference + timedelta(seconds=float(start_high))), mass_kg=float(f"{mass_g / 1000.0:.3g}"),
    )
    unregistered_p = float(posterior[:cells].sum())
    candidates = [
        Candidate(s.name, s.kind, s.river_km, round(float(p), 4), s.city, s.enterprise)
        for s, p in zip(sources, posterior[cells:], strict=True)
    ]
    reach = (release.km_low, release.km_high)
    unregistered = None
    if unregistered_p >= 0.2 or not candidates:
        candidates.append(Candidate(f"未登记排放（km {reach[0]:g}–{reach[1]:g}）", "unregistered",
                                    release.km_best, round(unregistered_p, 4)))
        unregistered = reach
    candidates.sort(key=lambda c: -c.probability)
    return Trace(release, tuple(candidates), unregistered)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _quantiles(values: Array, weights: Array, qs: tuple[float, ...]) -> list[float]:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    cumulative /= cumulative[-1]
    return [float(values[order][min(int(np.searchsorted(cumulative, q)), len(values) - 1)]) for q in qs]
