"""Backtest metrics: per-reading precision/recall/F1 (the GECCO 2018 challenge metric), event
recall, detection delay and false-alarm events per 30 days.

An event is a maximal run of consecutive labelled rows of one station; a predicted event is a
maximal run of consecutive predicted rows. A labelled event counts as detected when any of its
rows is predicted; the delay is from its first row to the first predicted row inside it. A
predicted event that touches no labelled row is a false alarm.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> times = [t0 + timedelta(minutes=i) for i in range(10)]
>>> m = score_predictions(times, ["s"] * 10, [False, False, True, True, True, False, False, False, False, False],
...                       [False, False, False, True, True, True, False, False, True, False])
>>> round(m.f1, 3), m.event_recall, m.mean_detection_delay_s, m.false_alarm_events
(0.571, 1.0, 60.0, 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class BacktestMetrics:
    rows: int
    labelled_rows: int
    predicted_rows: int
    precision: float
    recall: float
    f1: float
    events: int
    detected_events: int
    event_recall: float
    mean_detection_delay_s: float | None
    false_alarm_events: int
    observed_days: float
    false_alarms_per_30d: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _runs(flags: Sequence[bool]) -> list[tuple[int, int]]:
    runs, start = [], None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(flags)))
    return runs


def score_predictions(
    times: Sequence[datetime], stations: Sequence[str], labels: Sequence[bool], predicted: Sequence[bool]
) -> BacktestMetrics:
    """Metrics over rows given in time order (any mix of stations)."""
    tp = sum(1 for label, p in zip(labels, predicted, strict=True) if label and p)
    n_pred, n_label = sum(predicted), sum(labels)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_label if n_label else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    events = detected = false_alarms = 0
    delays: list[float] = []
    days = 0.0
    for station in dict.fromkeys(stations):
        index = [i for i, s in enumerate(stations) if s == station]
        st_labels = [labels[i] for i in index]
        st_pred = [predicted[i] for i in index]
        st_times = [times[i] for i in index]
        days += (st_times[-1] - st_times[0]).total_seconds() / 86400 if len(st_times) > 1 else 0.0
        for start, end in _runs(st_labels):
            events += 1
            hit = next((i for i in range(start, end) if st_pred[i]), None)
            if hit is not None:
                detected += 1
                delays.append((st_times[hit] - st_times[start]).total_seconds())
        for start, end in _runs(st_pred):
            if not any(st_labels[start:end]):
                false_alarms += 1
    return BacktestMetrics(
        rows=len(labels),
        labelled_rows=n_label,
        predicted_rows=n_pred,
        precision=precision,
        recall=recall,
        f1=f1,
        events=events,
        detected_events=detected,
        event_recall=detected / events if events else 0.0,
        mean_detection_delay_s=sum(delays) / len(delays) if delays else None,
        false_alarm_events=false_alarms,
        observed_days=days,
        false_alarms_per_30d=false_alarms * 30.0 / days if days > 0 else 0.0,
    )


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of a per-row score (ties count half; Mann-Whitney U), or ``None``
    when the labels are all one class.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    >>> roc_auc([1.0, 1.0], [False, True])
    0.5
    """
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mean_rank = (i + j) / 2 + 1
        rank_sum += mean_rank * sum(1 for k in order[i : j + 1] if labels[k])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
