"""Replay/backtest: stream CSV rows through the same detector stack the Kafka service runs.

A training file (``--train``) is streamed first so the detectors start the scored file with
learned baselines; its labels calibrate the tuning (:mod:`detectors.calibration`). The scored
file's labels are only compared with the predictions afterwards, never shown to the detectors.

What counts as a positive (:class:`Count`): a row is predicted "in event" when, after it was
processed, its station has an open pollution event (spike, limit exceedance, class downgrade),
an open instrument event (sensor fault, maintenance), or either. Rows without any value carry
the station's current state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Final

from detectors.calibration import (
    HELD_OUT_FRACTION,
    Calibration,
    HeldOutCheck,
    NothingToCalibrate,
    ScoredStream,
    held_out_check,
    tune,
)
from detectors.channels import STATION_WIDE
from detectors.config import DetectorConfig
from detectors.errors import ReplayError
from detectors.metrics import BacktestMetrics, roc_auc, score_predictions
from detectors.stack import DetectorStack
from detectors.station import StationDetector
from detectors.table import Table
from riverguard.models import Detection, DetectionKind
from riverguard.stations import StationRegistry

#: Sensitivities of the instrument checks tried when faults count and there are labels to learn from.
_FAULT_SENSITIVITIES: Final = (0.5, 0.7, 1.0, 1.4, 2.0)


class Count(StrEnum):
    """Which detections count as a positive for the metrics."""

    POLLUTION = "pollution"
    INSTRUMENT = "instrument"
    ANY = "any"


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One row after its reading was processed: the station's scores and what it had open."""

    line: int
    time: str
    station_id: str
    #: The combined pollution-spike score, and how strongly the reading looked like an instrument
    #: problem (>= 1: it did).
    pollution_score: float
    instrument_score: float
    pollution: bool
    instrument: bool
    open_events: tuple[str, ...]
    label: bool | None

    def predicted(self, count: Count) -> bool:
        if count is Count.POLLUTION:
            return self.pollution
        if count is Count.INSTRUMENT:
            return self.instrument
        return self.pollution or self.instrument

    def score(self, count: Count, spike_threshold: float) -> float:
        """The per-reading score of what counts; for both, each in units of its own threshold."""
        if count is Count.POLLUTION:
            return self.pollution_score
        if count is Count.INSTRUMENT:
            return self.instrument_score
        return max(self.pollution_score / spike_threshold, self.instrument_score)


@dataclass(slots=True)
class ReplayResult:
    outcomes: list[RowOutcome]
    detections: list[Detection]
    metrics: BacktestMetrics | None
    calibration: Calibration | None
    config: DetectorConfig
    count: Count = Count.POLLUTION
    counts: dict[str, int] = field(default_factory=dict)
    #: Why the training labels could not tune anything (the defaults stayed), if they could not.
    not_calibrated: str | None = None
    #: Per open-event kind (``sensor_fault/level_shift``, ``pollution_spike`` ...): rows it was open,
    #: of them labelled, and labelled events it touched.
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    roc_auc: float | None = None
    #: How the labels' tuning did on the held-out last third of the training history.
    held_out: HeldOutCheck | None = None


def _outcome(detector: StationDetector, line: int, time: str, station: str, label: bool | None) -> RowOutcome:
    events = detector.events
    return RowOutcome(line, time, station, detector.last_score, detector.instrument_score, events.in_pollution_event,
                      events.in_instrument_event, tuple(events.open_events()), label)


def _stream(stack: DetectorStack, table: Table) -> tuple[list[RowOutcome], list[Detection]]:
    outcomes, detections = [], []
    for row in table.rows:
        detector = stack.detector(row.station_id)
        if row.reading is not None:
            detections.extend(detector.process(row.reading))
        outcomes.append(_outcome(detector, row.line, row.time.isoformat(), row.station_id, row.label))
    return outcomes, detections


def _training_streams(stack: DetectorStack, table: Table, count: Count, held_out_at: datetime) -> list[ScoredStream]:
    """Per station: spike scores, labels, rows positive whatever the spike threshold, and where
    the held-out part (readings from ``held_out_at`` on) begins."""
    per_station: dict[str, tuple[list[float], list[bool], list[bool]]] = {}
    fit_rows: dict[str, int] = {}
    for row in table.rows:
        if row.reading is None:
            continue
        detector = stack.detector(row.station_id)
        detector.process(row.reading)
        events = detector.events
        fixed = count is not Count.POLLUTION and events.in_instrument_event
        if count is not Count.INSTRUMENT:
            fixed = fixed or (events.in_pollution_event and not events.is_open(DetectionKind.POLLUTION_SPIKE,
                                                                                STATION_WIDE))
        scores, labels, fixes = per_station.setdefault(row.station_id, ([], [], []))
        scores.append(detector.last_score if count is not Count.INSTRUMENT else 0.0)
        labels.append(bool(row.label))
        fixes.append(fixed)
        if row.time < held_out_at:
            fit_rows[row.station_id] = len(scores)
    return [ScoredStream(s, lab, f, fit_rows.get(station, 0)) for station, (s, lab, f) in per_station.items()]


