"""The simulator: deterministic, time-ordered, realistic, and honest about what it injected."""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from ingest.simulator import EventKind, Simulator, Spill
from riverguard.models import DataFlag
from riverguard.stations import load_registry

REGISTRY = load_registry()
START = datetime(2024, 7, 1, tzinfo=UTC)


def test_same_seed_same_readings_and_time_order() -> None:
    first = list(Simulator(REGISTRY, seed=3, start=START).readings(until=START + timedelta(hours=1)))
    again = list(Simulator(REGISTRY, seed=3, start=START).readings(until=START + timedelta(hours=1)))
    other = list(Simulator(REGISTRY, seed=4, start=START).readings(until=START + timedelta(hours=1)))
    assert first == again
    assert first != other
    assert [r.time for r in first] == sorted(r.time for r in first)
    assert {r.station_id for r in first} == set(REGISTRY.by_id)


def test_diurnal_cycle_do_falls_when_water_warms() -> None:
    sim = Simulator(REGISTRY, seed=1, start=START, step=timedelta(minutes=30), faults=False,
                    stations=["min-pengshan"])
    readings = list(sim.readings(until=START + timedelta(days=3)))
    temperature = [r.values["temperature"].value for r in readings]
    oxygen = [r.values["DO"].value for r in readings]
    assert max(temperature) - min(temperature) > 2.5
    assert statistics.correlation(temperature, oxygen) < -0.5
    afternoon = [r.values["temperature"].value for r in readings if (r.time.hour + 8) % 24 == 15]
    dawn = [r.values["temperature"].value for r in readings if (r.time.hour + 8) % 24 == 3]
    assert statistics.mean(afternoon) > statistics.mean(dawn) + 2


def test_a_spill_travels_downstream_later_lower_and_longer() -> None:
    spill = Spill(river="tuo", station_id="tuo-sanhuangmiao", pollutant="NH3N", start=START + timedelta(hours=1),
                  duration=timedelta(hours=2), peak_multiple=10)
    tuo = [s.station_id for s in REGISTRY.on_river("tuo")]
    sim = Simulator(REGISTRY, seed=2, start=START, step=timedelta(minutes=5), spills=[spill], faults=False,
                    stations=tuo)
    arrivals = [e for e in sim.events if e.kind is EventKind.SPILL_ARRIVAL]
    assert [e.station_id for e in arrivals] == tuo[tuo.index("tuo-sanhuangmiao"):]
    assert [e.start for e in arrivals] == sorted(e.start for e in arrivals)
    peaks = [e.peak or 0.0 for e in arrivals]
    assert peaks == sorted(peaks, reverse=True)
    assert all(a.end - a.start < b.end - b.start for a, b in itertools.pairwise(arrivals))
    # ~40 km at ~1 m/s: about 11 hours to the next station.
    assert arrivals[1].start - arrivals[0].start == pytest.approx(timedelta(hours=11.1), abs=timedelta(minutes=10))
    readings = list(sim.readings(until=arrivals[1].end))
    for arrival in arrivals[:2]:
        series = [r.values["NH3N"].value for r in readings if r.station_id == arrival.station_id]
        times = [r.time for r in readings if r.station_id == arrival.station_id]
        inside = [v for v, t in zip(series, times, strict=True) if arrival.start <= t < arrival.end]
        before = [v for v, t in zip(series, times, strict=True) if t < arrival.start]
        assert max(inside) == pytest.approx(arrival.peak, rel=0.2)
        assert max(before) < statistics.mean(before) * 1.5


def test_reservoir_reaches_are_slower() -> None:
    jialing = [s.station_id for s in REGISTRY.on_river("jialing")]
    spill = Spill(river="jialing", station_id=jialing[0], pollutant="NH3N", start=START,
                  duration=timedelta(hours=1), peak_multiple=5)
    events = Simulator(REGISTRY, start=START, spills=[spill], faults=False).events
    assert events[1].start - events[0].start > timedelta(hours=48)


def test_faults_and_maintenance_show_in_the_data_as_recorded() -> None:
    sim = Simulator(REGISTRY, seed=5, start=START, step=timedelta(minutes=5), stations=["tuo-hongyuan", "min-pengshan"])
    readings = list(sim.readings(until=START + timedelta(days=10)))
    kinds = {e.kind for e in sim.events}
    assert {EventKind.SPIKE, EventKind.STUCK, EventKind.MAINTENANCE, EventKind.FAULT_FLAG} <= kinds
    by_key = {(r.station_id, r.time): r for r in readings}
    for event in sim.events:
        reading = by_key[(event.station_id, event.start)]
        if event.kind is EventKind.MAINTENANCE:
            assert {m.flag for m in reading.values.values()} == {DataFlag.MAINTENANCE}
        elif event.kind is EventKind.FAULT_FLAG and event.parameter:
            assert reading.values[event.parameter].flag in (DataFlag.FAULT, DataFlag.MAINTENANCE)
        elif event.kind is EventKind.STUCK and event.parameter:
            later = by_key.get((event.station_id, event.start + timedelta(minutes=5)))
            if later is not None and later.time < event.end:
                assert later.values[event.parameter].value == reading.values[event.parameter].value


def test_spill_parsing_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown pollutant"):
        Spill.parse("tuo:tuo-hongyuan:XYZ:+1m:1h:5", START)
    with pytest.raises(ValueError, match="duration"):
        Spill.parse("tuo:tuo-hongyuan:NH3N:+1m:1 hour:5", START)
    with pytest.raises(ValueError, match="not on the"):
        Simulator(REGISTRY, start=START, spills=[Spill.parse("min:tuo-hongyuan:NH3N:+1m:1h:5", START)])
