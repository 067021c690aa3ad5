"""Time per playbook: rebuilding every playbook of an incident on each new detection.

An incident on each shipped river: a spill seen first at one station, then at the next two (the
"truth" is the plume model with velocities 20 % above the file's, so the live correction has work
to do). On each new detection the alert side rebuilds the playbook of every station that has seen
the plume, live-corrected by all of them. Baseline in the same run: the same playbooks without
observations (the plain forecast: three runs of the plume model, nominal/fast/slow).

Run: ``.venv/bin/python bench/playbook.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from playbooks import StationObservation, build_playbook, load_network
from playbooks.hydraulics import channel
from playbooks.network import RiverNetwork
from playbooks.transport import forecast, pulse_sigma

AT = datetime(2024, 7, 1, 8, 0, tzinfo=UTC)
THRESHOLD = 0.2  # NH3N: a station-specific alarm level above background
PEAK = 10.0
INCIDENTS = {"min": "min-pengshan", "tuo": "tuo-hongyuan", "jialing": "jialing-bamiaogou"}


def sightings(network: RiverNetwork, first: str) -> list[StationObservation]:
    """What the first station and the next two saw, from the model at 1.2 × the file's velocities."""
    index = [s.station_id for s in network.stations].index(first)
    sites = network.stations[index : index + 3]
    pieces = channel(network, factors={r.id: (1.2, 1.0) for r in network.chain})
    sigma = pulse_sigma(2 * 3600.0)
    run = forecast(pieces, sites[0].river_km, [s.river_km for s in sites[1:]], sigma_s=sigma,
                   max_run_s=10 * 24 * 3600.0, decay_per_s=0.2 / 86400)
    seen = [StationObservation(station_id=sites[0].station_id, peak_at=AT, peak_concentration=PEAK)]
    for site in sites[1:]:
        rise, fall = run.crossings(site.river_km, THRESHOLD / PEAK)
        got = run.arrivals[site.river_km]
        if rise is None or got.peak_s is None:
            break
        seen.append(StationObservation(
            station_id=site.station_id, first_exceeded_at=AT + timedelta(seconds=rise),
            peak_at=AT + timedelta(seconds=got.peak_s), peak_concentration=PEAK * got.peak_concentration,
            normal_again_at=None if fall is None else AT + timedelta(seconds=fall), threshold=THRESHOLD,
        ))
    return seen


def rebuild(network: RiverNetwork, seen: list[StationObservation], corrected: bool) -> list[float]:
    """Seconds per playbook, rebuilding all of the incident's playbooks after each new sighting."""
    times = []
    for count in range(1, len(seen) + 1):
        known = seen[:count]
        for observation in known:
            started = time.perf_counter()
            build_playbook(network, station_id=observation.station_id, pollutant="NH3N",
                           at=observation.first_exceeded_at or observation.peak_at or AT,
                           concentration=observation.peak_concentration,
                           observations=known if corrected else ())
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    build_playbook(load_network("tuo"), station_id="tuo-hongyuan", pollutant="NH3N", at=AT)  # imports, caches
    print(f"{'river':8} {'sightings':>9} {'playbooks':>9} {'plain ms (p50/p95)':>20} {'corrected ms (p50/p95)':>24} "
          f"{'ratio':>6}")
    for river, first in INCIDENTS.items():
        network = load_network(river)
        seen = sightings(network, first)
        plain: list[float] = []
        corrected: list[float] = []
        for _ in range(args.repeat):
            plain += rebuild(network, seen, corrected=False)
            corrected += rebuild(network, seen, corrected=True)
        p50 = (statistics.median(plain), statistics.median(corrected))
        p95 = (statistics.quantiles(plain, n=20)[-1], statistics.quantiles(corrected, n=20)[-1])
        print(f"{river:8} {len(seen):>9} {len(plain) // args.repeat:>9} "
              f"{p50[0] * 1000:>9.0f} / {p95[0] * 1000:<8.0f} {p50[1] * 1000:>11.0f} / {p95[1] * 1000:<10.0f} "
              f"{p50[1] / p50[0]:>6.2f}")


if __name__ == "__main__":
    main()