@dataclass(frozen=True, slots=True)
class Training:
    stack: DetectorStack
    calibration: Calibration | None = None
    #: Why the labels tuned nothing (the defaults stay), when they did not.
    not_calibrated: str | None = None
    held_out: HeldOutCheck | None = None


def _train(train: Table, config: DetectorConfig, registry: StationRegistry | None, count: Count) -> Training:
    """Stream the training table; with labels, tune on it. When faults count, each instrument
    sensitivity gets its own run (the faults decide which values the spike score sees). Before the
    tuning replaces the defaults it must beat them on history it was not tuned on: tuned on the
    first two thirds, it has to score a higher F1 than the defaults on the last third (the tuning
    then used is chosen on the whole history)."""
    labelled = any(row.label is not None for row in train.rows)
    if not labelled:
        stack = DetectorStack(config, registry)
        _stream(stack, train)
        return Training(stack)
    candidates = [config]
    if count is not Count.POLLUTION:
        candidates = [replace(config, fault_sensitivity=s) for s in _FAULT_SENSITIVITIES]
    default = next(i for i, c in enumerate(candidates) if c.fault_sensitivity == config.fault_sensitivity)
    held_out_at = train.rows[int(len(train.rows) * (1 - HELD_OUT_FRACTION))].time
    stacks, runs = [], []
    for candidate in candidates:
        stack = DetectorStack(candidate, registry)
        runs.append((candidate, _training_streams(stack, train, count, held_out_at)))
        stacks.append(stack)
    check = held_out_check(runs, default, spikes=count is not Count.INSTRUMENT)
    if check is not None and not check.tuning_helps:
        return Training(stacks[default], None, str(check), check)
    try:
        calibration, index = tune(runs, spikes=count is not Count.INSTRUMENT)
    except NothingToCalibrate as exc:
        return Training(stacks[default], None, str(exc), check)
    stacks[index].reconfigure(calibration.config)
    return Training(stacks[index], calibration, None, check)


def replay(
    table: Table,
    *,
    train: Table | None = None,
    config: DetectorConfig | None = None,
    registry: StationRegistry | None = None,
    count: Count = Count.POLLUTION,
) -> ReplayResult:
    """Run the backtest; metrics are computed when the scored table has labels."""
    config = config or DetectorConfig()
    training = Training(DetectorStack(config, registry))
    if train is not None:
        if train.rows and table.rows and table.rows[0].time <= train.rows[-1].time:
            raise ReplayError(
                f"{table.path} starts at {table.rows[0].time.isoformat()}, not after the end of the training file "
                f"{train.path} ({train.rows[-1].time.isoformat()}); the scored data must follow the training data"
            )
        training = _train(train, config, registry, count)
    stack = training.stack
    outcomes, detections = _stream(stack, table)
    spike_threshold = stack.config.spike_threshold
    result = ReplayResult(outcomes, detections, None, training.calibration, stack.config, count,
                          not_calibrated=training.not_calibrated, held_out=training.held_out)
    for detection in detections:
        key = f"{detection.kind.value}/{detection.phase.value}"
        result.counts[key] = result.counts.get(key, 0) + 1
    if outcomes and all(o.label is not None for o in outcomes):
        labels = [bool(o.label) for o in outcomes]
        times = [row.time for row in table.rows]
        stations = [o.station_id for o in outcomes]
        result.metrics = score_predictions(times, stations, labels, [o.predicted(count) for o in outcomes])
        result.roc_auc = roc_auc([o.score(count, spike_threshold) for o in outcomes], labels)
        result.by_kind = _by_kind(outcomes, labels, times, stations)
    return result


def _by_kind(
    outcomes: list[RowOutcome], labels: list[bool], times: list[datetime], stations: list[str]
) -> dict[str, dict[str, float]]:
    """For each kind of open event, how its rows alone would score."""
    kinds = sorted({kind for o in outcomes for kind in o.open_events})
    out = {}
    for kind in kinds:
        predicted = [kind in o.open_events for o in outcomes]
        m = score_predictions(times, stations, labels, predicted)
        out[kind] = {"rows": m.predicted_rows, "labelled_rows": round(m.precision * m.predicted_rows),
                     "precision": m.precision, "recall": m.recall, "detected_events": m.detected_events,
                     "false_alarm_events": m.false_alarm_events}
    return out
