"""Operator verdicts tune a station: false alarms make it quieter, confirmations more alert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from detectors import DetectorStack
from riverguard.models import Detection, DetectionKind, DetectionPhase
from tests.support.readings import STATION, T0, reading

SID = STATION.station_id


def spike_onsets(stack: DetectorStack, start: int, level: float) -> list[Detection]:
    """Quiet water, then a plume of ammonia (with its DO sag) ``level`` above normal for 20 minutes."""
    out: list[Detection] = []
    for i in range(start, start + 200):
        plume = start + 150 <= i < start + 170
        r = reading(i, NH3N=0.3 + level, DO=8.2 - level) if plume else reading(i)
        out += [d for d in stack.process(r)
                if d.kind is DetectionKind.POLLUTION_SPIKE and d.phase is DetectionPhase.ONSET]
    return out


def borderline() -> float:
    """The smallest plume (in 0.01 steps) a fresh station reports."""
    for step in range(1, 100):
        if spike_onsets(DetectorStack(), 0, step * 0.01):
            return step * 0.01
    raise AssertionError("no plume level is reported")


def test_a_station_that_cries_wolf_gets_quieter_and_a_confirmed_one_more_alert() -> None:
    level = borderline()
    quiet, alert = DetectorStack(), DetectorStack()
    for n in range(4):
        quiet.learn_verdict(SID, "false_alarm", T0, T0 + timedelta(minutes=5), label=f"RG-{n}")
        alert.learn_verdict(SID, "confirmed_pollution", T0, T0 + timedelta(minutes=5), label=f"RG-{n}")
    assert spike_onsets(DetectorStack(), 0, level)
    assert not spike_onsets(quiet, 0, level)
    assert spike_onsets(alert, 0, level * 0.8)
    assert not spike_onsets(DetectorStack(), 0, level * 0.8)


def test_a_corrected_verdict_replaces_the_first_and_drills_change_nothing() -> None:
    stack = DetectorStack()
    for _ in range(3):
        stack.learn_verdict(SID, "false_alarm", T0, T0, label="RG-1")
    detector = stack.detectors[SID]
    assert detector.feedback.weight(T0) == pytest.approx(0.85)
    stack.learn_verdict(SID, "drill", T0, T0, label="RG-1")
    assert detector.feedback.weight(T0) == 1.0


def test_verdicts_are_part_of_the_checkpoint_and_fade_after_the_memory() -> None:
    stack = DetectorStack()
    stack.learn_verdict(SID, "instrument_fault", T0, T0 + timedelta(hours=1), label="RG-7")
    stack.process(reading(0))
    restored = DetectorStack()
    assert restored.restore(SID, stack.checkpoint(SID))
    feedback = restored.detectors[SID].feedback
    assert feedback.weight(T0) == pytest.approx(0.85)
    assert feedback.weight(T0 + timedelta(days=91)) == 1.0


def test_a_verdict_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        DetectorStack().learn_verdict(SID, "false_alarm", T0 + timedelta(hours=1), T0)
