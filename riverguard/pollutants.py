"""The pollutant catalogue: names, class, GB 3838 limit, decay in a river and the treatment.

One place that playbooks (action cards, time of travel) and alerts (warning level, messages) read.
Names, units, classes and limits come from :mod:`riverguard.parameters` (the measured parameters);
this module adds what a response needs: first-order decay in the river and the treatment an
action card (一策) prescribes — for a pollutant class, and where one pollutant needs its own
(thallium, antimony, manganese ...). Every number carries its source; "estimate" says none was
found.

>>> tl = catalogue_entry("Tl")
>>> tl.name_zh, tl.pollutant_class.value, tl.drinking_limit, tl.decay.per_day
('铊', 'heavy_metal', 0.0001, 0.0)
>>> "高锰酸钾" in tl.treatment.zh
True
>>> catalogue_entry("NH3N").decay.per_day
0.2
>>> catalogue_entry("heavy_metal").name_zh
'重金属（未明确）'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from riverguard.parameters import PARAMETERS, PollutantClass, drinking_source_limit

_P = PollutantClass


@dataclass(frozen=True, slots=True)
class Decay:
    """First-order loss in the river (1/day) at about 20 °C, and where the value comes from."""

    per_day: float
    source: str

    @property
    def per_s(self) -> float:
        return self.per_day / 86_400.0


#: Metals, phosphorus, fluoride, PFAS, antibiotics: no decay — an element does not disappear
#: and sorption/settling is site-specific; the safe assumption for the intakes downstream.
CONSERVATIVE: Final = Decay(0.0, "conservative (no decay assumed: the safe side for intakes)")
_CHAPRA: Final = "Chapra (1997) Surface Water-Quality Modeling, typical 20 °C river rates"

#: Non-conservative pollutants. Chapra gives ranges; the values are mid-range picks.
DECAY: Final[dict[str, Decay]] = {
    "NH3N": Decay(0.2, f"nitrification, {_CHAPRA} (0.1–0.5 /d)"),
    "BOD5": Decay(0.23, "BOD deoxygenation k1 at 20 °C, Streeter–Phelps textbook value (Metcalf & Eddy)"),
    "COD": Decay(0.1, "estimate: oxidisable load, slower than BOD5 (Chinese EIA practice 0.05–0.2 /d)"),
    "CODMn": Decay(0.1, "estimate: as COD"),
    "phenol": Decay(0.5, "estimate: biodegradation and volatilisation of volatile phenol (0.2–1 /d)"),
    "petroleum": Decay(0.2, "estimate: volatilisation and dissolution of a surface film"),
    "cyanide": Decay(0.1, "estimate: HCN volatilisation"),
}


@dataclass(frozen=True, slots=True)
class Treatment:
    """What to do for a pollutant: at an interception point (``capabilities`` it needs), with which
    materials, whether to close intakes when the concentration is unknown, whether to ask an
    upstream reservoir for dilution, and what to add to the sampling."""

    capabilities: tuple[str, ...]
    zh: str
    en: str
    materials: tuple[str, ...]
    #: Close intakes when the peak concentration is unknown (toxic or unidentified pollutants).
    close_when_unknown: bool
    #: Ask an upstream reservoir to release more water.
    dilute: bool
    source: str
    sample_zh: str = ""
    sample_en: str = ""


#: Emergency treatment practice for drinking-water works: 住房和城乡建设部《城市供水系统应急净水技术
#: 指导手册》(2009) — chemical precipitation, oxidation, adsorption by pollutant family.
_MANUAL: Final = "MOHURD urban water-supply emergency treatment manual (2009)"

CLASS_TREATMENTS: Final[dict[PollutantClass, Treatment]] = {
    _P.HEAVY_METAL: Treatment(
        ("dose",),
        "投加石灰/液碱调节 pH 至 8.5–9.0 并投加聚合氯化铝絮凝，沉淀溶解态重金属",
        "dose lime/caustic soda to pH 8.5–9.0 and PAC to precipitate dissolved metals",
        ("石灰", "液碱", "聚合氯化铝", "硫化钠"),
        close_when_unknown=True,
        dilute=False,
        source=f"alkaline precipitation, {_MANUAL}",
        sample_zh="加测镉、铅、砷、汞、铬、铊、锑等重金属",
        sample_en="add Cd, Pb, As, Hg, Cr, Tl and Sb analyses",
    ),
    _P.METAL: Treatment(
        ("dose",),
        "投加高锰酸钾/次氯酸钠预氧化，再混凝沉淀过滤去除铁锰",
        "pre-oxidise with permanganate/hypochlorite, then coagulate and filter out iron and manganese",
        ("高锰酸钾", "次氯酸钠", "聚合氯化铝"),
        close_when_unknown=False,
        dilute=True,
        source=f"oxidation and filtration, {_MANUAL}",
    ),
    _P.OIL: Treatment(
        ("boom", "hold"),
        "布设两道以上围油栏拦截浮油，投放吸油毡回收",
        "deploy two or more lines of booms and recover oil with sorbent pads",
        ("围油栏", "吸油毡"),
        close_when_unknown=True,
        dilute=False,
        source="MEE spill-response practice (booms and sorbents)",
    ),
    _P.ORGANIC: Treatment(
        ("hold", "dose"),
        "拦蓄污染水体，曝气增氧并投加活性炭吸附",
        "hold the polluted water, aerate and dose activated carbon",
        ("活性炭",),
        close_when_unknown=False,
        dilute=True,
        source=f"activated-carbon adsorption, {_MANUAL}",
    ),
    _P.PHOSPHORUS: Treatment(
        ("dose",),
        "投加聚合氯化铝/硫酸亚铁混凝除磷",
        "dose PAC/ferrous sulphate to precipitate phosphorus",
        ("聚合氯化铝", "硫酸亚铁", "石灰"),
        close_when_unknown=False,
        dilute=True,
        source="chemical phosphorus precipitation (textbook)",
    ),
    _P.PH: Treatment(
        ("dose",),
        "投加中和药剂（pH 偏低投石灰/液碱，偏高投稀酸）",
        "neutralise (lime/caustic soda if low, dilute acid if high)",
        ("石灰", "液碱"),
        close_when_unknown=True,
        dilute=True,
        source="neutralisation (textbook)",
    ),
    _P.EMERGING: Treatment(
        (),
        "",
        "",
        ("活性炭",),
        close_when_unknown=False,
        dilute=False,
        source=f"activated carbon at the works, {_MANUAL}",
        sample_zh="采样送实验室检测全氟化合物/抗生素（LC-MS/MS）",
        sample_en="sample for PFAS/antibiotics (LC-MS/MS)",
    ),
    _P.UNKNOWN: Treatment(
        ("hold",),
        "关闸拦蓄，待查明污染物后处置",
        "close the gates and hold the water until the pollutant is known",
        ("活性炭", "石灰"),
        close_when_unknown=True,
        dilute=False,
        source="precaution: hold until identified",
        sample_zh="采样送实验室全分析（重金属、有机物、生物毒性）",
        sample_en="sample for a full lab analysis (metals, organics, toxicity)",
    ),
}


def _metal(zh: str, en: str, materials: tuple[str, ...], source: str, *, dilute: bool = False) -> Treatment:
    """A metal's own card: dosed at an interception point; intakes closed while it is unknown."""
    return Treatment(("dose",), zh, en, materials, close_when_unknown=True, dilute=dilute, source=source)


