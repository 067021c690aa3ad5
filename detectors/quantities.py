"""What a parameter measures, as far as the detectors care: its plausible range, and whether it is
hydrology (level, flow) rather than water quality. Numbered second sensors (``discharge_2``, from
a replay file with two flow meters) measure what the first does.

>>> def plausible(parameter, value):
...     low, high = plausible_range(parameter)
...     return low <= value <= high
>>> plausible("pH", 7.8), plausible("pH", 0.2), plausible("COD", -1.0), plausible("Redox", -250.0)
(True, False, False, True)
>>> hydrological("water_level"), hydrological("discharge_2"), hydrological("turbidity")
(True, True, False)
>>> flood_response("turbidity_2"), flood_response("conductivity"), flood_response("NH3N")
(1.0, -1.0, 0.0)
"""

from __future__ import annotations

import math
import re
from functools import cache
from typing import Final

from riverguard.parameters import PARAMETERS

#: Hydrological quantities: they do not say whether the water is polluted and a flow change is
#: not a "correlated change" that would make a single-parameter step look like water.
HYDROLOGICAL: Final = frozenset({"discharge", "water_level"})
#: The river's stage: a flood is high water by it (a flow meter alone may sit behind a pump).
STAGE: Final = "water_level"

#: How a quality parameter answers a flood by itself (level or flow beyond its usual range):
#: rising flow mobilises suspended matter (turbidity up) and event water dilutes dissolved salts
#: (conductivity down) — the concentration–discharge behaviour of most rivers (Godsey, Kirchner &
#: Clow 2009, Hydrological Processes 23:1844-1864; the same co-movement is what Leigh et al. 2019
#: describe as natural events in the Pioneer River and Sandy Creek records). A change in that
#: direction during a flood is the flood's, not a spill's; the other direction, and every other
#: parameter, stays evidence.
FLOOD_RESPONSE: Final[dict[str, float]] = {"turbidity": 1.0, "conductivity": -1.0}

#: Values inside the physical range that a working surface-water sensor still cannot report:
#: a conductivity of exactly zero is a probe out of water, DO far above saturation is a
#: fouled membrane, pH outside 1..13 in a river is a broken electrode.
PLAUSIBLE: Final[dict[str, tuple[float, float]]] = {
    "pH": (1.0, 13.0),
    "DO": (0.0, 20.0),
    "temperature": (-1.0, 40.0),
    # Pure water conducts 0.055 µS/cm at 25 °C and rain 5-50 µS/cm, so below 1 µS/cm the cell is
    # dry or broken (the oddwater data's Pioneer River conductivity falls to ~0 while its probe is out).
    "conductivity": (1.0, 100_000.0),
}


#: Where plausible values lie, per parameter (unknown signals: anywhere, :data:`ANY_VALUE`); the
#: detector looks a value's range up inline, once per value on its hottest path.
PLAUSIBLE_RANGES: Final[dict[str, tuple[float, float]]] = {
    **{p.name: p.physical_range for p in PARAMETERS.values()},
    **PLAUSIBLE,
}
ANY_VALUE: Final = (-math.inf, math.inf)

_NUMBERED: Final = re.compile(r"^(.+)_\d+$")


@cache
def family(name: str) -> str:
    """The quantity a parameter measures: a numbered second sensor (``discharge_2``) measures
    the same as the first.

    >>> family("discharge_2"), family("pH"), family("Cl_2")
    ('discharge', 'pH', 'Cl_2')
    """
    numbered = _NUMBERED.match(name)
    return numbered[1] if numbered is not None and numbered[1] in PARAMETERS else name


@cache
def hydrological(name: str) -> bool:
    return family(name) in HYDROLOGICAL


@cache
def is_stage(name: str) -> bool:
    return family(name) == STAGE


@cache
def flood_response(name: str) -> float:
    """+1 / -1: the direction a flood moves this parameter by itself; 0: none expected."""
    return FLOOD_RESPONSE.get(family(name), 0.0)


@cache
def plausible_range(name: str) -> tuple[float, float]:
    return PLAUSIBLE_RANGES.get(family(name), ANY_VALUE)


