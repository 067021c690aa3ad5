"""What a playbook needs to know about a pollutant, read from the core's catalogue
(:mod:`riverguard.pollutants`): class, limit, decay, treatment, and which sources emit it.

>>> p = pollutant("NH3N")
>>> p.pollutant_class.value, p.name_zh, round(p.decay_per_day, 2)
('organic', '氨氮', 0.2)
>>> pollutant("heavy_metal").name_zh
'重金属（未明确）'
>>> pollutant("Tl").drinking_limit(), pollutant("Tl").is_load
(0.0001, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from playbooks.errors import UnknownFeatureError
from riverguard.parameters import PARAMETERS, PollutantClass
from riverguard.pollutants import Treatment, catalogue_entry, pollutant_classes

#: Parameters whose value is not a dissolved load (no mass can be estimated from them).
_NOT_A_LOAD: Final = frozenset({"pH", "DO", "temperature", "conductivity", "turbidity", "discharge", "water_level"})


@dataclass(frozen=True, slots=True)
class Pollutant:
    """A parameter (``NH3N``, ``Cd`` ...) or a bare pollutant class (``heavy_metal`` ...)."""

    name: str
    name_zh: str
    name_en: str
    unit: str
    pollutant_class: PollutantClass
    decay_per_day: float
    treatment: Treatment
    #: True when a concentration is a dissolved load in mg/L: it can be turned into a mass and
    #: carried downstream. A bare class is a load too (the concentration of "the metal"), except pH.
    is_load: bool
    limit: float | None = None

    @property
    def decay_per_s(self) -> float:
        return self.decay_per_day / 86_400.0

    def drinking_limit(self) -> float | None:
        """The GB 3838 limit where drinking water is drawn (class III or Table 2/3), or ``None``."""
        return self.limit

    def emitted_by(self, pollutants: tuple[str, ...]) -> str | None:
        """``"pollutant"`` if a source lists this pollutant, ``"class"`` if one of the same class."""
        if self.name in pollutants:
            return "pollutant"
        classes = {PARAMETERS[p].pollutant_class for p in pollutants if p in PARAMETERS}
        if self.pollutant_class in classes or self.pollutant_class is PollutantClass.UNKNOWN:
            return "class"
        return None


def pollutant(name: str) -> Pollutant:
    """Look up a canonical parameter name or a :class:`PollutantClass` value."""
    spec = PARAMETERS.get(name)
    if spec is not None and spec.pollutant_class is PollutantClass.NONE:
        raise UnknownFeatureError(f"{name!r} is not a pollutant (it has no action card); use e.g. NH3N, Cd, TP")
    try:
        entry = catalogue_entry(name)
    except KeyError:
        raise UnknownFeatureError(
            f"unknown pollutant {name!r}; use a parameter ({', '.join(sorted(PARAMETERS))}) "
            f"or a class ({', '.join(c.value for c in pollutant_classes())})"
        ) from None
    return Pollutant(
        name,
        entry.name_zh,
        entry.name_en,
        entry.unit,
        entry.pollutant_class,
        entry.decay.per_day,
        entry.treatment,
        is_load=name not in _NOT_A_LOAD and entry.unit == "mg/L" and entry.pollutant_class is not PollutantClass.PH,
        limit=entry.drinking_limit,
    )