#: Pollutants whose treatment differs from their class card. The Jialing's incidents: antimony
#: (2015, 陇星锑业 tailings via the 西汉水 to Guangyuan) and thallium (2017, 2021, Guangyuan 西湾
#: intake) were treated at the works with iron coagulation and oxidation + alkaline precipitation.
TREATMENTS: Final[dict[str, Treatment]] = {
    "Tl": _metal(
        "投加高锰酸钾预氧化，液碱调 pH 至 9 左右后投加聚合硫酸铁混凝沉淀除铊",
        "pre-oxidise with permanganate, raise pH to ~9 with caustic soda and coagulate with "
        "polyferric sulphate to remove thallium",
        ("高锰酸钾", "液碱", "聚合硫酸铁"),
        f"oxidation + alkaline precipitation, as at Guangyuan 2017/2021 (public reports); {_MANUAL}",
    ),
    "Sb": _metal(
        "调 pH 至弱酸性（约 5–6）后投加聚合硫酸铁/硫酸铁强化混凝沉淀除锑",
        "lower pH to ~5–6 and coagulate with ferric sulphate/polyferric sulphate to remove antimony",
        ("聚合硫酸铁", "硫酸"),
        f"iron coagulation at slightly acid pH, as at Guangyuan 2015 (public reports); {_MANUAL}",
    ),
    "Mo": _metal(
        "调 pH 至弱酸性（约 4–5）后投加铁盐混凝沉淀除钼（去除有限，做好关闭取水口准备）",
        "lower pH to ~4–5 and coagulate with ferric salts (limited removal: be ready to close intakes)",
        ("聚合硫酸铁", "硫酸"),
        f"iron coagulation, {_MANUAL}",
        dilute=True,
    ),
    "Co": _metal(
        "投加液碱调 pH 至 9.5 以上并投加硫化钠，沉淀去除钴",
        "raise pH above 9.5 with caustic soda and dose sodium sulphide to precipitate cobalt",
        ("液碱", "硫化钠", "聚合氯化铝"),
        f"alkaline/sulphide precipitation, {_MANUAL}",
    ),
    "Ni": _metal(
        "投加液碱调 pH 至 9.5 以上并投加硫化钠，沉淀去除镍",
        "raise pH above 9.5 with caustic soda and dose sodium sulphide to precipitate nickel",
        ("液碱", "硫化钠", "聚合氯化铝"),
        f"alkaline/sulphide precipitation, {_MANUAL}",
    ),
    "Be": _metal(
        "投加液碱调 pH 至 8.5–9.0 并投加聚合氯化铝混凝沉淀除铍",
        "raise pH to 8.5–9.0 and coagulate with PAC to remove beryllium",
        ("液碱", "聚合氯化铝"),
        f"alkaline precipitation, {_MANUAL}",
    ),
    "B": _metal(
        "常规混凝沉淀基本不能去除硼：关闭受影响取水口，协调上游水库加大下泄稀释",
        "conventional treatment barely removes boron: close the affected intakes and ask upstream "
        "reservoirs to release water for dilution",
        ("活性炭",),
        "boron is not removed by coagulation (WHO Guidelines for Drinking-water Quality, boron)",
        dilute=True,
    ),
    "Ba": _metal(
        "投加硫酸钠（或硫酸铝）生成硫酸钡沉淀，再混凝沉淀去除",
        "dose sodium (or aluminium) sulphate to precipitate barium sulphate, then coagulate",
        ("硫酸钠", "聚合氯化铝"),
        f"sulphate precipitation, {_MANUAL}",
    ),
    "V": _metal(
        "投加硫酸亚铁还原并以铁盐混凝沉淀除钒",
        "reduce with ferrous sulphate and coagulate with iron salts to remove vanadium",
        ("硫酸亚铁", "聚合硫酸铁"),
        f"iron coagulation, {_MANUAL}",
    ),
    "Ti": _metal(
        "投加聚合氯化铝混凝沉淀去除钛（多为颗粒态）",
        "coagulate with PAC (titanium is mostly particulate)",
        ("聚合氯化铝",),
        f"coagulation, {_MANUAL}",
    ),
    "Mn": Treatment(
        ("dose",),
        "投加高锰酸钾（或二氧化氯）预氧化锰，再混凝沉淀、过滤",
        "pre-oxidise manganese with permanganate (or chlorine dioxide), then coagulate and filter",
        ("高锰酸钾", "聚合氯化铝"),
        close_when_unknown=False,
        dilute=True,
        source=f"oxidation and filtration, {_MANUAL}",
    ),
}


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    """Everything riverguard knows about one pollutant (a parameter) or an unspecified class."""

    name: str
    name_zh: str
    name_en: str
    unit: str
    pollutant_class: PollutantClass
    #: GB 3838 limit where drinking water is drawn (class III or Table 2/3); None if unset.
    drinking_limit: float | None
    decay: Decay
    treatment: Treatment


