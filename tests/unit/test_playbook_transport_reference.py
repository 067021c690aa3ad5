"""The playbook's plume against an independent solution of the same equation.

The reference below is written from the textbook (Chapra 1997, ch. 11–13; Fischer et al. 1979)
and shares no code with ``playbooks.hydraulics``/``playbooks.transport``: a fixed Eulerian grid in
x (50 m cells), mass-conservative finite volumes with *central* advection and dispersion, both
Crank–Nicolson, lateral inflow/withdrawal as source terms, decay implicit. It reads the network
file and applies the documented rules itself: a reach's discharge is its flow where it begins, a
junction adds its discharge from its km on, the next reach's discharge takes over at its start;
hydraulic geometry W ∝ Q^0.26, H ∝ Q^0.40, U ∝ Q^0.34 (reservoirs: U ∝ Q); Fischer's D; at the
alert a Gaussian in travel time centred on the station, 10 %-edges ``pulse_h`` apart.

The networks are our own (not shipped): junctions inside and at the ends of reaches, a reservoir,
a withdrawal. Criteria (issue 17), at every receptor ≥ 5 km below the station: time to peak within
5 %, leading and trailing edge within 10 % (times from the alert), peak concentration within 5 %.
Cost: about 0.5 s per scenario (the reference's fine grid), 8 scenarios.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from scipy.linalg import solve_banded

from playbooks import build_playbook
from playbooks.network import RiverNetwork

AT = datetime(2024, 7, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))


def _reach(
    rid: str, a: float, b: float, u: float, q: float, w: float, h: float, s: float, **extra: Any
) -> dict[str, Any]:
    return {"id": rid, "from_km": a, "to_km": b, "velocity_ms": u, "discharge_m3s": q, "width_m": w,
            "depth_m": h, "slope": s, **extra}


def _network(river: str, reaches: list[dict[str, Any]], junctions: list[tuple[float, float]],
             stations: list[float], intakes: list[float]) -> RiverNetwork:
    for upper, lower in itertools.pairwise(reaches):
        upper["downstream"] = lower["id"]
    end = reaches[-1]["to_km"]
    return RiverNetwork.model_validate({
        "river": river, "name_zh": "测试河",
        "course": [{"river_km": 0, "lon": 104.0, "lat": 30.0}, {"river_km": end, "lon": 104.5, "lat": 29.0}],
        "reaches": reaches,
        "junctions": [{"name": f"支流{i}", "river_km": km, "discharge_m3s": q} for i, (km, q) in enumerate(junctions)],
        "stations": [{"station_id": f"{river}-s{i}", "name": f"站{i}", "city": "甲", "river_km": km}
                     for i, km in enumerate(stations)],
        "intakes": [{"name": f"取水口{i}", "city": "甲", "river_km": km} for i, km in enumerate(intakes)],
        "departments": [{"city": "甲", "name": "甲市生态环境局", "role": "environment", "apprise_tags": ["a"]}],
    })


#: A free-flowing head, a junction inside a reach, a reservoir, a tributary at a reach boundary.
RIVER_A = _network(
    "testa",
    [
        _reach("a1", 0, 30, 1.2, 200, 120, 2.5, 5e-4),
        _reach("a2", 30, 55, 0.9, 230, 180, 3.0, 3e-4),
        _reach("a3", 55, 90, 0.25, 330, 500, 12.0, 2e-5, reservoir=True),
        _reach("a4", 90, 150, 1.0, 480, 250, 3.5, 2e-4),
    ],
    junctions=[(42, 60), (90, 150), (120, 40)],
    stations=[8, 60, 100],
    intakes=[16, 26, 35, 48, 70, 84, 96, 106, 112, 135, 145],
)
#: A slow cascade, an irrigation withdrawal at a reach start, a measured dispersion coefficient.
RIVER_B = _network(
    "testb",
    [
        _reach("b1", 0, 25, 0.8, 300, 200, 3.0, 3e-4),
        _reach("b2", 25, 60, 0.3, 250, 400, 10.0, 3e-5, reservoir=True),
        _reach("b3", 60, 110, 0.7, 240, 220, 4.0, 1.5e-4, dispersion_m2s=150.0),
    ],
    junctions=[(40, 25)],
    stations=[5, 50],
    intakes=[11, 18, 30, 45, 58, 66, 80, 100],
)


# ---------------------------------------------------------------- the reference (textbook) ----


@dataclass
class Stretch:
    a_m: float
    b_m: float
    u: float
    q: float
    d: float


def _hydraulics(reach: Any, ratio: float) -> tuple[float, float]:
    """(U, D) of a reach at ``ratio`` × its discharge: Leopold–Maddock, Fischer (1975)."""
    if reach.reservoir:
        u, w, h = reach.velocity_ms * ratio, reach.width_m, reach.depth_m
    else:
        u, w, h = reach.velocity_ms * ratio**0.34, reach.width_m * ratio**0.26, reach.depth_m * ratio**0.40
    if reach.dispersion_m2s is not None:
        return u, reach.dispersion_m2s * (u / reach.velocity_ms) ** 2
    radius = w * h / (w + 2 * h)
    return u, 0.011 * u**2 * w**2 / (h * math.sqrt(9.81 * radius * reach.slope))


def _stretches(network: RiverNetwork, flow_ratio: float) -> list[Stretch]:
    out = []
    for reach in network.chain:
        inside = sorted((j.river_km, j.discharge_m3s or 0.0) for j in network.junctions
                        if reach.from_km < j.river_km < reach.to_km)
        bounds = [reach.from_km, *(km for km, _ in inside), reach.to_km]
        q = reach.discharge_m3s
        for i in range(len(bounds) - 1):
            if i:
                q += inside[i - 1][1]
            u, d = _hydraulics(reach, flow_ratio * q / reach.discharge_m3s)
            out.append(Stretch(bounds[i] * 1000, bounds[i + 1] * 1000, u, flow_ratio * q, d))
    last = out[-1]
    out.append(Stretch(last.b_m, last.b_m + 20_000, last.u, last.q, last.d))
    return out


def reference(network: RiverNetwork, station_km: float, probes_km: list[float], *, pulse_h: float,
              flow_ratio: float, decay_per_day: float, hours: float, dx: float = 50.0, dt: float = 30.0
              ) -> list[tuple[float, float, float, float]]:
    """(leading h, peak h, trailing h, peak C) at each probe for a unit peak at the station."""
    parts = _stretches(network, flow_ratio)
    x = np.arange(parts[0].a_m + dx / 2, parts[-1].b_m, dx)
    which = np.searchsorted([p.b_m for p in parts], x, side="right").clip(0, len(parts) - 1)
    u = np.array([parts[i].u for i in which])
    q = np.array([parts[i].q for i in which])
    d = np.array([parts[i].d for i in which])
    area = q / u
    assert float(np.max(u * dx / d)) < 2.0, "cell Péclet number too high for central differences"
    # travel time from the top, for the initial condition
    tau = np.cumsum(dx / u) - dx / (2 * u)
    tau_station = np.interp(station_km * 1000, x, tau)
    sigma = pulse_h * 3600 / (2 * math.sqrt(2 * math.log(10)))
    c = np.exp(-0.5 * ((tau - tau_station) / sigma) ** 2)
    n = len(x)
    q_face = np.minimum(q[:-1], q[1:])  # water passing a face; the rest enters/leaves in the cell
    lateral = np.zeros(n)
    lateral[1:] += q[1:] - q_face  # inflow into the lower cell ...
    lateral[:-1] -= q[:-1] - q_face  # ... or withdrawal from the upper one
    k_face = 2 / (1 / (area[:-1] * d[:-1]) + 1 / (area[1:] * d[1:])) / dx
    volume = area * dx
    k = decay_per_day / 86400
    # dC/dt·V = Σ faces(advection + dispersion) − withdrawal·C − k·V·C  (inflow carries C = 0)
    lower = np.zeros(n)
    main = np.zeros(n)
    upper = np.zeros(n)
    main[:-1] += -q_face / 2 - k_face
    upper[1:] += -q_face / 2 + k_face
    main[1:] += q_face / 2 - k_face
    lower[:-1] += q_face / 2 + k_face
    main += np.minimum(lateral, 0.0) - k * volume
    main[-1] -= q[-1]  # outflow at the last cell (upwind)
    # banded storage: row 0 holds a[j-1, j], row 2 holds a[j+1, j]; each equation divides by its own cell
    op = np.vstack([upper, main, lower])
    op[0, 1:] /= volume[:-1]
    op[1] /= volume
    op[2, :-1] /= volume[1:]

    def apply(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = op[1] * v
        out[:-1] += op[0][1:] * v[1:]
        out[1:] += op[2][:-1] * v[:-1]
        return out

    lhs = -dt / 2 * op
    lhs[1] += 1.0
    probe_x = np.array(probes_km) * 1000
    steps = int(hours * 3600 / dt)
    series = np.empty((steps + 1, len(probes_km)))
    series[0] = np.interp(probe_x, x, c)
    for s in range(1, steps + 1):
        c = solve_banded((1, 1), lhs, c + dt / 2 * apply(c), check_finite=False)
        series[s] = np.interp(probe_x, x, c)
    out = []
    for j in range(len(probes_km)):
        curve = series[:, j]
        top = int(np.argmax(curve))
        peak = float(curve[top])
        above = np.flatnonzero(curve >= 0.1 * peak)
        first, final = int(above[0]), int(above[-1])
        assert final < steps, "reference run too short"
        lead = 0.0 if first == 0 else (first - 1 + (0.1 * peak - curve[first - 1]) / (curve[first] - curve[first - 1]))
        trail = final + (curve[final] - 0.1 * peak) / (curve[final] - curve[final + 1])
        out.append((lead * dt / 3600, top * dt / 3600, trail * dt / 3600, peak))
    return out


# ----------------------------------------------------------------------------- the checks ----

SCENARIOS = [
    pytest.param(RIVER_A, 0, {}, id="A-head-NH3N"),
    pytest.param(RIVER_A, 0, {"pulse_h": 0.75, "pollutant": "Cd"}, id="A-head-short-pulse"),
    pytest.param(RIVER_A, 0, {"discharge_m3s": 420.0}, id="A-head-live-discharge"),
    pytest.param(RIVER_A, 1, {"pulse_h": 4.0}, id="A-in-the-reservoir"),
    pytest.param(RIVER_A, 2, {"discharge_m3s": 300.0, "pollutant": "phenol"}, id="A-below-the-tributary"),
    pytest.param(RIVER_B, 0, {"pulse_h": 1.5}, id="B-withdrawal-and-pool"),
    pytest.param(RIVER_B, 0, {"discharge_m3s": 600.0}, id="B-flood"),
    pytest.param(RIVER_B, 1, {"pulse_h": 3.0, "pollutant": "COD"}, id="B-measured-dispersion"),
]
DECAY = {"NH3N": 0.2, "Cd": 0.0, "phenol": 0.5, "COD": 0.1}


@pytest.mark.slow
@pytest.mark.parametrize(("network", "station", "options"), SCENARIOS)
def test_receptor_times_and_peaks_match_the_reference(network: RiverNetwork, station: int,
                                                       options: dict[str, Any]) -> None:
    site = network.stations[station]
    pollutant = options.get("pollutant", "NH3N")
    pulse_h = options.get("pulse_h", 2.0)
    discharge = options.get("discharge_m3s")
    playbook = build_playbook(network, station_id=site.station_id, pollutant=pollutant, at=AT, concentration=1.0,
                              pulse_h=pulse_h, discharge_m3s=discharge, horizon_h=36.0)
    checked = [r for r in playbook.receptors if r.distance_km >= 5.0 and r.kind in ("intake", "station")]
    assert len(checked) >= 3
    q_station = next(p for p in _stretches(network, 1.0) if p.a_m <= site.river_km * 1000 < p.b_m).q
    ratio = discharge / q_station if discharge else 1.0
    hours = 4 * 36.0
    truth = reference(network, site.river_km, [r.river_km for r in checked], pulse_h=pulse_h, flow_ratio=ratio,
                      decay_per_day=DECAY[pollutant], hours=hours)
    problems = []
    for r, (lead, peak, trail, conc) in zip(checked, truth, strict=True):
        def h(at: datetime) -> float:
            return (at - AT).total_seconds() / 3600
        got = (h(r.leading_edge_at), h(r.peak_at), h(r.trailing_edge_at), r.peak_concentration or 0.0)
        # playbook times are whole minutes (leading down, trailing up): allow that rounding
        for label, mine, want, tol in (("peak", got[1], peak, 0.05), ("leading", got[0], lead, 0.10),
                                       ("trailing", got[2], trail, 0.10)):
            if abs(mine - want) > tol * want + 1 / 60:
                problems.append(f"{r.name} km {r.distance_km:g}: {label} {mine:.3f} h vs {want:.3f} h")
        if abs(got[3] - conc) > 0.05 * conc:
            problems.append(f"{r.name} km {r.distance_km:g}: peak C {got[3]:.4g} vs {conc:.4g}")
    assert not problems, "\n".join(problems)
