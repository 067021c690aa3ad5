"""Canonical water-quality parameters, their HJ 212 factor codes and GB 3838-2002 limits.

Everything inside riverguard speaks canonical parameter names (``"NH3N"``, ``"pH"``, ...) and
canonical units (mg/L for concentrations). Codecs translate at the edge. What riverguard knows
about a pollutant beyond its measurement (decay, treatment) is in :mod:`riverguard.pollutants`,
which reads the names, classes and limits here: together they are the one pollutant catalogue.

Sources: limits from GB 3838-2002 《地表水环境质量标准》 — Table 1 (basic items, classes I–V),
Table 2 (supplementary items for centralised drinking-water sources: Fe 0.3, Mn 0.1 mg/L) and
Table 3 (specific items for those sources: Mo 0.07, Co 1.0, Be 0.002, B 0.5, Sb 0.005, Ni 0.02,
Ba 0.7, V 0.05, Ti 0.1, Tl 0.0001 mg/L; items 71–80). HJ 212 factor codes from HJ 212-2017
Appendix B; the codes of the Table 2/3 metals (w20012 Ba, w20023 B, w20038 Co, w20061 Mo, w20089 Tl,
w20121 Ni, w20124 Mn, w20125 Fe, w20127 Be) as the public HJ 212-2017 code list of
lingkejia/bocon-operation-app (src/lib/polcodeList17.js) gives them — not checked against the
standard's own text; Sb, V and Ti have no code there (``None``: JSON payloads only).

>>> PARAMETERS["NH3N"].hj212_code
'w21003'
>>> BY_HJ212_CODE["w20115"].name
'Cd'
>>> gb3838_limit("NH3N", WaterClass.III)
1.0
>>> classify("NH3N", 1.2)
<WaterClass.IV: 4>
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final, Literal


class PollutantClass(StrEnum):
    """Pollutant families that select a response action card (一策)."""

    HEAVY_METAL = "heavy_metal"  # toxic metals and metalloids (Cd, Pb, Hg, As, Cr6, Tl, Sb, ...)
    METAL = "metal"  # iron and manganese: GB 3838 Table 2 items, a treatment problem rather than a toxic one
    OIL = "oil"
    ORGANIC = "organic"  # COD, CODMn, BOD5, NH3-N, volatile phenol, DO sag
    PHOSPHORUS = "phosphorus"
    PH = "ph"
    EMERGING = "emerging"  # PFAS, antibiotics
    UNKNOWN = "unknown"  # conductivity/turbidity spikes, cyanide, anything unidentified
    NONE = "none"  # not a pollutant (temperature, discharge, water level)

    @property
    def label_zh(self) -> str:
        """The class as messages and documents name it (one label, read by alerts and playbooks)."""
        return _POLLUTANT_CLASS_LABELS[self][0]

    @property
    def label_en(self) -> str:
        return _POLLUTANT_CLASS_LABELS[self][1]


_POLLUTANT_CLASS_LABELS: Final[dict[PollutantClass, tuple[str, str]]] = {
    PollutantClass.HEAVY_METAL: ("重金属", "heavy metals"),
    PollutantClass.METAL: ("铁锰", "iron/manganese"),
    PollutantClass.OIL: ("石油类", "oil"),
    PollutantClass.ORGANIC: ("有机/耗氧污染物", "organic / oxygen-demanding"),
    PollutantClass.PHOSPHORUS: ("磷", "phosphorus"),
    PollutantClass.PH: ("pH 异常", "pH excursion"),
    PollutantClass.EMERGING: ("新污染物", "emerging pollutants"),
    PollutantClass.UNKNOWN: ("不明污染物", "unknown pollutant"),
    PollutantClass.NONE: ("非污染物", "not a pollutant"),
}


class WaterClass(IntEnum):
    """GB 3838-2002 surface-water classes; ``WORSE_THAN_V`` is 劣Ⅴ."""

    I = 1  # noqa: E741 - the standard's own name
    II = 2
    III = 3
    IV = 4
    V = 5
    WORSE_THAN_V = 6

    @property
    def label_zh(self) -> str:
        return _CLASS_LABELS_ZH[self]

    @property
    def roman(self) -> str:
        return "劣Ⅴ" if self is WaterClass.WORSE_THAN_V else ("Ⅰ", "Ⅱ", "Ⅲ", "Ⅳ", "Ⅴ")[self - 1]


_CLASS_LABELS_ZH: Final = {
    WaterClass.I: "优",
    WaterClass.II: "优",
    WaterClass.III: "良好",
    WaterClass.IV: "轻度污染",
    WaterClass.V: "中度污染",
    WaterClass.WORSE_THAN_V: "重度污染",
}

LimitKind = Literal["max", "min", "range", "source"]
#: GB 3838-2002 §4: Tables 2 and 3 apply to centralised drinking-water sources, which the standard
#: puts in classes I–III; a section whose target is one of these is held to them.
_SOURCE_CLASSES: Final = (WaterClass.I, WaterClass.II, WaterClass.III)


@dataclass(frozen=True, slots=True)
class Gb3838Limits:
    """Limits for classes I..V. ``max``: value must not exceed; ``min``: value must reach
    (dissolved oxygen); ``range``: the same (low, high) band for every class (pH 6-9);
    ``source``: one limit of GB 3838 Table 2 or 3 (drinking-water sources), the same in ``values``
    for every class, applied to targets I–III only and not used to classify a section."""

    kind: LimitKind
    values: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    band: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    name_zh: str
    name_en: str
    unit: str
    hj212_code: str | None
    physical_range: tuple[float, float]
    pollutant_class: PollutantClass
    limits: Gb3838Limits | None = None


def _max(*v: float) -> Gb3838Limits:
    assert len(v) == 5
    return Gb3838Limits("max", (v[0], v[1], v[2], v[3], v[4]))


def _source(limit: float) -> Gb3838Limits:
    return Gb3838Limits("source", (limit,) * 5)


_MGL = "mg/L"
_P = PollutantClass

_ALL: Final[tuple[Parameter, ...]] = (
    Parameter("pH", "pH", "pH", "", "w01001", (0.0, 14.0), _P.PH, Gb3838Limits("range", band=(6.0, 9.0))),
    Parameter("DO", "溶解氧", "dissolved oxygen", _MGL, "w01009", (0.0, 25.0), _P.ORGANIC,
              Gb3838Limits("min", (7.5, 6.0, 5.0, 3.0, 2.0))),
    Parameter("temperature", "水温", "water temperature", "°C", "w01010", (-5.0, 45.0), _P.NONE),
    Parameter("conductivity", "电导率", "conductivity", "µS/cm", "w01014", (0.0, 100_000.0), _P.UNKNOWN),
    Parameter("turbidity", "浊度", "turbidity", "NTU", "w01003", (0.0, 10_000.0), _P.UNKNOWN),
    Parameter("CODMn", "高锰酸盐指数", "permanganate index", _MGL, "w01019", (0.0, 1_000.0), _P.ORGANIC,
              _max(2, 4, 6, 10, 15)),
    Parameter("COD", "化学需氧量", "chemical oxygen demand", _MGL, "w01018", (0.0, 10_000.0), _P.ORGANIC,
              _max(15, 15, 20, 30, 40)),
    Parameter("BOD5", "五日生化需氧量", "BOD5", _MGL, "w01017", (0.0, 5_000.0), _P.ORGANIC, _max(3, 3, 4, 6, 10)),
    Parameter("NH3N", "氨氮", "ammonia nitrogen", _MGL, "w21003", (0.0, 1_000.0), _P.ORGANIC,
              _max(0.15, 0.5, 1.0, 1.5, 2.0)),
    Parameter("TP", "总磷", "total phosphorus", _MGL, "w21011", (0.0, 100.0), _P.PHOSPHORUS,
              _max(0.02, 0.1, 0.2, 0.3, 0.4)),
    # TN is not assessed for rivers (GB 3838 applies it to lakes and reservoirs only).
    Parameter("TN", "总氮", "total nitrogen", _MGL, "w21001", (0.0, 1_000.0), _P.ORGANIC),
    Parameter("F", "氟化物", "fluoride", _MGL, "w21017", (0.0, 1_000.0), _P.UNKNOWN, _max(1, 1, 1, 1.5, 1.5)),
    Parameter("petroleum", "石油类", "petroleum", _MGL, "w22001", (0.0, 1_000.0), _P.OIL,
              _max(0.05, 0.05, 0.05, 0.5, 1.0)),
    Parameter("phenol", "挥发酚", "volatile phenol", _MGL, "w23002", (0.0, 1_000.0), _P.ORGANIC,
              _max(0.002, 0.002, 0.005, 0.01, 0.1)),
    Parameter("cyanide", "氰化物", "cyanide", _MGL, "w21016", (0.0, 100.0), _P.UNKNOWN,
              _max(0.005, 0.05, 0.2, 0.2, 0.2)),
    Parameter("Hg", "汞", "mercury", _MGL, "w20111", (0.0, 100.0), _P.HEAVY_METAL,
              _max(0.00005, 0.00005, 0.0001, 0.001, 0.001)),
    Parameter("Cd", "镉", "cadmium", _MGL, "w20115", (0.0, 100.0), _P.HEAVY_METAL,
              _max(0.001, 0.005, 0.005, 0.005, 0.01)),
    Parameter("Cr6", "六价铬", "hexavalent chromium", _MGL, "w20117", (0.0, 100.0), _P.HEAVY_METAL,
              _max(0.01, 0.05, 0.05, 0.05, 0.1)),
    Parameter("As", "砷", "arsenic", _MGL, "w20119", (0.0, 100.0), _P.HEAVY_METAL,
              _max(0.05, 0.05, 0.05, 0.1, 0.1)),
    Parameter("Pb", "铅", "lead", _MGL, "w20120", (0.0, 100.0), _P.HEAVY_METAL,
              _max(0.01, 0.01, 0.05, 0.05, 0.1)),
    Parameter("Cu", "铜", "copper", _MGL, "w20122", (0.0, 100.0), _P.HEAVY_METAL, _max(0.01, 1, 1, 1, 1)),
    Parameter("Zn", "锌", "zinc", _MGL, "w20123", (0.0, 100.0), _P.HEAVY_METAL, _max(0.05, 1, 1, 2, 2)),
    # GB 3838-2002 Table 2 (supplementary items for drinking-water sources)
    Parameter("Fe", "铁", "iron", _MGL, "w20125", (0.0, 1_000.0), _P.METAL, _source(0.3)),
    Parameter("Mn", "锰", "manganese", _MGL, "w20124", (0.0, 1_000.0), _P.METAL, _source(0.1)),
    # GB 3838-2002 Table 3 (specific items for drinking-water sources), items 71-80
    Parameter("Mo", "钼", "molybdenum", _MGL, "w20061", (0.0, 100.0), _P.HEAVY_METAL, _source(0.07)),
    Parameter("Co", "钴", "cobalt", _MGL, "w20038", (0.0, 100.0), _P.HEAVY_METAL, _source(1.0)),
    Parameter("Be", "铍", "beryllium", _MGL, "w20127", (0.0, 100.0), _P.HEAVY_METAL, _source(0.002)),
    Parameter("B", "硼", "boron", _MGL, "w20023", (0.0, 1_000.0), _P.HEAVY_METAL, _source(0.5)),
    Parameter("Sb", "锑", "antimony", _MGL, None, (0.0, 100.0), _P.HEAVY_METAL, _source(0.005)),
    Parameter("Ni", "镍", "nickel", _MGL, "w20121", (0.0, 100.0), _P.HEAVY_METAL, _source(0.02)),
    Parameter("Ba", "钡", "barium", _MGL, "w20012", (0.0, 1_000.0), _P.HEAVY_METAL, _source(0.7)),
    Parameter("V", "钒", "vanadium", _MGL, None, (0.0, 100.0), _P.HEAVY_METAL, _source(0.05)),
    Parameter("Ti", "钛", "titanium", _MGL, None, (0.0, 100.0), _P.HEAVY_METAL, _source(0.1)),
    Parameter("Tl", "铊", "thallium", _MGL, "w20089", (0.0, 100.0), _P.HEAVY_METAL, _source(0.0001)),
    Parameter("PFAS", "全氟化合物", "PFAS", _MGL, None, (0.0, 100.0), _P.EMERGING),
    Parameter("antibiotics", "抗生素", "antibiotics", _MGL, None, (0.0, 100.0), _P.EMERGING),
    Parameter("discharge", "流量", "discharge", "m3/s", "w00000", (0.0, 200_000.0), _P.NONE),
    Parameter("water_level", "水位", "water level", "m", None, (-100.0, 10_000.0), _P.NONE),
)

# --- Added for the HJ 212-2017 code table (hj212 workstream; ingest/codetable.py maps the codes) ---
# Selenium is a GB 3838-2002 Table 1 item (硒 ≤ 0.01 mg/L for classes I–III, 0.02 for IV–V) that
# HJ 212-2017 Table B.1 reports as w20140 (硒) and w20128 (总硒); without a canonical name its
# values stayed raw codes and were never checked against the limits.
_FROM_HJ212_TABLE: Final[tuple[Parameter, ...]] = (
    Parameter("Se", "硒", "selenium", _MGL, "w20140", (0.0, 100.0), _P.HEAVY_METAL, _max(0.01, 0.01, 0.01, 0.02, 0.02)),
)
# --- end of the HJ 212 block ---

PARAMETERS: Final[dict[str, Parameter]] = {p.name: p for p in (*_ALL, *_FROM_HJ212_TABLE)}
BY_HJ212_CODE: Final[dict[str, Parameter]] = {p.hj212_code: p for p in PARAMETERS.values() if p.hj212_code}

#: Factors of concentration units to mg/L, for per-station unit configuration.
UNIT_TO_MG_PER_L: Final[dict[str, float]] = {"mg/L": 1.0, "ug/L": 1e-3, "µg/L": 1e-3, "ng/L": 1e-6, "g/L": 1e3}


def gb3838_limit(parameter: str, target: WaterClass) -> float | None:
    """The limit a value is compared with for a section whose target class is ``target``.

    For ``max`` parameters the class limit; for DO the minimum; for pH the upper band edge
    (low pH is checked separately by :func:`exceedance_multiple`); for the drinking-water source
    items of Tables 2 and 3 their one limit, for targets I–III. ``None`` when the parameter is
    not assessed by GB 3838 for rivers (or not for this target).

    >>> gb3838_limit("Tl", WaterClass.II), gb3838_limit("Tl", WaterClass.IV)
    (0.0001, None)
    """
    limits = _limits(parameter)
    if limits is None or not _assessed(limits, target):
        return None
    if limits.kind == "range":
        return limits.band[1]
    return limits.values[target - 1]


def exceedance_multiple(parameter: str, value: float, target: WaterClass) -> float | None:
    """How many times the target-class limit is exceeded ("超标 N 倍"), or ``None``/``0`` if not.

    Chinese reports give the exceedance multiple as ``(value - limit) / limit``: a value of 3.3
    against a limit of 1.0 is "超标 2.3 倍". For DO the shortfall is reported the same way
    against the minimum; for pH the distance outside the 6-9 band relative to the band edge.

    >>> round(exceedance_multiple("NH3N", 3.3, WaterClass.III) or 0, 2)
    2.3
    >>> exceedance_multiple("NH3N", 0.4, WaterClass.III)
    0.0
    >>> round(exceedance_multiple("Sb", 0.02, WaterClass.III) or 0, 2)
    3.0
    """
    limits = _limits(parameter)
    if limits is None or not _assessed(limits, target):
        return None
    if limits.kind == "range":
        low, high = limits.band
        if value > high:
            return (value - high) / high
        if value < low:
            return (low - value) / low
        return 0.0
    limit = limits.values[target - 1]
    if limits.kind == "min":
        return max(0.0, (limit - value) / limit)
    return max(0.0, (value - limit) / limit)


def compliant_band(parameter: str, target: WaterClass) -> tuple[float, float] | None:
    """The values ``low <= value <= high`` that meet the target-class limit: exactly those whose
    :func:`exceedance_multiple` is 0, so a hot loop can skip computing it for them. ``None``
    when the parameter is not assessed (or the target is 劣Ⅴ).

    >>> compliant_band("NH3N", WaterClass.III), compliant_band("DO", WaterClass.II), compliant_band("pH", WaterClass.I)
    ((-inf, 1.0), (6.0, inf), (6.0, 9.0))
    """
    limits = _limits(parameter)
    if limits is None or not _assessed(limits, target):
        return None
    if limits.kind == "range":
        return limits.band
    limit = limits.values[target - 1]
    return (limit, math.inf) if limits.kind == "min" else (-math.inf, limit)


def classify(parameter: str, value: float) -> WaterClass | None:
    """The GB 3838 class of one value (single-factor method); ``None`` if not assessed (the
    drinking-water source items of Tables 2 and 3 have a limit but no classes).

    >>> classify("Mn", 0.5) is None
    True
    """
    limits = _limits(parameter)
    if limits is None or limits.kind == "source" or math.isnan(value):
        return None
    if limits.kind == "range":
        low, high = limits.band
        return WaterClass.I if low <= value <= high else WaterClass.WORSE_THAN_V
    for index, limit in enumerate(limits.values):
        ok = value >= limit if limits.kind == "min" else value <= limit
        if ok:
            return WaterClass(index + 1)
    return WaterClass.WORSE_THAN_V


def section_class(values: dict[str, float]) -> WaterClass | None:
    """A section's class: the worst class over its assessed indicators.

    >>> section_class({"NH3N": 0.3, "TP": 0.25, "temperature": 30.0})
    <WaterClass.IV: 4>
    """
    classes = [c for name, v in values.items() if (c := classify(name, v)) is not None]
    return max(classes) if classes else None


def drinking_source_limit(parameter: str) -> float | None:
    """The limit water must meet where it is drawn for drinking: class III of Table 1, or the
    one limit of Table 2/3; ``None`` when GB 3838 sets none (DO and pH are not loads either).

    >>> drinking_source_limit("NH3N"), drinking_source_limit("Tl"), drinking_source_limit("TN")
    (1.0, 0.0001, None)
    """
    limits = _limits(parameter)
    if limits is None or limits.kind in ("min", "range"):
        return None
    return limits.values[WaterClass.III - 1]


def _assessed(limits: Gb3838Limits, target: WaterClass) -> bool:
    if limits.kind == "source":
        return target in _SOURCE_CLASSES
    return target is not WaterClass.WORSE_THAN_V


def _limits(parameter: str) -> Gb3838Limits | None:
    spec = PARAMETERS.get(parameter)
    return spec.limits if spec else None