def catalogue_entry(name: str) -> CatalogueEntry:
    """The entry of a canonical parameter (``"Tl"``) or of a bare class (``"heavy_metal"``).

    Raises :class:`KeyError` for neither: callers turn it into their own error with the choices.
    """
    spec = PARAMETERS.get(name)
    if spec is not None:
        return CatalogueEntry(
            name,
            spec.name_zh,
            spec.name_en,
            spec.unit,
            spec.pollutant_class,
            drinking_source_limit(name),
            DECAY.get(name, CONSERVATIVE),
            TREATMENTS.get(name, CLASS_TREATMENTS.get(spec.pollutant_class, CLASS_TREATMENTS[_P.UNKNOWN])),
        )
    try:
        cls = PollutantClass(name)
    except ValueError:
        raise KeyError(name) from None
    if cls not in CLASS_TREATMENTS:
        raise KeyError(name)
    return CatalogueEntry(
        name, f"{cls.label_zh}（未明确）", f"{cls.label_en} (unspecified)", "mg/L", cls, None, CONSERVATIVE,
        CLASS_TREATMENTS[cls],
    )


def pollutant_classes() -> tuple[PollutantClass, ...]:
    """The classes that have an action card (what ``--pollutant`` accepts besides parameters)."""
    return tuple(CLASS_TREATMENTS)
