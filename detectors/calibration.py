"""Calibration from labelled history: pick the spike threshold and persistence that would have
maximised per-reading F1 on a training stream (like tuning on operator verdicts of past events).

The training stream is run once through the detectors with their current tuning; the per-reading
spike scores are then replayed through :class:`~detectors.events.EventLatch` for each candidate.
Candidates are score quantiles, so the search adapts to any data set instead of to one. Rows
that other events mark anyway (a limit exceedance; a sensor fault when faults count) are
positive whatever the spike threshold. When nothing can be calibrated — the labels hold no
event, or every training spike score is 0 (too few readings to warm up, only hydrological
columns) — :func:`calibrate` says why and the defaults stay.

A labelled history also checks its own tuning (:func:`held_out_check`): tuned on its first two
thirds, the tuning must score a higher F1 than the defaults on the last third, or the defaults
stay. One history's labels can reward a tuning that holds only there (a record labelled densely
rewards flagging everything); the held-out part is the nearest thing to the next month.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from detectors.config import DetectorConfig, Persistence
from detectors.events import EventLatch

log = logging.getLogger(__name__)

_PERSISTENCE = ((1, 1), (2, 3), (3, 5), (5, 8))
_CLOSE_AFTER = (1, 3, 10, 30)
_HOLD_RATIOS = (0.5, 0.75, 1.0)
_QUANTILES = np.concatenate([np.linspace(0.9, 0.99, 10), np.linspace(0.991, 0.9995, 15)])
_AROUND_DEFAULT = 1.1 ** np.arange(-7, 13)
#: Per-reading F1 is flat near its optimum and the exact optimum on one history overfits it.
#: Among candidates within this fraction of the best training F1, the one that catches the most
#: training events wins (a missed spill is the costliest error), then the most sensitive threshold
#: (training events are often clearer than the next ones: on GECCO 2018's first quarter every
#: threshold from 4.7 to 12.6 scored alike, and the highest missed 13 of 21 later events), then
#: the fewest false-alarm events (each wakes a duty officer).
NEAR_BEST = 0.97


@dataclass(frozen=True, slots=True)
class ScoredStream:
    """One station's training scores in reading order, its labels, and whether the reading is
    predicted positive whatever the spike threshold (another counted event was open).
    ``held_out_from`` is the index of the first reading in the held-out part of the history."""

    scores: Sequence[float]
    labels: Sequence[bool]
    fixed: Sequence[bool]
    held_out_from: int = 0

    def fit_part(self) -> ScoredStream:
        """The readings before the held-out part."""
        at = self.held_out_from
        return ScoredStream(self.scores[:at], self.labels[:at], self.fixed[:at], at)

    def held_out_part(self) -> ScoredStream:
        at = self.held_out_from
        return ScoredStream(self.scores[at:], self.labels[at:], self.fixed[at:], 0)


@dataclass(frozen=True, slots=True)
class Calibration:
    config: DetectorConfig
    train_f1: float
    candidates: int


class NothingToCalibrate(Exception):  # noqa: N818 (an outcome, not a failure)
    """Why the training data cannot tune anything; the defaults stay."""


def simulate(scores: np.ndarray, threshold: float, hold: float, persistence: Persistence) -> np.ndarray:
    """Which readings a spike event would have been open at, for one score series."""
    firing = (scores >= threshold).tolist()
    holding = (scores >= hold).tolist()
    fire_at = np.flatnonzero(scores >= threshold)
    active = np.zeros(len(scores), dtype=bool)
    latch = EventLatch(persistence)
    i, n = 0, len(scores)
    while i < n:
        if not latch.active and not firing[i]:
            # Closed latch with nothing pending can only change at the next firing reading.
            j = int(np.searchsorted(fire_at, i))
            if j == len(fire_at):
                break
            skipped = int(fire_at[j]) - i
            for _ in range(min(skipped, persistence.n)):
                latch.step(firing=False, holding=False)
            i = int(fire_at[j])
        latch.step(firing=firing[i], holding=holding[i])
        active[i] = latch.active
        i += 1
    return active


def _predicted(
    series: Sequence[np.ndarray], fixed: Sequence[np.ndarray], threshold: float, hold: float, persistence: Persistence
) -> list[np.ndarray]:
    """Per stream, the readings at which a spike event or another counted event was open."""
    return [simulate(s, threshold, hold, persistence) | f for s, f in zip(series, fixed, strict=True)]


def predicted_f1(streams: Sequence[ScoredStream], config: DetectorConfig) -> float:
    """Per-reading F1 of ``config``'s spike tuning on these streams, other counted events included."""
    if not streams:
        return 0.0
    predicted = _predicted([np.asarray(s.scores, dtype=float) for s in streams],
                           [np.asarray(s.fixed, dtype=bool) for s in streams],
                           config.spike_threshold, config.spike_threshold * config.hold_ratio, config.spike_persistence)
    return _f1(_pooled_labels(streams), np.concatenate(predicted))


