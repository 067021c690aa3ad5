"""Commands of the detectors package: ``riverguard replay``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from riverguard.cli import ConfigOption, settings_and_registry_or_exit
from riverguard.errors import RiverguardError

if TYPE_CHECKING:
    from detectors.replay import Count, ReplayResult, RowOutcome



def register(app: typer.Typer) -> None:
    app.command("replay")(replay_command)


def replay_command(
    file: Annotated[Path, typer.Argument(help="CSV to score, one row per reading.")],
    time_column: Annotated[str, typer.Option("--time-column", help="Column with ISO date-times.")] = "Time",
    station_column: Annotated[
        str | None, typer.Option("--station-column", help="Column with station ids (else one station 'replay').")
    ] = None,
    label_column: Annotated[
        str | None, typer.Option("--label-column", help="Column of true/false event labels, used for metrics only.")
    ] = None,
    train: Annotated[
        Path | None, typer.Option("--train", help="CSV streamed first; its labels (if any) calibrate the detectors.")
    ] = None,
    count: Annotated[
        str, typer.Option("--count", help="What counts as a positive: pollution, instrument or any (either).")
    ] = "pollution",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with the metrics.")] = False,
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="Write per-row score and in-event flag to this CSV.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Backtest the detectors on a CSV (no Kafka): per-reading F1, event recall, delay, false alarms."""
    from detectors.replay import Count, replay
    from detectors.table import csv_header, load_table

    if count not in {c.value for c in Count}:
        typer.echo(f"error: --count {count!r} is not one of {', '.join(c.value for c in Count)}", err=True)
        raise typer.Exit(2)
    counted = Count(count)
    _, registry = settings_and_registry_or_exit(config)
    try:
        history = None
        if train is not None:
            # A training file without the label column is plain history: streamed, not calibrated on.
            labelled = label_column is not None and label_column in csv_header(train)
            history = load_table(train, time_column=time_column, station_column=station_column,
                                 label_column=label_column if labelled else None, registry=registry)
        table = load_table(file, time_column=time_column, station_column=station_column, label_column=label_column,
                           registry=registry)
        result = replay(table, train=history, registry=registry, count=counted)
    except RiverguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if predictions is not None:
        _write_predictions(predictions, result.outcomes, counted, result.config.spike_threshold)
    if as_json:
        typer.echo(json.dumps(_summary(result), ensure_ascii=False))
        return
    mapped = ", ".join(f"{column}→{parameter}" for column, parameter in table.parameters.items())
    typer.echo(f"{file}: {len(table.rows)} rows, parameters {mapped}")
    if table.ignored_columns:
        typer.echo(f"ignored non-numeric columns: {', '.join(table.ignored_columns)}")
    if history is not None and history.rows and history.rows[0].label is None:
        typer.echo(f"streamed {train} as history (no {label_column or 'label'} column): nothing calibrated")
    _report(result, train)


def _summary(result: ReplayResult) -> dict[str, object]:
    """The --json body: the headline metrics first, then how they were reached."""
    keys = ("f1", "precision", "recall", "event_recall", "mean_detection_delay_s", "false_alarms_per_30d")
    body: dict[str, object] = dict.fromkeys(keys)
    if result.metrics is not None:
        body = {key: result.metrics.as_dict()[key] for key in keys}
        body["details"] = result.metrics.as_dict()
    body["count"] = result.count.value
    body["roc_auc"] = result.roc_auc
    body["by_kind"] = result.by_kind
    body["spike_threshold"] = result.config.spike_threshold
    body["fault_sensitivity"] = result.config.fault_sensitivity
    body["calibrated"] = result.calibration is not None
    if result.not_calibrated is not None:
        body["not_calibrated"] = result.not_calibrated
    if result.held_out is not None:
        check = result.held_out
        body["held_out"] = {"fit_readings": check.fit_readings, "held_out_readings": check.held_out_readings,
                            "tuned_f1": check.tuned_f1, "default_f1": check.default_f1}
    body["detections"] = result.counts
    return body


def _report(result: ReplayResult, train: Path | None) -> None:
    if result.calibration is not None:
        c = result.calibration.config
        typer.echo(f"calibrated on {train}: spike threshold {c.spike_threshold:.3g}, persistence "
                   f"{c.spike_persistence.k}/{c.spike_persistence.n}, close after {c.spike_persistence.close_after}, "
                   f"fault sensitivity {c.fault_sensitivity:g}, training F1 {result.calibration.train_f1:.3f}")
    elif result.not_calibrated is not None:
        typer.echo(f"not calibrated on {train}: {result.not_calibrated}; the default tuning is kept")
    if result.calibration is not None and result.held_out is not None:
        typer.echo(f"held-out check: {result.held_out}")
    typer.echo("detections: " + (", ".join(f"{k} {v}" for k, v in sorted(result.counts.items())) or "none"))
    metrics = result.metrics
    if metrics is None:
        typer.echo("no labels (--label-column) — metrics not computed")
        return
    delay = metrics.mean_detection_delay_s
    auc = "n/a" if result.roc_auc is None else f"{result.roc_auc:.3f}"
    typer.echo(
        f"counting {result.count.value} detections: per-reading precision {metrics.precision:.3f} "
        f"recall {metrics.recall:.3f} F1 {metrics.f1:.3f}, score ROC AUC {auc}\n"
        f"events {metrics.detected_events}/{metrics.events} detected (event recall {metrics.event_recall:.3f}), "
        f"mean detection delay {'n/a' if delay is None else f'{delay:.0f} s'}\n"
        f"false-alarm events {metrics.false_alarm_events} over {metrics.observed_days:.1f} days "
        f"({metrics.false_alarms_per_30d:.2f} per 30 days)"
    )


def _write_predictions(path: Path, outcomes: list[RowOutcome], count: Count, spike_threshold: float) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "time", "station", "score", "in_event", "label", "pollution_score",
                             "instrument_score", "open_events"])
            for o in outcomes:
                writer.writerow([o.line, o.time, o.station_id, f"{o.score(count, spike_threshold):.6g}",
                                 o.predicted(count), "" if o.label is None else o.label, f"{o.pollution_score:.6g}",
                                 f"{o.instrument_score:.6g}", " ".join(o.open_events)])
    except OSError as exc:
        typer.echo(f"error: cannot write {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
