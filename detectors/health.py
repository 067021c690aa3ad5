"""Instrument health: which values are evidence about the river and which are about the sensor.

Sensor health is checked first; a value that fails here never feeds a baseline or the
pollution logic. It becomes a ``maintenance`` or ``sensor_fault`` detection instead.

>>> def plausible(parameter, value):
...     low, high = PLAUSIBLE_RANGES.get(parameter, ANY_VALUE)
...     return low <= value <= high
>>> plausible("pH", 7.8), plausible("pH", 0.2), plausible("COD", -1.0), plausible("Redox", -250.0)
(True, False, False, True)
"""

from __future__ import annotations

import math
from typing import Final

from riverguard.models import DataFlag
from riverguard.parameters import PARAMETERS

#: HJ 212 flags that mean someone is working on the instrument.
MAINTENANCE_FLAGS: Final = frozenset({DataFlag.MAINTENANCE, DataFlag.CALIBRATION})
#: HJ 212 flags that mean the instrument or its link is broken.
FAULT_FLAGS: Final = frozenset({DataFlag.FAULT, DataFlag.STOPPED, DataFlag.COMMUNICATION_FAULT})

#: Hydrological quantities: they do not say whether the water is polluted and a flow change is
#: not a "correlated change" that would make a single-parameter step look like water.
HYDROLOGICAL: Final = frozenset({"discharge", "water_level"})

#: Values inside the physical range that a working surface-water sensor still cannot report:
#: a conductivity of exactly zero is a probe out of water, DO far above saturation is a
#: fouled membrane, pH outside 1..13 in a river is a broken electrode.
PLAUSIBLE: Final[dict[str, tuple[float, float]]] = {
    "pH": (1.0, 13.0),
    "DO": (0.0, 20.0),
    "temperature": (-1.0, 40.0),
    "conductivity": (1e-6, 100_000.0),
}


#: Where plausible values lie, per parameter (unknown signals: anywhere, :data:`ANY_VALUE`); the
#: detector looks a value's range up inline, once per value on its hottest path.
PLAUSIBLE_RANGES: Final[dict[str, tuple[float, float]]] = {
    **{p.name: p.physical_range for p in PARAMETERS.values()},
    **PLAUSIBLE,
}
ANY_VALUE: Final = (-math.inf, math.inf)
