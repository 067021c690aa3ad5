"""Replay/backtest: stream CSV rows through the same detector stack the Kafka service runs.

A training file (``--train``) is streamed first so the detectors start the scored file with
learned baselines; its labels calibrate the spike threshold and persistence
(:mod:`detectors.calibration`). The scored file's labels are only compared with the predictions
afterwards, never shown to the detectors. A row is predicted "in event" when a pollution event
(spike, limit exceedance, class downgrade) is open at its station after the row was processed;
rows without any value carry the station's current state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.calibration import Calibration, ScoredStream, calibrate
from detectors.channels import STATION_WIDE
from detectors.config import DetectorConfig
from detectors.errors import ReplayError
from detectors.metrics import BacktestMetrics, score_predictions
from detectors.stack import DetectorStack
from detectors.table import Table
from riverguard.models import Detection, DetectionKind
from riverguard.stations import StationRegistry


@dataclass(frozen=True, slots=True)
class RowOutcome:
    line: int
    time: str
    station_id: str
    score: float
    in_event: bool
    label: bool | None


@dataclass(slots=True)
class ReplayResult:
    outcomes: list[RowOutcome]
    detections: list[Detection]
    metrics: BacktestMetrics | None
    calibration: Calibration | None
    config: DetectorConfig
    counts: dict[str, int] = field(default_factory=dict)


def _stream(stack: DetectorStack, table: Table) -> tuple[list[RowOutcome], list[Detection]]:
    outcomes, detections = [], []
    for row in table.rows:
        detector = stack.detector(row.station_id)
        if row.reading is not None:
            detections.extend(detector.process(row.reading))
        outcomes.append(
            RowOutcome(row.line, row.time.isoformat(), row.station_id, detector.last_score,
                       detector.in_pollution_event, row.label)
        )
    return outcomes, detections


def _training_streams(stack: DetectorStack, table: Table) -> list[ScoredStream]:
    per_station: dict[str, tuple[list[float], list[bool], list[bool]]] = {}
    for row in table.rows:
        if row.reading is None:
            continue
        detector = stack.detector(row.station_id)
        detector.process(row.reading)
        spike_open = detector.events.is_open(DetectionKind.POLLUTION_SPIKE, STATION_WIDE)
        regulatory = detector.in_pollution_event and not spike_open
        scores, labels, regs = per_station.setdefault(row.station_id, ([], [], []))
        scores.append(detector.last_score)
        labels.append(bool(row.label))
        regs.append(regulatory)
    return [ScoredStream(s, lab, r) for s, lab, r in per_station.values()]


def replay(
    table: Table,
    *,
    train: Table | None = None,
    config: DetectorConfig | None = None,
    registry: StationRegistry | None = None,
) -> ReplayResult:
    """Run the backtest; metrics are computed when the scored table has labels."""
    stack = DetectorStack(config, registry)
    calibration = None
    if train is not None:
        streams = _training_streams(stack, train)
        if any(row.label is not None for row in train.rows):
            calibration = calibrate(streams, stack.config)
            if calibration is not None:
                stack.reconfigure(calibration.config)
        if train.rows and table.rows and table.rows[0].time <= train.rows[-1].time:
            raise ReplayError(
                f"{table.path} starts at {table.rows[0].time.isoformat()}, not after the end of the training file "
                f"{train.path} ({train.rows[-1].time.isoformat()}); the scored data must follow the training data"
            )
    outcomes, detections = _stream(stack, table)
    metrics = None
    if outcomes and all(o.label is not None for o in outcomes):
        metrics = score_predictions(
            [table.rows[i].time for i in range(len(outcomes))],
            [o.station_id for o in outcomes],
            [bool(o.label) for o in outcomes],
            [o.in_event for o in outcomes],
        )
    counts: dict[str, int] = {}
    for detection in detections:
        key = f"{detection.kind.value}/{detection.phase.value}"
        counts[key] = counts.get(key, 0) + 1
    return ReplayResult(outcomes, detections, metrics, calibration, stack.config, counts)
