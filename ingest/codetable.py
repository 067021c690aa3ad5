"""The HJ 212 factor codes of water: what each code measures and in which unit it is reported.

A frame names its values by code (``w20115-Rtd=0.8``), and the code fixes the unit: HJ 212-2017
Appendix B, Table B.1 (水监测因子编码表) gives the heavy metals mostly in µg/L (w20111 总汞, w20115
总镉, w20117 六价铬, w20119 总砷, w20120 总铅 ...) and w00000 (污水, wastewater flow) in L/s, while
riverguard works in mg/L and m³/s. Reading a code in its table unit is the default; a station
whose instruments report otherwise says so in the registry (``units``), which wins.

The table's "original code" column maps the HJ/T 212-2005 numeric codes (011 COD, 060 NH3-N,
101 TP, B01 wastewater flow ...) that installed loggers still send. The 2005 table gives every
concentration in mg/L, so a 2005 code is read in mg/L (and its flow in L/s).

w20138–w20144 are the table's un-prefixed 铜, 锌, 硒, 砷, 汞, 镉, 铅 — GB 3838-2002's surface-water
items (surface-water stations send them) — and map to the same canonical parameters as the
总-codes, so they are checked against the GB 3838 limits.

Sources (public transcriptions of the standard's Table B.1, cross-checked against each other):
``srdgame/lua-HJ212`` ``hj212/tags/info.lua`` (code, name, unit, original 2005 code), a Java
entity of ``com.jqmkj.WaterResponseSystem`` that carries the same columns per code in comments,
and ``lingkejia/bocon-operation-app`` ``src/lib/polcodeList05.js`` (the HJ/T 212-2005 codes with
their mg/L units). w01003 (turbidity) is not in the 2017 table; surface-water stations use it.

>>> WATER["w20115"].unit, WATER["w20115"].parameter
('µg/L', 'Cd')
>>> WATER["060"].parameter, WATER["060"].unit
('NH3N', 'mg/L')
>>> WATER["w20143"].parameter
'Cd'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from riverguard.stations import Station, unit_factor


@dataclass(frozen=True, slots=True)
class Factor:
    """One code of the table: ``parameter`` is riverguard's canonical name (None: none yet) and
    ``code_2017`` the code's HJ 212-2017 form (itself, or the one a 2005 code became)."""

    code: str
    name_zh: str
    unit: str
    parameter: str | None
    code_2017: str
    standard: str = "HJ 212-2017"


_MG, _UG, _NG = "mg/L", "µg/L", "ng/L"
_CONCENTRATIONS: Final = frozenset({_MG, _UG, _NG})

