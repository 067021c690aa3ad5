"""Source tracing: the inversion finds releases the forward model made, the outfall registry is
checked, the playbook ranks where to inspect, and ``riverguard trace`` speaks issue 18's JSON.
Cost: about 5 s (a dozen forward runs and inversions on a 120 km test river)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from playbooks import StationObservation, build_playbook
from playbooks.geomap import render_map
from playbooks.hydraulics import channel
from playbooks.network import RiverNetwork
from playbooks.tracing import CleanStation, trace
from playbooks.transport import Channel, Grid, release_curves, simulate

T0 = datetime(2024, 7, 1, tzinfo=UTC)
LIMIT = 0.005  # Cd, class III


def _network(**changes: Any) -> RiverNetwork:
    data: dict[str, Any] = {
        "river": "testt", "name_zh": "测试河",
        "course": [{"river_km": 0, "lon": 104.0, "lat": 30.0}, {"river_km": 120, "lon": 104.4, "lat": 29.2}],
        "reaches": [
            {"id": "t1", "from_km": 0, "to_km": 40, "velocity_ms": 1.0, "discharge_m3s": 200, "width_m": 150,
             "depth_m": 3, "slope": 3e-4, "downstream": "t2"},
            {"id": "t2", "from_km": 40, "to_km": 70, "velocity_ms": 0.3, "discharge_m3s": 220, "width_m": 400,
             "depth_m": 10, "slope": 3e-5, "reservoir": True, "downstream": "t3"},
            {"id": "t3", "from_km": 70, "to_km": 120, "velocity_ms": 0.8, "discharge_m3s": 250, "width_m": 200,
             "depth_m": 4, "slope": 2e-4},
        ],
        "junctions": [{"name": "支流", "river_km": 20, "discharge_m3s": 20}],
        "stations": [{"station_id": f"testt-s{i}", "name": f"站{i}", "city": "甲", "river_km": km}
                     for i, km in enumerate((5, 50, 80, 110))],
        "outfalls": [
            {"id": "of-1", "name": "上游排口", "river_km": 10, "city": "甲", "enterprise": "甲厂",
             "pollutants": ["Cd"]},
            {"id": "of-2", "name": "支流排口", "tributary": "支流", "city": "甲", "enterprise": "乙厂",
             "pollutants": ["Cd", "Pb"]},
            {"id": "of-3", "name": "库区排口", "river_km": 45, "city": "甲", "enterprise": "丙厂",
             "pollutants": ["NH3N"]},
            {"id": "of-4", "name": "中游排口", "river_km": 60, "city": "甲", "enterprise": "丁厂",
             "pollutants": ["Cd"]},
        ],
        "departments": [{"city": "甲", "name": "甲市生态环境局", "role": "environment", "apprise_tags": ["a"]}],
    }
    data.update(changes)
    return RiverNetwork.model_validate(data)


def _observed(network: RiverNetwork, km: float, start_h: float, duration_h: float, peak_at_first: float,
              now_h: float) -> tuple[list[StationObservation], list[CleanStation]]:
    """What the stations saw of a Cd release (the file's own river), read every 10 minutes."""
    dt, curves = release_curves(channel(network), km, [s.river_km for s in network.stations],
                                start_s=start_h * 3600, duration_s=duration_h * 3600, run_s=now_h * 3600)
    first = next(s for s in network.stations if s.river_km > km)
    scale = peak_at_first / float(curves[first.river_km].max())
    every = round(600 / dt)
    seen, clean = [], []
    for site in network.stations:
        c = curves[site.river_km][::every] * scale
        above = np.flatnonzero(c >= LIMIT)
        if len(above) == 0:
            clean.append(CleanStation(station_id=site.station_id, until=T0 + timedelta(hours=now_h)))
            continue
        peak = int(np.argmax(c))
        after = [i for i in range(peak, len(c)) if c[i] < LIMIT]
        at = [T0 + timedelta(minutes=10 * i) for i in (int(above[0]), peak)]
        seen.append(StationObservation(station_id=site.station_id, first_exceeded_at=at[0], peak_at=at[1],
                                       peak_concentration=float(c[peak]),
                                       normal_again_at=T0 + timedelta(minutes=10 * after[0]) if after else None))
    return seen, clean


def test_the_backward_run_is_the_forward_model_transposed() -> None:
    ch = Channel(channel(_network()))
    grid = Grid(ch, 0.0, ch.end_tau, 600.0, 0.1 / 86400)
    probe = float(ch.tau(80.0))
    i = int(grid.index_of(probe))
    weight = np.zeros((len(grid), 1))
    weight[i, 0] = 1.0 / grid.volume[i]
    lo, hi = grid.window(i, i)
    backward = [weight[:, 0].copy()]
    for n in range(1, 400):
        lo, hi = grid.adjoint_step(weight, lo, hi, trim=n % 8 == 0)
        backward.append(weight[:, 0].copy())
    for km in (10.0, 45.0, 70.0):
        j = int(grid.index_of(float(ch.tau(km))))
        mass = np.zeros(len(grid))
        mass[j] = 1.0
        forward = simulate(grid, mass, 399, [float(grid.centres[i])], extent_steps=[399]).curves[:, 0]
        assert np.allclose([b[j] for b in backward], forward, rtol=0.0, atol=1e-3 * forward.max())


def test_two_stations_find_the_outfall_that_released() -> None:
    network = _network()
    seen, clean = _observed(network, 60.0, start_h=3.0, duration_h=1.0, peak_at_first=0.05, now_h=60)
    assert [o.station_id for o in seen][:2] == ["testt-s2", "testt-s3"]
    result = trace(network, "Cd", seen[:2], clean)
    assert result.candidates[0].name == "中游排口"
    assert result.candidates[0].probability > 0.5
    assert result.release.km_low <= 60.0 <= result.release.km_high
    assert abs(result.release.km_best - 60.0) <= 2.0
    assert result.release.start_low <= T0 + timedelta(hours=3) <= result.release.start_high
    # a clean station above the release bounds it: nothing above km 50 is a candidate
    assert all(c.river_km >= 50.0 for c in result.candidates if c.kind != "unregistered")


def test_a_release_where_nothing_is_registered_is_called_unregistered() -> None:
    # below the last outfall (km 60) and the clean station at km 80: only an unregistered discharge fits
    network = _network()
    seen, clean = _observed(network, 95.0, start_h=2.0, duration_h=0.5, peak_at_first=0.05, now_h=30)
    assert [o.station_id for o in seen] == ["testt-s3"]
    result = trace(network, "Cd", seen, clean)
    assert result.unregistered is not None
    low, high = result.unregistered
    assert 80.0 <= low <= 95.0 <= high
    assert result.candidates[0].kind == "unregistered"
    assert result.candidates[0].name.startswith("未登记排放（km")


def test_outfalls_are_checked() -> None:
    with pytest.raises(ValueError, match="'of-2' is on tributary '无名河', which is not a junction"):
        _network(outfalls=[{"id": "of-2", "name": "x", "tributary": "无名河", "pollutants": ["Cd"]}])
    with pytest.raises(ValueError, match=r"give either river_km .* or tributary"):
        _network(outfalls=[{"id": "of-1", "name": "x", "pollutants": ["Cd"]}])
    with pytest.raises(ValueError, match="'of-b' \\(km 5\\) is listed after 'of-a' \\(km 30\\)"):
        _network(outfalls=[{"id": "of-a", "name": "a", "river_km": 30, "pollutants": ["Cd"]},
                           {"id": "of-b", "name": "b", "river_km": 5, "pollutants": ["Cd"]}])
    with pytest.raises(ValueError, match="unknown pollutants"):
        _network(outfalls=[{"id": "of-a", "name": "a", "river_km": 30, "pollutants": ["NH4"]}])
    assert _network().outfall_km(_network().outfalls[1]) == 20.0


def test_the_playbook_ranks_where_to_inspect_and_shades_the_reach() -> None:
    network = _network()
    seen, clean = _observed(network, 60.0, start_h=3.0, duration_h=1.0, peak_at_first=0.05, now_h=60)
    first = seen[0]
    playbook = build_playbook(network, station_id=first.station_id, pollutant="Cd",
                              at=first.first_exceeded_at or T0, observations=seen[:2], clean=clean)
    assert playbook.release is not None
    assert playbook.suspected_sources[0].name == "中游排口"
    assert playbook.suspected_sources[0].probability is not None
    inspect = [a for a in playbook.actions if a.what_zh.startswith("排查")]
    assert inspect[0].what_zh.startswith("排查中游排口（丁厂）（可能性")
    features = render_map(playbook, network).geojson["features"]
    reach = next(f for f in features if f["properties"]["kind"] == "release_reach")
    assert reach["properties"]["from_km"] == playbook.release.km_low


def test_riverguard_trace_prints_issue_18_json(tmp_path: Path) -> None:
    network = _network()
    seen, clean = _observed(network, 60.0, start_h=3.0, duration_h=1.0, peak_at_first=0.05, now_h=60)
    path = tmp_path / "net.yaml"
    path.write_text(json.dumps(network.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    request = {"pollutant": "Cd", "observations": [o.model_dump(mode="json") for o in seen[:2]],
               "clean": [c.model_dump(mode="json") for c in clean]}
    obs = tmp_path / "obs.json"
    obs.write_text(json.dumps(request), encoding="utf-8")
    result = CliRunner().invoke(app, ["trace", "--river", "testt", "--observations", str(obs), "--network", str(path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data["release"]) == {"km_low", "km_high", "km_best", "start_low", "start_high", "mass_kg"}
    assert all(set(c) == {"name", "kind", "river_km", "probability"} for c in data["candidates"])
    probabilities = [c["probability"] for c in data["candidates"]]
    assert probabilities == sorted(probabilities, reverse=True)
    markdown = CliRunner().invoke(app, ["trace", "-r", "testt", "--observations", str(obs), "--network", str(path),
                                        "--format", "md"])
    assert "优先排查" in markdown.output
    obs.write_text('{"pollutant": "Cd", "observations": []}', encoding="utf-8")
    bad = CliRunner().invoke(app, ["trace", "--river", "testt", "--observations", str(obs), "--network", str(path)])
    assert bad.exit_code == 2
    assert "observations" in bad.output
