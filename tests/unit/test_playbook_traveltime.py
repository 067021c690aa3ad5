"""Time-of-travel numbers against the analytic advection–dispersion solution."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from playbooks.network import Reach
from playbooks.traveltime import (
    EDGE_FRACTION,
    Hydraulics,
    Segment,
    ade_concentration,
    arrival,
    fischer_dispersion,
    mass_from_peak,
    passage,
    pulse_variance,
    reach_hydraulics,
    shear_velocity,
)

RIVER = Hydraulics(velocity_ms=0.8, discharge_m3s=300.0, width_m=150.0, depth_m=2.5, slope=0.0003)


def _integrate(f: Callable[[float], float], a: float, b: float, n: int = 4000) -> float:
    h = (b - a) / n
    return h * (0.5 * f(a) + sum(f(a + i * h) for i in range(1, n)) + 0.5 * f(b))


def test_ade_conserves_mass_in_space() -> None:
    mass, area, d, u, t = 5_000.0, RIVER.area_m2, 60.0, 0.8, 6 * 3600.0
    total = _integrate(lambda x: area * ade_concentration(mass, area, d, u, x, t), u * t - 30_000, u * t + 30_000)
    assert total == pytest.approx(mass, rel=1e-6)


def test_ade_decay_removes_exp_minus_kt() -> None:
    mass, area, d, u, t, k = 5_000.0, 400.0, 60.0, 0.8, 6 * 3600.0, 0.2 / 86_400
    total = _integrate(lambda x: area * ade_concentration(mass, area, d, u, x, t, k), u * t - 30_000, u * t + 30_000)
    assert total == pytest.approx(mass * math.exp(-k * t), rel=1e-6)


def test_ade_flux_past_a_point_carries_the_mass() -> None:
    # ∫ u·A·C(x, t) dt = M exactly for x > 0 (see the traveltime module docstring).
    mass, area, d, u, x = 5_000.0, 400.0, 60.0, 0.8, 20_000.0
    total = _integrate(lambda t: u * area * ade_concentration(mass, area, d, u, x, t), 1.0, 30 * 3600.0, 20_000)
    assert total == pytest.approx(mass, rel=1e-4)


@pytest.mark.parametrize("hours", [1.0, 6.0, 24.0])
def test_ade_peak_position_is_u_t(hours: float) -> None:
    u, t = 0.8, hours * 3600.0
    xs = [u * t + dx for dx in range(-2000, 2001, 5)]
    peak_x = max(xs, key=lambda x: ade_concentration(1.0, 100.0, 30.0, u, x, t))
    assert peak_x == pytest.approx(u * t, abs=5.0)


def test_fischer_dispersion_known_case() -> None:
    # u* = √(9.81 · R · S) with R = 150·2.5/155 m; D = 0.011 · 0.64 · 22500 / (2.5 · u*)
    ustar = math.sqrt(9.81 * (150 * 2.5 / 155) * 0.0003)
    assert shear_velocity(2.5, 150.0, 0.0003) == pytest.approx(ustar)
    assert fischer_dispersion(0.8, 150.0, 2.5, 0.0003) == pytest.approx(0.011 * 0.64 * 22_500 / (2.5 * ustar))
    assert RIVER.dispersion_m2s == pytest.approx(fischer_dispersion(0.8, 150.0, 2.5, 0.0003))


def test_single_reach_matches_the_analytic_peak() -> None:
    # The frozen-cloud form peaks at x/u; the analytic curve at a fixed point peaks D/u² earlier
    # (1 % of the travel time at this Péclet number uL/D ≈ 100), so the tolerances are 2–3 %.
    x = 100_000.0
    p = passage([Segment(x, RIVER)])
    assert p.travel_s == pytest.approx(x / RIVER.velocity_ms)
    mass = 10_000.0
    a = arrival(p, mass_g=mass)
    ts = [p.travel_s + dt for dt in range(-40_000, 40_001, 20)]
    exact = [ade_concentration(mass, RIVER.area_m2, RIVER.dispersion_m2s, RIVER.velocity_ms, x, t) for t in ts]
    exact_peak = max(exact)
    assert a.peak_concentration == pytest.approx(exact_peak, rel=0.02)
    assert a.peak_s == pytest.approx(ts[exact.index(exact_peak)], rel=0.02)
    # The analytic curve rises through 10 % of its peak a little later than the frozen-cloud
    # leading edge (it is still narrower when the front passes): our edge errs early, by < 6 %.
    first = next(t for t, c in zip(ts, exact, strict=True) if c >= EDGE_FRACTION * exact_peak)
    assert first * 0.94 < a.leading_s <= first


def test_gaussian_passage_carries_the_mass_past_the_receptor() -> None:
    p = passage([Segment(30_000.0, RIVER)], initial_variance_s2=pulse_variance(7200.0))
    k = 0.2 / 86_400
    a = arrival(p, mass_g=8_000.0, decay_per_s=k)
    sigma = math.sqrt(p.variance_s2)
    # rebuild C(t) from the arrival and integrate the flux
    assert a.peak_concentration is not None

    def c(t: float) -> float:
        return (
            8_000.0
            / (p.discharge_m3s * sigma * math.sqrt(2 * math.pi))
            * math.exp(-k * t - (t - p.travel_s) ** 2 / (2 * p.variance_s2))
        )

    total = _integrate(lambda t: p.discharge_m3s * c(t), p.travel_s - 10 * sigma, p.travel_s + 10 * sigma)
    assert total == pytest.approx(8_000.0 * math.exp(-k * (p.travel_s - k * p.variance_s2 / 2)), rel=1e-6)
    assert c(a.peak_s) == pytest.approx(a.peak_concentration, rel=1e-9)
    assert c(a.leading_s) == pytest.approx(EDGE_FRACTION * a.peak_concentration, rel=1e-6)
    assert c(a.trailing_s) == pytest.approx(EDGE_FRACTION * a.peak_concentration, rel=1e-6)


def test_observed_peak_round_trips_through_the_mass() -> None:
    variance = pulse_variance(7200.0)
    mass = mass_from_peak(3.2, 150.0, variance)
    p = passage([], initial_variance_s2=variance)
    a = arrival(p.__class__(0.0, 0.0, variance, 150.0), mass_g=mass)
    assert a.peak_concentration == pytest.approx(3.2)


def test_chain_with_a_slow_reservoir_reach() -> None:
    river = Hydraulics(1.2, 500.0, 300.0, 3.0, 0.0003)
    pool = Hydraulics(0.15, 500.0, 600.0, 30.0, 0.00001)
    p = passage([Segment(20_000.0, river), Segment(30_000.0, pool), Segment(20_000.0, river)])
    # times add up reach by reach: the 30 km pool takes 55.6 h of the 65 h
    assert p.travel_s == pytest.approx(20_000 / 1.2 * 2 + 30_000 / 0.15)
    assert p.travel_s / 3600 == pytest.approx(64.81, abs=0.01)
    # temporal variance accumulates 2·D·τ/u² per reach
    expected = sum(
        2 * h.dispersion_m2s * (length / h.velocity_ms) / h.velocity_ms**2
        for length, h in ((20_000.0, river), (30_000.0, pool), (20_000.0, river))
    )
    assert p.variance_s2 == pytest.approx(expected)
    # the slow pool dominates: without it the plume would arrive 15x sooner
    fast_only = passage([Segment(70_000.0, river)])
    assert p.travel_s == pytest.approx(4 * fast_only.travel_s)
    # order of reaches does not change mean travel time or variance
    swapped = passage([Segment(30_000.0, pool), Segment(40_000.0, river)])
    assert swapped.travel_s == pytest.approx(p.travel_s)
    assert swapped.variance_s2 == pytest.approx(p.variance_s2)


def test_elk_river_spill_huntington_to_portsmouth() -> None:
    # 2014 Elk River (MCHM) spill: the plume took about 14 h from Huntington, WV to Portsmouth, OH
    # on the Ohio, about 2.7 mph. Ohio River geometry (width ~400 m, depth ~8 m) is typical, not surveyed.
    speed = 2.7 * 1609.344 / 3600  # 1.207 m/s
    ohio = Hydraulics(speed, 2500.0, 400.0, 8.0, 0.0001)
    length = speed * 14 * 3600  # ≈ 60.8 km (37.8 miles)
    a = arrival(passage([Segment(length / 2, ohio), Segment(length / 2, ohio)]))
    assert a.peak_s / 3600 == pytest.approx(14.0, abs=0.05)
    assert a.leading_s < a.peak_s < a.trailing_s


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
