"""GECCO 2018 (real, labelled drinking-water data, ~1 reading/min): train on the first half,
score the second half with ``riverguard replay``, no look-ahead. The halves are written to a
temporary directory; no copy of the data is committed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "gecco2018" / "gecco2018_train.csv"

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not DATA.exists(), reason=f"GECCO 2018 data not present at {DATA}")
def test_gecco_second_half_f1(tmp_path: Path) -> None:
    lines = DATA.read_text().splitlines()
    half = 1 + (len(lines) - 1) // 2
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    train.write_text("\n".join(lines[:half]) + "\n")
    test.write_text("\n".join([lines[0], *lines[half:]]) + "\n")
    result = CliRunner().invoke(app, ["replay", str(test), "--time-column", "Time", "--label-column", "EVENT",
                                      "--train", str(train), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    log.warning("GECCO 2018 second half: %s", {k: body[k] for k in ("f1", "precision", "recall", "event_recall",
                                                                   "mean_detection_delay_s", "false_alarms_per_30d")})
    assert body["f1"] >= 0.7
    assert body["roc_auc"] >= 0.95
    assert body["event_recall"] >= 0.8
    assert body["false_alarms_per_30d"] <= 30
