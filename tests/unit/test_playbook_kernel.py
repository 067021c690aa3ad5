"""The compiled plume march (native/plume) against its definition, the numpy march: the same
curves and extents on channels of every shape the networks make (reservoir pools, junctions that
dilute, withdrawals, decay, narrow and wide pulses, probes at the ends of the grid)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playbooks import _plume
from playbooks.hydraulics import Piece
from playbooks.transport import Channel, Grid, simulate, simulate_numpy


@st.composite
def channels(draw: st.DrawFn) -> tuple[Channel, float]:
    km, pieces = 0.0, []
    discharge = draw(st.floats(20, 3000))
    for i in range(draw(st.integers(1, 5))):
        length = draw(st.floats(2, 80))
        velocity = draw(st.one_of(st.floats(0.05, 0.3), st.floats(0.3, 2.5)))  # a pool, or running water
        discharge *= draw(st.sampled_from([1.0, 1.0, 1.3, 2.5, 0.8]))  # inflow dilutes, a withdrawal takes
        pieces.append(Piece(km, km + length, velocity, discharge, draw(st.floats(5, 800)), f"r{i}"))
        km += length
    return Channel(pieces), km


@settings(max_examples=60, deadline=None)
@given(
    setup=channels(),
    where=st.floats(0.0, 1.0),
    sigma=st.floats(300, 7200),
    decay_per_day=st.sampled_from([0.0, 0.0, 0.1, 2.0]),
    probe_places=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
    snapshot=st.integers(0, 400),
)
def test_the_compiled_march_follows_the_numpy_one(
    setup: tuple[Channel, float], where: float, sigma: float, decay_per_day: float,
    probe_places: list[float], snapshot: int,
) -> None:
    channel, length = setup
    dt = min(max(sigma / 4.0, 30.0), 600.0)
    grid = Grid(channel, 0.0, channel.end_tau, dt, decay_per_day / 86_400)
    load = grid.gaussian(float(channel.tau(where * length)), sigma, 1.0)
    probes = [float(channel.tau(p * length)) for p in probe_places]
    steps = min(3000, int(channel.end_tau / dt) + 50)

    compiled = simulate(grid, load, steps, probes, [snapshot])
    defined = simulate_numpy(grid, load, steps, probes, [snapshot])

    assert compiled.curves.shape == defined.curves.shape
    scale = max(float(np.abs(defined.curves).max()), 1e-300)
    assert np.allclose(compiled.curves, defined.curves, rtol=1e-9, atol=1e-12 * scale)
    assert compiled.extents.keys() == defined.extents.keys()
    for step, extent in defined.extents.items():
        other = compiled.extents[step]
        assert (extent is None) == (other is None)
        if extent is not None and other is not None:
            assert np.allclose(extent, other, rtol=1e-9, atol=1e-6)


def test_arrays_that_do_not_fit_together_are_refused_with_a_reason() -> None:
    floats = np.ones(10).tobytes()  # a carry as long as the grid, not one shorter
    with pytest.raises(ValueError, match="do not fit together"):
        _plume.march(floats, floats, floats, floats, floats, floats, 60.0, floats, [0], [0.5], 10, [], 0,
                     (24, 1e-9, 16, 3, 8, 0.1))
