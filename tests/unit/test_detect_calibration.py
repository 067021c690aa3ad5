"""Calibration from labels checks itself on held-out history before it replaces the defaults."""

from __future__ import annotations

from detectors.calibration import ScoredStream, held_out_check, predicted_f1, tune
from detectors.config import DetectorConfig

DEFAULTS = DetectorConfig()  # spike threshold 3.0


def stream(length: int, held_out_from: int, scored: dict[range, float], labelled: list[range]) -> ScoredStream:
    """Scores of 0.5 except in ``scored``; labels true in ``labelled``; no other event open."""
    scores = [0.5] * length
    for span, value in scored.items():
        for i in span:
            scores[i] = value
    labels = [any(i in span for span in labelled) for i in range(length)]
    return ScoredStream(scores, labels, [False] * length, held_out_from)


def test_a_tuning_that_only_holds_on_the_first_part_keeps_the_defaults() -> None:
    # Faint labelled events (score 2) teach a low threshold; later, unlabelled bursts of the same
    # strength come with a clear labelled event (score 20) that the defaults alone catch.
    history = stream(300, 200, {range(50, 60): 2.0, range(120, 130): 2.0, range(210, 240): 2.5,
                                range(250, 260): 20.0}, [range(50, 60), range(120, 130), range(250, 260)])
    check = held_out_check([(DEFAULTS, [history])], 0)
    assert check is not None
    assert check.fit_readings == 200
    assert check.held_out_readings == 100
    assert check.default_f1 > 0.7  # the clear event, from its persistence's onset
    assert check.tuned_f1 < check.default_f1
    assert not check.tuning_helps


def test_a_tuning_that_holds_on_held_out_history_replaces_the_defaults() -> None:
    faint = {range(50, 60): 2.0, range(120, 130): 2.0, range(250, 262): 2.0}
    history = stream(300, 200, faint, list(faint))
    check = held_out_check([(DEFAULTS, [history])], 0)
    assert check is not None
    assert check.default_f1 == 0.0  # the defaults miss every faint event
    assert check.tuned_f1 > 0.9
    assert check.tuning_helps
    calibration, index = tune([(DEFAULTS, [history])])
    assert index == 0
    assert calibration.config.spike_threshold <= 2.0
    assert predicted_f1([history], calibration.config) > 0.9


def test_no_held_out_check_without_a_labelled_event_in_the_held_out_part() -> None:
    history = stream(300, 200, {range(50, 60): 2.0, range(250, 260): 2.0}, [range(50, 60)])
    assert held_out_check([(DEFAULTS, [history])], 0) is None


def test_the_default_run_is_the_one_scored_for_the_defaults() -> None:
    # Two instrument sensitivities: only the second run's fixed rows cover the held-out event.
    labels = [240 <= i < 260 for i in range(300)]
    quiet = ScoredStream([0.5] * 300, labels, [False] * 300, 200)
    loud = ScoredStream([0.5] * 300, labels, labels, 200)
    sensitive = DetectorConfig(fault_sensitivity=2.0)
    check = held_out_check([(DEFAULTS, [quiet]), (sensitive, [loud])], 0, spikes=False)
    assert check is None  # the first part holds no label: nothing to tune there
    labels = [40 <= i < 60 or 240 <= i < 260 for i in range(300)]
    quiet = ScoredStream([0.5] * 300, labels, [False] * 300, 200)
    loud = ScoredStream([0.5] * 300, labels, labels, 200)
    check = held_out_check([(DEFAULTS, [quiet]), (sensitive, [loud])], 0, spikes=False)
    assert check is not None
    assert check.default_f1 == 0.0
    assert check.tuned_f1 == 1.0