def check_labels(streams: Sequence[ScoredStream]) -> None:
    """Raise :class:`NothingToCalibrate` when the labels hold no event."""
    if not any(any(s.labels) for s in streams):
        raise NothingToCalibrate("the training labels hold no event")


def fixed_f1(streams: Sequence[ScoredStream]) -> float:
    """Training F1 of the rows predicted positive without the spike (spikes not counted)."""
    return _f1(_pooled_labels(streams), np.concatenate([np.asarray(s.fixed, dtype=bool) for s in streams]))


def calibrate(streams: Sequence[ScoredStream], config: DetectorConfig) -> Calibration:
    """The spike tuning with the best training F1; :class:`NothingToCalibrate` says why there is none."""
    check_labels(streams)
    labels = _pooled_labels(streams)
    series = [np.asarray(s.scores, dtype=float) for s in streams]
    pooled = np.concatenate(series)
    positive = pooled[pooled > 0]
    if not positive.size:
        raise NothingToCalibrate(
            f"every training spike score is 0 (each station needs more than {config.warmup_readings} readings of "
            "a non-hydrological parameter to score spikes)"
        )
    # Score quantiles adapt to the data; a 10 % grid around the default fills the gaps between them.
    grid = config.spike_threshold * _AROUND_DEFAULT
    thresholds = sorted({float(t) for t in np.quantile(positive, _QUANTILES)} | {float(t) for t in grid})
    label_series = [np.asarray(s.labels, dtype=bool) for s in streams]
    regulatory_series = [np.asarray(s.fixed, dtype=bool) for s in streams]
    results: list[tuple[float, int, int, DetectorConfig]] = []
    for threshold in thresholds:
        for k, n in _PERSISTENCE:
            for close_after in _CLOSE_AFTER:
                persistence = Persistence(k=k, n=n, close_after=close_after)
                for ratio in _HOLD_RATIOS:
                    per_stream = _predicted(series, regulatory_series, threshold, threshold * ratio, persistence)
                    detected, false_alarms = _event_counts(label_series, per_stream)
                    results.append((_f1(labels, np.concatenate(per_stream)), detected, false_alarms, replace(
                        config, spike_threshold=threshold, hold_ratio=ratio, spike_persistence=persistence)))
    top = max(r[0] for r in results)
    f1, detected, false_alarms, chosen = min(
        (r for r in results if r[0] >= NEAR_BEST * top), key=lambda r: (-r[1], r[3].spike_threshold, r[2])
    )
    log.info("calibrated spike threshold %.3g, persistence %s: training F1 %.3f (best %.3f), %d events caught, "
             "%d false alarms, over %d candidates", chosen.spike_threshold, chosen.spike_persistence, f1, top,
             detected, false_alarms, len(results))
    return Calibration(chosen, f1, len(results))


#: One training run: a candidate tuning (an instrument sensitivity) and the streams it scored.
Run = tuple[DetectorConfig, Sequence[ScoredStream]]


