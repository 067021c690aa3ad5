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
    body = json.loads(result.stdout)
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


def test_count_modes_report_their_own_metrics_breakdown_and_auc(files: tuple[Path, Path]) -> None:
    train, test = files
    bodies = {}
    for count in ("pollution", "instrument", "any"):
        result = runner.invoke(app, ["replay", str(test), "--label-column", "EVENT", "--train", str(train),
                                     "--count", count, "--json"])
        assert result.exit_code == 0, result.output
        bodies[count] = json.loads(result.stdout)
    assert {body["count"] for body in bodies.values()} == {"pollution", "instrument", "any"}
    pollution = bodies["pollution"]
    assert pollution["roc_auc"] > 0.9
    assert pollution["by_kind"]["pollution_spike"]["detected_events"] == 2
    # Faults alone find nothing of this water's events; either kind finds at least what pollution does.
    assert bodies["instrument"]["f1"] < 0.2
    assert bodies["any"]["details"]["predicted_rows"] >= pollution["details"]["predicted_rows"]
    bad = runner.invoke(app, ["replay", str(test), "--label-column", "EVENT", "--count", "faults"])
    assert bad.exit_code == 2
    assert "--count 'faults' is not one of pollution, instrument, any" in bad.output


def test_train_that_cannot_calibrate_says_so_and_keeps_the_defaults(tmp_path: Path) -> None:
    # A level column only (never scored for pollution) and fewer rows than a warm-up, with an event.
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    for path, start in ((train, 0), (test, 100)):
        lines = ["Time,Level,label"] + [
            f"{(datetime(2024, 1, 1) + timedelta(hours=start + i)).isoformat()},{14.1 + 0.01 * (i % 3)},"
            f"{1 if 10 <= i < 14 else 0}" for i in range(40)
        ]
        path.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["replay", str(test), "--label-column", "label", "--train", str(train)])
    assert result.exit_code == 0, result.output
    assert "Level→water_level" in result.output
    assert "not calibrated on" in result.output
    assert "every training spike score is 0" in result.output
    body = json.loads(runner.invoke(app, ["replay", str(test), "--label-column", "label", "--train", str(train),
                                          "--json"]).stdout)
    assert body["calibrated"] is False
    assert body["spike_threshold"] == 3.0
    any_count = runner.invoke(app, ["replay", str(test), "--label-column", "label", "--train", str(train),
                                    "--count", "any", "--json"])
    assert any_count.exit_code == 0, any_count.output


def test_labels_without_events_are_named(files: tuple[Path, Path], tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.csv"
    rows = files[0].read_text().splitlines()
    quiet.write_text("\n".join([rows[0], *(r.rsplit(",", 1)[0] + ",False" for r in rows[1:200])]) + "\n")
    result = runner.invoke(app, ["replay", str(files[1]), "--label-column", "EVENT", "--train", str(quiet)])
    assert result.exit_code == 0, result.output
    assert "not calibrated on" in result.output
    assert "the training labels hold no event" in result.output


@pytest.mark.parametrize(
    ("cell", "error"),
    [("maybe", "line 3: EVENT='maybe' is not a label (0/1/true/false)"),
     ("yes", "line 3: EVENT='yes' is not a label (0/1/true/false)"),
     ("", "line 3: EVENT is empty; every row needs a label 0/1/true/false")],
)
def test_a_label_cell_that_is_not_0_1_true_false_is_an_error_naming_its_line(
    tmp_path: Path, cell: str, error: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"Time,pH,EVENT\n2024-01-01 00:00:00,7.9,False\n2024-01-01 00:01:00,7.9,{cell}\n")
    result = runner.invoke(app, ["replay", str(bad), "--label-column", "EVENT"])
    assert result.exit_code == 2
    assert error in result.output


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["Level", "Tur", "Cond", "Temp", "DO", "pH"],
         ["water_level", "turbidity", "conductivity", "temperature", "DO", "pH"]),
        (["Turbidity", "TSS", "EC", "Fm", "Fm_2"], ["turbidity", "turbidity_2", "conductivity", "discharge",
                                                   "discharge_2"]),
    ],
)
def test_common_column_names_and_second_sensors(tmp_path: Path, columns: list[str], expected: list[str]) -> None:
    path = tmp_path / "aliases.csv"
    path.write_text("Time," + ",".join(columns) + "\n2024-01-01 00:00:00," + ",".join("1" for _ in columns) + "\n")
    assert list(load_table(path, time_column="Time").parameters.values()) == expected


def test_a_training_file_without_labels_is_streamed_as_history(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = files
    history = tmp_path / "history.csv"
    history.write_text("\n".join(line.rsplit(",", 1)[0] for line in train.read_text().splitlines()) + "\n")
    result = runner.invoke(app, ["replay", str(test), "--label-column", "EVENT", "--train", str(history)])
    assert result.exit_code == 0, result.output
    assert f"streamed {history} as history (no EVENT column): nothing calibrated" in result.output
    assert "calibrated on" not in result.output.replace("nothing calibrated", "")
