"""``riverguard replay``: CSV mapping, missing values, calibration from --train, metrics, errors."""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from detectors.table import canonical_name, load_table
from pipeline.cli import app

runner = CliRunner()


def write_csv(path: Path, start: datetime, rows: int, events: list[tuple[int, int]], seed: int) -> None:
    """A GECCO-like minute series: pH, conductivity, turbidity, a generic signal, some gaps."""
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Time", "pH", "Leit", "Trueb", "Redox", "site_note", "EVENT"])
        for i in range(rows):
            event = any(a <= i < b for a, b in events)
            ph = 8.3 + rng.gauss(0, 0.01) - (0.6 if event else 0.0)
            leit = 210 + rng.gauss(0, 1) + (40 if event else 0)
            trueb = "" if i % 97 == 0 else f"{0.02 + abs(rng.gauss(0, 0.002)):.4f}"
            redox = 750 + rng.gauss(0, 2)
            writer.writerow([(start + timedelta(minutes=i)).isoformat(sep=" "), f"{ph:.3f}", f"{leit:.1f}", trueb,
                             f"{redox:.1f}", "ok", event])


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    write_csv(train, datetime(2024, 1, 1), 3000, [(800, 830), (1700, 1740), (2500, 2520)], seed=1)
    write_csv(test, datetime(2024, 1, 1) + timedelta(minutes=3000), 3000, [(1000, 1025), (2200, 2260)], seed=2)
    return train, test


def test_columns_map_to_canonical_parameters(files: tuple[Path, Path]) -> None:
    table = load_table(files[0], time_column="Time", label_column="EVENT")
    assert table.parameters == {"pH": "pH", "Leit": "conductivity", "Trueb": "turbidity", "Redox": "Redox"}
    assert table.ignored_columns == ("site_note",)
    assert "turbidity" not in table.rows[0].reading.values  # type: ignore[union-attr]
    assert canonical_name("Tp") == "temperature"
    assert canonical_name("TP") == "TP"


def test_replay_with_training_reports_metrics_as_json(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = files
    out = tmp_path / "pred.csv"
    result = runner.invoke(app, ["replay", str(test), "--time-column", "Time", "--label-column", "EVENT",
                                 "--train", str(train), "--json", "--predictions", str(out)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert set(body) >= {"f1", "precision", "recall", "event_recall", "mean_detection_delay_s", "false_alarms_per_30d"}
    assert body["event_recall"] == 1.0
    assert body["f1"] > 0.7
    assert body["mean_detection_delay_s"] < 300
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3000
    assert {"time", "score", "in_event", "label"} <= set(rows[0])


def test_text_report_names_calibration_and_metrics(files: tuple[Path, Path]) -> None:
    train, test = files
    result = runner.invoke(app, ["replay", str(test), "--label-column", "EVENT", "--train", str(train)])
    assert result.exit_code == 0, result.output
    assert "calibrated on" in result.output
    assert "F1" in result.output
    assert "Leit→conductivity" in result.output


def test_unknown_column_is_named(files: tuple[Path, Path]) -> None:
    result = runner.invoke(app, ["replay", str(files[1]), "--label-column", "LABEL"])
    assert result.exit_code == 2
    assert "--label-column 'LABEL' is not a column" in result.output


def test_bad_label_names_line_and_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("Time,pH,EVENT\n2024-01-01 00:00:00,7.9,False\n2024-01-01 00:01:00,7.9,maybe\n")
    result = runner.invoke(app, ["replay", str(bad), "--label-column", "EVENT"])
    assert result.exit_code == 2
    assert "line 3" in result.output
    assert "'maybe'" in result.output