@dataclass(frozen=True, slots=True)
class HeldOutCheck:
    """The tuning chosen on the first part of the training history, scored on its last part
    against the defaults: labels only replace the defaults where they did better there."""

    fit_readings: int
    held_out_readings: int
    tuned_f1: float
    default_f1: float

    @property
    def tuning_helps(self) -> bool:
        return self.tuned_f1 > self.default_f1

    def __str__(self) -> str:
        return (f"tuned on the first {self.fit_readings} training readings, the labels scored F1 {self.tuned_f1:.3f} "
                f"on the last {self.held_out_readings}, the defaults {self.default_f1:.3f}")


#: The last part of a labelled training history that checks the tuning chosen on the rest.
HELD_OUT_FRACTION = 1 / 3


def tune(runs: Sequence[Run], *, spikes: bool = True) -> tuple[Calibration, int]:
    """The best tuning over the runs (one per instrument sensitivity) and the index of its run;
    without ``spikes`` (only instrument events count) a run's F1 is that of its fixed rows.
    Of those within 3 % of the best training F1 the least sensitive wins: a record labelled
    densely rewards flagging everything, and every instrument alarm is a visit to the station."""
    tuned: list[tuple[Calibration, int]] = []
    reason = "nothing to calibrate"
    for index, (candidate, streams) in enumerate(runs):
        try:
            if not spikes:
                check_labels(streams)
                tuned.append((Calibration(candidate, fixed_f1(streams), len(runs)), index))
            else:
                tuned.append((calibrate(streams, candidate), index))
        except NothingToCalibrate as exc:
            reason = str(exc)
    if not tuned:
        raise NothingToCalibrate(reason)
    top = max(calibration.train_f1 for calibration, _ in tuned)
    return min((t for t in tuned if t[0].train_f1 >= NEAR_BEST * top), key=lambda t: t[0].config.fault_sensitivity)


def held_out_check(runs: Sequence[Run], default: int, *, spikes: bool = True) -> HeldOutCheck | None:
    """Tune on the first part of each run, score that tuning and the defaults on the held-out
    part; ``None`` when either part cannot tell (no labelled event in it, nothing to tune)."""
    held_out = [[s.held_out_part() for s in streams] for _, streams in runs]
    fit = [(candidate, [s.fit_part() for s in streams]) for candidate, streams in runs]
    if not any(any(s.labels) for s in held_out[default]):
        return None
    try:
        chosen, index = tune(fit, spikes=spikes)
    except NothingToCalibrate:
        return None
    return HeldOutCheck(
        fit_readings=sum(len(s.scores) for s in fit[default][1]),
        held_out_readings=sum(len(s.scores) for s in held_out[default]),
        tuned_f1=predicted_f1(held_out[index], chosen.config),
        default_f1=predicted_f1(held_out[default], runs[default][0]),
    )


def _pooled_labels(streams: Sequence[ScoredStream]) -> np.ndarray:
    return np.concatenate([np.asarray(s.labels, dtype=bool) for s in streams])


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _event_counts(labels: Sequence[np.ndarray], predicted: Sequence[np.ndarray]) -> tuple[int, int]:
    """Labelled events touched by a prediction, and predicted events touching no label."""
    detected = false_alarms = 0
    for lab, pred in zip(labels, predicted, strict=True):
        pred_sum = np.concatenate(([0], np.cumsum(pred)))
        lab_sum = np.concatenate(([0], np.cumsum(lab)))
        starts, ends = _runs(lab)
        detected += int(np.count_nonzero(pred_sum[ends] - pred_sum[starts]))
        starts, ends = _runs(pred)
        false_alarms += int(np.count_nonzero(lab_sum[ends] - lab_sum[starts] == 0))
    return detected, false_alarms


def _f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    tp = int(np.count_nonzero(labels & predicted))
    if tp == 0:
        return 0.0
    precision = tp / int(np.count_nonzero(predicted))
    recall = tp / int(np.count_nonzero(labels))
    return 2 * precision * recall / (precision + recall)
