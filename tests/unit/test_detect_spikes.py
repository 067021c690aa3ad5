"""Spike scoring alone: per-parameter surprise combined, raised by the HalfSpaceTrees isolation."""

from __future__ import annotations

import math
import random

import pytest

from detectors.config import DetectorConfig
from detectors.spikes import SpikeScorer


def calm(rng: random.Random) -> dict[str, float]:
    return {name: abs(rng.gauss(0.0, 0.4)) for name in ("NH3N", "pH", "DO")}


def test_only_the_excess_over_half_the_usual_range_counts() -> None:
    scorer = SpikeScorer(DetectorConfig(hst_weight=0))
    assert scorer.score({}) == 0.0
    assert scorer.score({"NH3N": 0.5, "pH": 0.2}) == 0.0
    assert scorer.score({"NH3N": 3.5, "DO": 4.5}) == pytest.approx(math.hypot(3.0, 4.0))
    # Adding a calm parameter does not change the score.
    assert scorer.score({"NH3N": 3.5, "DO": 4.5, "pH": 0.3}) == pytest.approx(5.0)


def test_isolated_joint_state_is_raised_and_not_learned_as_normal() -> None:
    config = DetectorConfig()
    scorer = SpikeScorer(config)
    rng = random.Random(1)
    for _ in range(3 * config.hst_window):
        scorer.score(calm(rng))
    assert scorer.hst is not None
    learned = scorer.hst.counter
    spill = {"NH3N": 6.0, "pH": 2.0, "DO": 5.0}
    single = SpikeScorer(DetectorConfig(hst_weight=0)).score(spill)
    assert scorer.score(spill) > 1.2 * single
    # Above hst_learn_below the state is scored, not taught to the trees.
    assert scorer.hst.counter == learned


def test_a_new_parameter_gets_new_trees() -> None:
    scorer = SpikeScorer(DetectorConfig())
    rng = random.Random(2)
    for _ in range(50):
        scorer.score(calm(rng))
    first = scorer.hst
    scorer.score({**calm(rng), "TP": 0.1})
    assert scorer.hst is not first
    assert scorer.hst_features == {"NH3N", "pH", "DO", "TP"}