# (2017 code, name, unit, HJ/T 212-2005 code or None, canonical parameter or None)
_TABLE_B1: Final[tuple[tuple[str, str, str, str | None, str | None], ...]] = (
    ("w00000", "污水", "L/s", "B01", "discharge"),
    ("w01001", "pH值", "", "001", "pH"),
    ("w01002", "色度", "度", "002", None),
    ("w01006", "溶解性总固体", _MG, None, None),
    ("w01009", "溶解氧", _MG, None, "DO"),
    ("w01010", "水温", "°C", None, "temperature"),
    ("w01012", "悬浮物", _MG, "003", None),
    ("w01014", "电导率", "µS/cm", None, "conductivity"),
    ("w01017", "五日生化需氧量", _MG, "010", "BOD5"),
    ("w01018", "化学需氧量", _MG, "011", "COD"),
    ("w01019", "高锰酸盐指数", _MG, None, "CODMn"),
    ("w01020", "总有机碳", _MG, "015", None),
    ("w02003", "粪大肠菌群", "个/L", "550", None),
    ("w02006", "细菌总数", "个/L", None, None),
    ("w03001", "总α放射性", "Bq/L", "570", None),
    ("w03002", "总β放射性", "Bq/L", "571", None),
    ("w19001", "表面活性剂", _MG, None, None),
    ("w19002", "阴离子表面活性剂", _MG, "520", None),
    ("w20012", "钡", _MG, "039", "Ba"),
    ("w20023", "硼", _MG, "037", "B"),
    ("w20038", "钴", _MG, "040", "Co"),
    ("w20061", "钼", _MG, "038", "Mo"),
    ("w20089", "铊", _NG, "041", "Tl"),
    ("w20092", "锡", _MG, "036", None),
    ("w20111", "总汞", _UG, "020", "Hg"),
    ("w20113", "烷基汞", _NG, "021", None),
    ("w20115", "总镉", _UG, "022", "Cd"),
    ("w20116", "总铬", _MG, "023", None),
    ("w20117", "六价铬", _UG, "024", "Cr6"),
    ("w20119", "总砷", _UG, "026", "As"),
    ("w20120", "总铅", _UG, "027", "Pb"),
    ("w20121", "总镍", _MG, "028", "Ni"),
    ("w20122", "总铜", _MG, "029", "Cu"),
    ("w20123", "总锌", _MG, "030", "Zn"),
    ("w20124", "总锰", _MG, "031", "Mn"),
    ("w20125", "总铁", _MG, "032", "Fe"),
    ("w20126", "总银", _MG, "033", None),
    ("w20127", "总铍", _UG, "034", "Be"),
    ("w20128", "总硒", _UG, "035", "Se"),
    ("w20138", "铜", _MG, None, "Cu"),
    ("w20139", "锌", _MG, None, "Zn"),
    ("w20140", "硒", _MG, None, "Se"),
    ("w20141", "砷", _MG, None, "As"),
    ("w20142", "汞", _UG, None, "Hg"),
    ("w20143", "镉", _UG, None, "Cd"),
    ("w20144", "铅", _MG, None, "Pb"),
    ("w21001", "总氮", _MG, "065", "TN"),
    ("w21003", "氨氮", _MG, "060", "NH3N"),
    ("w21004", "凯氏氮", _MG, "062", None),
    ("w21006", "亚硝酸盐", _MG, "063", None),
    ("w21007", "硝酸盐", _MG, "064", None),
    ("w21011", "总磷", _MG, "101", "TP"),
    ("w21016", "氰化物", _MG, "070", "cyanide"),
    ("w21017", "氟化物", _MG, "072", "F"),
    ("w21019", "硫化物", _MG, "071", None),
    ("w21022", "氯化物", _MG, "090", None),
    ("w21038", "硫酸盐", _MG, None, None),
    ("w22001", "石油类", _MG, "080", "petroleum"),
    ("w23002", "挥发酚", _MG, "110", "phenol"),
    ("w25043", "苯并[a]芘", _UG, "540", None),
    ("w33001", "六六六", _NG, "350", None),
    ("w33007", "滴滴涕", _NG, "351", None),
    ("w99001", "有机氮", _MG, "061", None),
)


def _factors() -> dict[str, Factor]:
    factors = {"w01003": Factor("w01003", "浊度", "NTU", "turbidity", "w01003", "stations (not in Table B.1)")}
    for code, name_zh, unit, code_2005, parameter in _TABLE_B1:
        factors[code] = Factor(code, name_zh, unit, parameter, code)
        if code_2005 is not None:
            unit_2005 = _MG if unit in _CONCENTRATIONS else unit
            factors[code_2005] = Factor(code_2005, name_zh, unit_2005, parameter, code, "HJ/T 212-2005")
    return factors


#: Every water factor code riverguard knows, 2017 and 2005, by code.
WATER: Final[dict[str, Factor]] = _factors()
_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")  # riverguard.models.ParameterName


def value_name(code: str) -> str | None:
    """The name a value of ``code`` gets in a reading: the canonical parameter; else the 2017 code
    (for a 2005 code); else the code itself, or ``hj212.<code>`` when the code is not a valid
    name (a numeric code outside the table). None when no name can hold it.

    >>> value_name("011"), value_name("003"), value_name("w99999"), value_name("831"), value_name("a/b")
    ('COD', 'w01012', 'w99999', 'hj212.831', None)
    """
    factor = WATER.get(code)
    if factor is not None:
        return factor.parameter or factor.code_2017
    for name in (code, f"hj212.{code}"):
        if _NAME.match(name):
            return name
    return None


def station_factors(station: Station) -> dict[str, float]:
    """Multipliers from each code's reported unit to the canonical unit, for ``station``: the
    registry's ``units`` when it names the parameter, else the table unit. Codes whose values
    need no conversion are left out (ingest looks this up per value).

    >>> from riverguard.stations import load_registry
    >>> factors = station_factors(load_registry().by_id["tuo-hongyuan"])
    >>> factors["w20111"], factors["w00000"], "w21003" in factors
    (0.001, 0.001, False)
    """
    out: dict[str, float] = {}
    for code, factor in WATER.items():
        if factor.parameter is None:
            continue
        unit = station.units.get(factor.parameter, factor.unit)
        multiplier = unit_factor(factor.parameter, unit)
        if multiplier != 1.0:
            out[code] = multiplier
    return out
