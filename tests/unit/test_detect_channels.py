"""Event logic alone: verdicts in, one event per episode out (onset, updates, cleared)."""

from __future__ import annotations

from datetime import timedelta

from detectors.channels import STATION_WIDE, EventBook, Verdict
from detectors.config import DetectorConfig, Persistence
from riverguard.models import Detection, DetectionKind, DetectionPhase
from tests.support.readings import STATION, reading

K = DetectionKind


def spike(firing: bool, score: float) -> Verdict:
    return Verdict(K.POLLUTION_SPIKE, STATION_WIDE, firing, firing, score, ("NH3N",))


def test_one_episode_is_one_event_with_stable_ids_and_evidence() -> None:
    config = DetectorConfig(update_every=6)
    book = EventBook(STATION, config, {})
    out: list[Detection] = []
    pattern = [False] * 3 + [True] * 12 + [False] * 8
    for i, firing in enumerate(pattern):
        r = reading(i)
        book.step(spike(firing, 5.0 if firing else 0.0), r, out)
        book.remember(r)
    assert [d.phase for d in out] == [DetectionPhase.ONSET, DetectionPhase.UPDATE, DetectionPhase.UPDATE,
                                      DetectionPhase.CLEARED]
    assert len({d.event_id for d in out}) == 1
    assert [d.detection_id.rsplit("-", 1)[1] for d in out] == ["0", "1", "2", "3"]
    onset = out[0]
    assert onset.time == reading(5).time  # the third firing reading of 3-of-5
    assert [r.time for r in onset.readings] == [reading(i).time for i in (3, 4, 5)]
    assert onset.message.startswith(STATION.section)
    assert not book.in_pollution_event


def test_a_growing_score_is_reported_before_update_every() -> None:
    book = EventBook(STATION, DetectorConfig(spike_persistence=Persistence(k=1, n=1)), {})
    out: list[Detection] = []
    for i, score in enumerate([4.0, 4.5, 7.0, 7.2]):
        book.step(spike(True, score), reading(i), out)
    assert [(d.phase, d.score) for d in out] == [(DetectionPhase.ONSET, 4.0), (DetectionPhase.UPDATE, 7.0)]
    assert book.in_pollution_event
    assert book.is_open(K.POLLUTION_SPIKE, STATION_WIDE)


def test_reconfigure_gives_an_idle_spike_channel_the_new_persistence() -> None:
    book = EventBook(STATION, DetectorConfig(), {})
    out: list[Detection] = []
    book.step(spike(False, 0.0), reading(0), out)
    book.reconfigure(DetectorConfig(spike_persistence=Persistence(k=1, n=1)))
    book.step(spike(True, 5.0), reading(1), out)
    assert [d.phase for d in out] == [DetectionPhase.ONSET]


def test_a_channel_survives_its_snapshot() -> None:
    book = EventBook(STATION, DetectorConfig(), {})
    out: list[Detection] = []
    for i in range(4):
        book.step(spike(True, 5.0), reading(i), out)
        book.remember(reading(i))
    copy = EventBook(STATION, DetectorConfig(), {})
    copy.restore(book.snapshot(), list(book.recent))
    later = [reading(i).model_copy(update={"time": reading(0).time + timedelta(minutes=i)}) for i in range(4, 12)]
    a: list[Detection] = []
    b: list[Detection] = []
    for r in later:
        book.step(spike(False, 0.0), r, a)
        copy.step(spike(False, 0.0), r, b)
    assert a == b
    assert [d.phase for d in a] == [DetectionPhase.CLEARED]
