"""The alert side's playbooks: one plume model run per change in what the stations saw, not per detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.playbook_source import REBUILD_AFTER, RiverPlaybooks
from playbooks import load_networks
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding

T0 = datetime(2024, 7, 1, 2, 0, tzinfo=UTC)
NETWORKS = load_networks([])


def detection(station: str, minutes: float, value: float, phase: DetectionPhase = DetectionPhase.UPDATE) -> Detection:
    return Detection(
        detection_id=f"{station}-{minutes}", event_id=f"{station}-event", station_id=station, river="tuo",
        time=T0 + timedelta(minutes=minutes), kind=DetectionKind.LIMIT_EXCEEDANCE, phase=phase, detector="limits",
        findings=(Finding(parameter="NH3N", value=value, limit=1.0),),
    )


def test_an_events_later_detections_reuse_the_playbook_until_the_plume_changes() -> None:
    source = RiverPlaybooks(NETWORKS)
    first = source.for_detection(detection("tuo-hongyuan", 0, 3.0, DetectionPhase.ONSET))
    again = source.for_detection(detection("tuo-hongyuan", 10, 3.1))
    assert first is not None
    assert again is first  # same station, same sightings, the peak within a step: no new model run
    assert source.builds == 1

    higher = source.for_detection(detection("tuo-hongyuan", 20, 6.0))  # the peak doubled
    assert higher is not None
    assert higher is not first
    downstream = source.for_detection(detection("tuo-sanhuangmiao", 300, 2.0, DetectionPhase.ONSET))
    assert downstream is not None
    assert source.builds == 3  # a new station that saw it corrects the model: built again

    late = source.for_detection(detection("tuo-hongyuan", 20 + REBUILD_AFTER.total_seconds() / 60 + 1, 6.1))
    assert late is not None
    assert source.builds == 4  # long after the last build: built again though nothing else changed


def test_a_spike_of_the_same_pollutant_that_cannot_be_this_plume_changes_nothing() -> None:
    source = RiverPlaybooks(NETWORKS)
    first = source.for_detection(detection("tuo-sanhuangmiao", 0, 3.0, DetectionPhase.ONSET))
    # Upstream, ten minutes later: water does not flow uphill; this is another plume.
    source.for_detection(detection("tuo-hongyuan", 10, 2.0, DetectionPhase.ONSET))
    builds = source.builds
    again = source.for_detection(detection("tuo-sanhuangmiao", 20, 3.1))
    assert again is first
    assert source.builds == builds
    assert first is not None
    assert again is not None
    assert [c.station_id for c in first.station_checks] == [c.station_id for c in again.station_checks]


def test_a_clear_builds_no_playbook_but_later_playbooks_know_the_plume_passed() -> None:
    source = RiverPlaybooks(NETWORKS)
    source.for_detection(detection("tuo-hongyuan", 0, 3.0, DetectionPhase.ONSET))
    assert source.for_detection(detection("tuo-hongyuan", 60, 0.5, DetectionPhase.CLEARED)) is None
    assert source.builds == 1
    (seen,) = source.plumes.observations("tuo", "NH3N", T0)
    assert seen.station_id == "tuo-hongyuan"
    assert seen.normal_again_at == T0 + timedelta(minutes=60)
    downstream = source.for_detection(detection("tuo-sanhuangmiao", 300, 2.0, DetectionPhase.ONSET))
    assert downstream is not None
    assert source.builds == 2
