"""What a playbook needs to know about a pollutant: its class, decay and which sources emit it.

>>> p = pollutant("NH3N")
>>> p.pollutant_class.value, p.name_zh, round(p.decay_per_day, 2)
('organic', '氨氮', 0.2)
>>> pollutant("heavy_metal").name_zh
'重金属（未明确）'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from playbooks.errors import UnknownFeatureError
from riverguard.parameters import PARAMETERS, PollutantClass, WaterClass, gb3838_limit

#: First-order decay (1/day) of non-conservative pollutants in a river at about 20 °C: typical
#: textbook values (nitrification of NH3-N, oxidation of organic load, volatilisation and
#: degradation of oil and phenol). Everything else (metals, phosphorus, fluoride, PFAS,
#: antibiotics) is treated as conservative: no decay, the safe assumption for intakes.
DECAY_PER_DAY: Final[dict[str, float]] = {
    "NH3N": 0.2,
    "COD": 0.1,
    "CODMn": 0.1,
    "BOD5": 0.23,
    "phenol": 0.5,
    "petroleum": 0.2,
    "cyanide": 0.1,
}

#: Parameters whose value is not a dissolved load (no mass can be estimated from them).
_NOT_A_LOAD: Final = frozenset({"pH", "DO", "temperature", "conductivity", "turbidity", "discharge", "water_level"})

_CLASS_NAMES_ZH: Final[dict[PollutantClass, tuple[str, str]]] = {
    PollutantClass.HEAVY_METAL: ("重金属（未明确）", "heavy metals (unspecified)"),
    PollutantClass.OIL: ("油类", "oil"),
    PollutantClass.ORGANIC: ("有机物/氨氮", "organics/ammonia"),
    PollutantClass.PHOSPHORUS: ("磷", "phosphorus"),
    PollutantClass.PH: ("pH 异常", "pH excursion"),
    PollutantClass.EMERGING: ("新污染物", "emerging pollutants"),
    PollutantClass.UNKNOWN: ("不明污染物", "unknown pollutant"),
}


@dataclass(frozen=True, slots=True)
class Pollutant:
    """A parameter (``NH3N``, ``Cd`` ...) or a bare pollutant class (``heavy_metal`` ...)."""

    name: str
    name_zh: str
    name_en: str
    unit: str
    pollutant_class: PollutantClass
    decay_per_day: float
    #: True when an observed concentration can be turned into a mass (mg/L of a dissolved load).
    is_load: bool

    @property
    def decay_per_s(self) -> float:
        return self.decay_per_day / 86_400.0

    def drinking_limit(self) -> float | None:
        """The GB 3838 class III limit (drinking-water sources), or ``None`` if not assessed."""
        if self.name not in PARAMETERS or not self.is_load:
            return None
        return gb3838_limit(self.name, WaterClass.III)

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
    if spec is not None:
        if spec.pollutant_class is PollutantClass.NONE:
            raise UnknownFeatureError(f"{name!r} is not a pollutant (it has no action card); use e.g. NH3N, Cd, TP")
        return Pollutant(
            name,
            spec.name_zh,
            spec.name_en,
            spec.unit,
            spec.pollutant_class,
            DECAY_PER_DAY.get(name, 0.0),
            is_load=name not in _NOT_A_LOAD and spec.unit == "mg/L",
        )
    try:
        cls = PollutantClass(name)
    except ValueError:
        raise UnknownFeatureError(
            f"unknown pollutant {name!r}; use a parameter ({', '.join(sorted(PARAMETERS))}) "
            f"or a class ({', '.join(c.value for c in _CLASS_NAMES_ZH)})"
        ) from None
    if cls not in _CLASS_NAMES_ZH:
        raise UnknownFeatureError(f"{name!r} is not a pollutant class with an action card")
    zh, en = _CLASS_NAMES_ZH[cls]
    return Pollutant(name, zh, en, "mg/L", cls, 0.0, is_load=False)
