"""The detectors skip computing exceedance multiples inside a parameter's compliant band; that
shortcut must agree with :func:`exceedance_multiple` exactly, including right at the limits."""

from __future__ import annotations

import math

import pytest

from riverguard.parameters import PARAMETERS, WaterClass, compliant_band, exceedance_multiple


def _around(edge: float) -> list[float]:
    """The edge, its float neighbours, and values 10 % either side (the hysteresis band)."""
    return [edge, math.nextafter(edge, math.inf), math.nextafter(edge, -math.inf), edge * 1.1, edge / 1.1]


@pytest.mark.parametrize("target", list(WaterClass))
def test_compliant_band_is_exactly_where_the_multiple_is_zero(target: WaterClass) -> None:
    for name in PARAMETERS:
        band = compliant_band(name, target)
        assert (band is None) == (exceedance_multiple(name, 1.0, target) is None), name
        if band is None:
            continue
        values = [0.0, -1.0, math.inf, -math.inf] + [v for e in band if math.isfinite(e) for v in _around(e)]
        for value in values:
            multiple = exceedance_multiple(name, value, target)
            assert multiple is not None
            assert (multiple > 0) == (not band[0] <= value <= band[1]), (name, value)
