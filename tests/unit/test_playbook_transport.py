"""The channel (hydraulics, junction dilution) and the numerical plume against what is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from playbooks.hydraulics import (
    Hydraulics,
    Piece,
    channel,
    fischer_dispersion,
    reach_hydraulics,
    shear_velocity,
    spread_s,
    travel_time_s,
)
from playbooks.network import Reach, RiverNetwork, flow_balance
from playbooks.transport import (
    EDGE_FRACTION,
    Channel,
    Grid,
    ade_concentration,
    arrival,
    forecast,
    pulse_sigma,
    simulate,
)

RIVER = Hydraulics(velocity_ms=0.8, discharge_m3s=300.0, width_m=150.0, depth_m=2.5, slope=0.0003)


def _network(tributary_m3s: float, *, lower_m3s: float | None = None) -> RiverNetwork:
    lower = lower_m3s if lower_m3s is not None else 200.0 + tributary_m3s
    return RiverNetwork.model_validate({
        "river": "t", "name_zh": "测试河",
        "course": [{"river_km": 0, "lon": 104.0, "lat": 30.0}, {"river_km": 80, "lon": 104.2, "lat": 29.5}],
        "reaches": [
            {"id": "r1", "from_km": 0, "to_km": 40, "velocity_ms": 1.0, "discharge_m3s": 200, "width_m": 150,
             "depth_m": 2.5, "slope": 3e-4, "downstream": "r2"},
            {"id": "r2", "from_km": 40, "to_km": 80, "velocity_ms": 1.0, "discharge_m3s": lower, "width_m": 150,
             "depth_m": 2.5, "slope": 3e-4, "dispersion_m2s": 300.0},
        ],
        "junctions": [{"name": "支流", "river_km": 25, "discharge_m3s": tributary_m3s}],
        "stations": [{"station_id": "t-s", "name": "站", "river_km": 10}],
    })


def test_fischer_dispersion_known_case() -> None:
    # u* = √(9.81 · R · S) with R = 150·2.5/155 m; D = 0.011 · 0.64 · 22500 / (2.5 · u*)
    ustar = math.sqrt(9.81 * (150 * 2.5 / 155) * 0.0003)
    assert shear_velocity(2.5, 150.0, 0.0003) == pytest.approx(ustar)
    assert fischer_dispersion(0.8, 150.0, 2.5, 0.0003) == pytest.approx(0.011 * 0.64 * 22_500 / (2.5 * ustar))
    assert RIVER.dispersion_m2s == pytest.approx(fischer_dispersion(0.8, 150.0, 2.5, 0.0003))


def test_live_discharge_scales_by_hydraulic_geometry() -> None:
    reach = Reach(id="r", from_km=0, to_km=10, velocity_ms=1.0, discharge_m3s=100, width_m=100, depth_m=2, slope=0.0005)
    doubled = reach_hydraulics(reach, flow_ratio=2.0)
    assert doubled.velocity_ms == pytest.approx(2**0.34)
    assert doubled.velocity_ms * doubled.width_m * doubled.depth_m == pytest.approx(2 * 1.0 * 100 * 2)
    pool = reach.model_copy(update={"reservoir": True})
    assert reach_hydraulics(pool, flow_ratio=2.0).velocity_ms == pytest.approx(2.0)
    assert reach_hydraulics(reach, velocity_factor=1.3).velocity_ms == pytest.approx(1.3)
    with pytest.raises(ValueError, match="flow ratio"):
        reach_hydraulics(reach, flow_ratio=0.0)


def test_a_junction_adds_its_discharge_from_its_km_on() -> None:
    pieces = channel(_network(100.0))
    assert [(p.from_km, p.to_km, p.discharge_m3s) for p in pieces[:3]] == [(0, 25, 200), (25, 40, 300), (40, 80, 300)]
    assert pieces[-1].from_km == 80  # the outlet extension keeps the last reach's hydraulics
    balanced = _network(100.0)
    assert flow_balance(balanced.chain, balanced.junctions)[0].residual_m3s == 0.0
    # a tributary that breaks the mass balance: the file does not load, naming the reach and flows
    with pytest.raises(ValueError, match=r"'r2' carries 150 m³/s, but 300 m³/s arrive from above"):
        _network(100.0, lower_m3s=150.0)


@pytest.mark.parametrize("tributary", [0.0, 700.0, 5000.0])
def test_the_tributary_dilutes_the_plume_below_it(tributary: float) -> None:
    # a conservative pollutant: the load passing below the junction (km 25) is the load above it,
    # in 200 + q m³/s instead of 200: ∫C dt there falls by 200 / (200 + q) — away from the
    # junction, where dispersion has relaxed the jump (D/u ≈ 2 km)
    ch = Channel(channel(_network(tributary)))
    grid = Grid(ch, 0.0, ch.end_tau, 300.0, 0.0)
    probes = [float(ch.tau(15.0)), float(ch.tau(39.0))]
    # an extent at the last step keeps the run going until the tails have passed too
    run = simulate(grid, grid.gaussian(float(ch.tau(5.0)), 1800.0, 1.0), 2000, probes, extent_steps=[2000])
    above, below = run.curves.sum(axis=0)
    assert below / above == pytest.approx(200.0 / (200.0 + tributary), rel=0.01)
    assert run.curves[:, 1].max() < run.curves[:, 0].max() * (1.0 if tributary else 1.001)


def test_numerical_plume_on_a_uniform_reach_is_the_analytic_one() -> None:
    # a Gaussian in space spreads as σx² + 2Dt and travels at u: C(x,t) = M/(A√(2π(σx²+2Dt)))·exp(...)
    u, q, d = 1.0, 400.0, 600.0
    pieces = (Piece(0.0, 300.0, u, q, d, "r"),)
    sigma_t = pulse_sigma(7200.0)
    result = forecast(pieces, 50.0, [60.0, 100.0], sigma_s=sigma_t, max_run_s=60 * 3600.0)
    sx = u * sigma_t
    ts = np.arange(1.0, 60 * 3600.0, 10.0)
    for km in (60.0, 100.0):
        s2 = sx**2 + 2 * d * ts
        exact = sx / np.sqrt(s2) * np.exp(-((km - 50.0) * 1000 - u * ts) ** 2 / (2 * s2))
        got = result.arrivals[km]
        assert got.peak_concentration == pytest.approx(float(exact.max()), rel=0.003)
        assert got.peak_s == pytest.approx(float(ts[exact.argmax()]), rel=0.003)
        assert got.leading_s == pytest.approx(float(ts[np.argmax(exact >= EDGE_FRACTION * exact.max())]), rel=0.01)


def test_the_load_is_conserved_and_decays_as_e_to_minus_kt() -> None:
    pieces = (Piece(0.0, 100.0, 0.8, 300.0, 200.0, "r"), Piece(100.0, 200.0, 0.2, 300.0, 30.0, "pool"))
    grid = Grid(Channel(pieces), 0.0, Channel(pieces).end_tau, 300.0, 0.0)
    mass = grid.gaussian(float(Channel(pieces).tau(30.0)), 1800.0, 2.0)
    total = float(mass.sum())
    decaying = Grid(Channel(pieces), 0.0, Channel(pieces).end_tau, 300.0, 0.5 / 86400)
    moved = mass.copy()
    lo, hi = 0, len(moved)
    for _ in range(200):
        lo, hi = decaying.step(moved, lo, hi, trim=True)
    assert float(moved.sum()) == pytest.approx(total * math.exp(-0.5 / 86400 * 200 * 300), rel=1e-6)


def test_analytic_ade_conserves_mass() -> None:
    mass, area, d, u, t = 5_000.0, 375.0, 60.0, 0.8, 6 * 3600.0
    xs = np.linspace(u * t - 30_000, u * t + 30_000, 20001)
    values = [area * ade_concentration(mass, area, d, u, float(x), t) for x in xs]
    assert float(np.trapezoid(values, xs)) == pytest.approx(mass, rel=1e-6)


def test_edges_and_peak_of_a_sampled_curve() -> None:
    times = np.arange(0, 200) * 60.0
    curve = np.exp(-0.5 * ((times - 6000.0) / 900.0) ** 2)
    a = arrival(curve, 60.0)
    width = 900.0 * math.sqrt(-2 * math.log(EDGE_FRACTION))
    assert a.peak_s == pytest.approx(6000.0, abs=1.0)
    assert a.leading_s == pytest.approx(6000.0 - width, abs=5.0)
    assert a.trailing_s == pytest.approx(6000.0 + width, abs=5.0)
    assert arrival(curve[:50], 60.0).peak_s is None  # still rising at the end: no peak, no trailing edge


def test_chain_with_a_slow_reservoir_reach() -> None:
    pieces = (Piece(0, 20, 1.2, 500, 400, "a"), Piece(20, 50, 0.15, 500, 20, "pool"), Piece(50, 70, 1.2, 500, 400, "b"))
    # times add up reach by reach: the 30 km pool takes 55.6 h of the 65 h
    assert travel_time_s(pieces, 0, 70) / 3600 == pytest.approx(64.81, abs=0.01)
    travel, sigma = spread_s(pieces, 0, 70, 0.0)
    assert travel == pytest.approx(travel_time_s(pieces, 0, 70))
    assert sigma**2 == pytest.approx(2 * 400 * (40_000 / 1.2) / 1.2**2 + 2 * 20 * (30_000 / 0.15) / 0.15**2)
    result = forecast(pieces, 0.0, [70.0], sigma_s=600.0, max_run_s=120 * 3600)
    assert result.arrivals[70.0].peak_s == pytest.approx(travel, rel=0.05)


def test_elk_river_spill_huntington_to_portsmouth() -> None:
    # 2014 Elk River (MCHM) spill: the plume took about 14 h from Huntington, WV to Portsmouth, OH
    # on the Ohio, about 2.7 mph. Ohio River geometry (width ~400 m, depth ~8 m) is typical, not surveyed.
    speed = 2.7 * 1609.344 / 3600  # 1.207 m/s
    ohio = Hydraulics(speed, 2500.0, 400.0, 8.0, 0.0001)
    length = speed * 14 * 3600 / 1000  # ≈ 60.8 km (37.8 miles)
    pieces = (Piece(0.0, 200.0, speed, 2500.0, ohio.dispersion_m2s, "ohio"),)
    result = forecast(pieces, 10.0, [10.0 + length], sigma_s=pulse_sigma(4 * 3600), max_run_s=40 * 3600)
    a = result.arrivals[10.0 + length]
    assert a.peak_s is not None
    assert a.leading_s is not None
    assert a.trailing_s is not None
    # the peak at a fixed point comes a little before x/u when dispersion is this strong (D ≈ 3,700 m²/s)
    assert a.peak_s / 3600 == pytest.approx(14.0, rel=0.1)
    assert a.leading_s < a.peak_s < a.trailing_s
