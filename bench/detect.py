"""Readings/s through the detector stack vs river's raw HalfSpaceTrees, and memory per station.

Run: ``.venv/bin/python bench/detect.py [--readings 20000] [--stations 20]``. Both rates are
measured in the same run on the same machine, so the ratio is what to compare across machines.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from river.anomaly import HalfSpaceTrees

from detectors import DetectorConfig, DetectorStack, StationDetector
from detectors.state import encode
from riverguard.models import Measurement, Reading, SourceFormat
from riverguard.stations import load_registry

PARAMETERS = {
    "pH": 7.8, "DO": 8.2, "temperature": 18.0, "conductivity": 420.0, "turbidity": 30.0,
    "CODMn": 2.5, "NH3N": 0.3, "TP": 0.09, "TN": 1.5, "discharge": 800.0,
}


def make_readings(stations: list[str], per_station: int, seed: int = 1) -> list[Reading]:
    rng = random.Random(seed)
    registry = load_registry()
    start = datetime(2024, 6, 1, tzinfo=UTC)
    out = []
    for i in range(per_station):
        time_i = start + timedelta(minutes=i)
        daily = math.cos(2 * math.pi * i / 1440)
        for station_id in stations:
            values = {
                name: Measurement(value=round(typical * (1 + 0.02 * daily + 0.01 * rng.gauss(0, 1)), 5))
                for name, typical in PARAMETERS.items()
            }
            out.append(Reading(station_id=station_id, river=registry.by_id[station_id].river, time=time_i,
                               values=values, source_format=SourceFormat.SIMULATOR))
    return out


def hst_rate(readings: list[Reading], config: DetectorConfig) -> float:
    hst = HalfSpaceTrees(n_trees=config.hst_trees, height=config.hst_height, window_size=config.hst_window, seed=1)
    features = [{k: 0.5 + 0.001 * (m.value % 100) for k, m in r.values.items()} for r in readings]
    started = time.perf_counter()
    for x in features:
        hst.score_one(x)  # type: ignore[no-untyped-call]
        hst.learn_one(x)  # type: ignore[no-untyped-call]
    return len(features) / (time.perf_counter() - started)


def stack_rate(warmup: list[Reading], readings: list[Reading]) -> tuple[float, float, int]:
    """Steady state: every station is warmed up (trees built) before the clock starts. Readings per
    second of wall time and per second of this process's CPU (the machine is shared: the second
    says what the code costs when others take cores)."""
    stack = DetectorStack(registry=load_registry())
    for r in warmup:
        stack.process(r)
    detections = 0
    started, cpu = time.perf_counter(), time.process_time()
    for r in readings:
        detections += len(stack.process(r))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return len(readings) / wall, len(readings) / cpu, detections


def memory_per_station(readings: list[Reading]) -> tuple[int, int]:
    """Checkpoint size and traced heap of one warmed-up station detector."""
    station = load_registry().by_id[readings[0].station_id]
    own = [r for r in readings if r.station_id == station.station_id]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    detector = StationDetector(station)
    for r in own:
        detector.process(r)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    traced = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return len(encode(detector.snapshot(station.station_id))), traced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readings", type=int, default=20_000, help="readings through the stack")
    parser.add_argument("--stations", type=int, default=20)
    args = parser.parse_args()
    stations = [s.station_id for s in load_registry().stations[: args.stations]]
    warm = 300 * len(stations)
    everything = make_readings(stations, 300 + max(1, args.readings // len(stations)))
    warmup, readings = everything[:warm], everything[warm:]
    config = DetectorConfig()
    raw = hst_rate(readings, config)
    ours, ours_cpu, detections = stack_rate(warmup, readings)
    checkpoint, traced = memory_per_station(everything)
    print(f"timed readings: {len(readings)} ({len(stations)} stations x {len(readings) // len(stations)} after "
          f"300 warm-up readings each, "
          f"{len(PARAMETERS)} parameters each), detections emitted: {detections}")
    print(f"river HalfSpaceTrees learn_one+score_one ({config.hst_trees} trees, height {config.hst_height}): "
          f"{raw:,.0f} readings/s")
    print(f"riverguard detector stack (health + faults + limits + baselines + HST + events): {ours:,.0f} readings/s "
          f"({ours_cpu:,.0f} per CPU-second)")
    print(f"ratio stack / raw HST: {ours / raw:.2f}  (goal: >= 10,000 readings/s per process)")
    print(f"memory per station: checkpoint {checkpoint / 1024:.1f} KiB (JSON), {traced / 1024:.1f} KiB traced heap")


if __name__ == "__main__":
    main()
