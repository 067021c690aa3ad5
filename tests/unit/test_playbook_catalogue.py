"""The pollutant catalogue (riverguard.pollutants + riverguard.parameters) is the one source that
playbooks and alerts read: names, class labels, GB 3838 limits, decay and treatment."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from alerts.severity import SeverityRule
from playbooks import build_playbook, load_network, pollutant
from playbooks.errors import UnknownFeatureError
from riverguard.parameters import (
    PARAMETERS,
    PollutantClass,
    WaterClass,
    classify,
    drinking_source_limit,
    exceedance_multiple,
    gb3838_limit,
    section_class,
)
from riverguard.pollutants import CLASS_TREATMENTS, DECAY, TREATMENTS, catalogue_entry, pollutant_classes

AT = datetime(2024, 5, 14, 10, 0, tzinfo=timezone(timedelta(hours=8)))

#: GB 3838-2002 Table 2 (Fe, Mn) and Table 3 items 71-80, mg/L.
SOURCE_LIMITS = {
    "Fe": 0.3, "Mn": 0.1, "Mo": 0.07, "Co": 1.0, "Be": 0.002, "B": 0.5, "Sb": 0.005, "Ni": 0.02, "Ba": 0.7,
    "V": 0.05, "Ti": 0.1, "Tl": 0.0001,
}


@pytest.mark.parametrize(("name", "limit"), sorted(SOURCE_LIMITS.items()))
def test_drinking_water_source_items_carry_their_table_limit(name: str, limit: float) -> None:
    assert drinking_source_limit(name) == limit
    assert catalogue_entry(name).drinking_limit == limit
    # held to it where the target class allows a drinking-water source (I–III), not below
    assert gb3838_limit(name, WaterClass.III) == limit
    assert gb3838_limit(name, WaterClass.IV) is None
    assert exceedance_multiple(name, 3 * limit, WaterClass.II) == pytest.approx(2.0)
    # a limit, not a class scale: the section class is left to the Table 1 items
    assert classify(name, 100 * limit) is None
    assert section_class({name: 100 * limit, "NH3N": 0.3}) is WaterClass.II


def test_table_1_items_use_class_iii_where_water_is_drawn() -> None:
    assert drinking_source_limit("Cd") == 0.005
    assert drinking_source_limit("NH3N") == 1.0
    assert drinking_source_limit("DO") is None  # a minimum, not a load
    assert drinking_source_limit("TN") is None  # not assessed for rivers


def test_every_pollutant_parameter_has_a_label_a_treatment_and_a_sourced_decay() -> None:
    for name, spec in PARAMETERS.items():
        if spec.pollutant_class is PollutantClass.NONE:
            continue
        entry = catalogue_entry(name)
        assert entry.pollutant_class.label_zh, name
        assert entry.pollutant_class.label_en, name
        assert entry.treatment.source, name
        assert entry.decay.source, name
        assert entry.decay.per_day >= 0, name
    assert set(DECAY) <= set(PARAMETERS)
    assert set(TREATMENTS) <= set(PARAMETERS)
    assert all(t.source for t in (*TREATMENTS.values(), *CLASS_TREATMENTS.values()))


def test_alerts_and_playbooks_name_a_class_the_same_way() -> None:
    _, reasons = SeverityRule().assess(multiple=0.5, pollutant_class=PollutantClass.UNKNOWN, intake_hours=None)
    label = PollutantClass.UNKNOWN.label_zh
    assert any(r.zh.startswith(f"{label} → 升") for r in reasons)
    assert pollutant("unknown").name_zh.startswith(label)
    assert pollutant("heavy_metal").name_en.startswith(PollutantClass.HEAVY_METAL.label_en)
    # iron and manganese are a treatment problem, not a toxic one: no level raise
    assert PARAMETERS["Mn"].pollutant_class is PollutantClass.METAL
    assert SeverityRule().assess(multiple=0.5, pollutant_class=PollutantClass.METAL, intake_hours=None)[0].rank == 1


def test_a_pollutant_with_its_own_treatment_overrides_its_class_card() -> None:
    assert catalogue_entry("Tl").treatment is TREATMENTS["Tl"]
    assert catalogue_entry("Cd").treatment is CLASS_TREATMENTS[PollutantClass.HEAVY_METAL]
    assert "聚合硫酸铁" in catalogue_entry("Sb").treatment.materials
    assert catalogue_entry("B").treatment.dilute  # boron cannot be precipitated: dilute and close


def test_unknown_names_and_non_pollutants_are_refused_with_the_choices() -> None:
    with pytest.raises(KeyError):
        catalogue_entry("NH4")
    with pytest.raises(UnknownFeatureError, match=r"unknown pollutant 'NH4'.*Tl.*heavy_metal"):
        pollutant("NH4")
    with pytest.raises(UnknownFeatureError, match="'discharge' is not a pollutant"):
        pollutant("discharge")
    assert PollutantClass.NONE not in pollutant_classes()


@pytest.mark.parametrize("name", ["heavy_metal", "Tl", "Sb", "Mn"])
def test_a_class_or_metal_keeps_the_concentration_it_was_given(name: str) -> None:
    playbook = build_playbook(load_network("jialing"), station_id="jialing-bamiaogou", pollutant=name, at=AT,
                              concentration=0.004)
    assert playbook.concentration == 0.004
    first = playbook.receptors[0]
    assert first.peak_concentration is not None
    assert 0 < first.peak_concentration <= 0.004
