"""What an HJ 212 factor code means: its canonical parameter and the unit the standard gives it."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.codecs import Hj212Codec, encode_hj212
from ingest.codetable import WATER
from ingest.hj212 import crc16
from riverguard.errors import ConfigError, PayloadError
from riverguard.models import Measurement, Reading, SourceFormat
from riverguard.parameters import PARAMETERS, WaterClass, exceedance_multiple, gb3838_limit
from riverguard.stations import StationRegistry, load_registry

STATION: dict[str, Any] = {"station_id": "s1", "mn": "MN0001", "river": "tuo", "section": "x", "city": "y",
                           "parameters": ["pH", "Cd", "Pb", "discharge", "NH3N"]}


def registry(**station: Any) -> StationRegistry:
    return StationRegistry.model_validate({"stations": [STATION | station]})


def frame(cp: str, mn: str = "MN0001", cn: str = "2011") -> bytes:
    raw = f"QN=20240105103000000;ST=21;CN={cn};PW=123456;MN={mn};Flag=4;CP=&&DataTime=20240105103000;{cp}&&".encode()
    return b"##%04d%s%04X\r\n" % (len(raw), raw, crc16(raw))


def values(cp: str, stations: StationRegistry | None = None) -> dict[str, Measurement]:
    [reading] = Hj212Codec().decode(frame(cp), topic="", registry=stations or registry())
    return reading.values


def test_heavy_metals_are_read_in_the_tables_micrograms_per_litre() -> None:
    # Cd 0.8 µg/L is a clean class II value, not 0.8 mg/L (160 times the class III limit).
    read = values("w20115-Rtd=0.8;w20111-Rtd=0.05;w20117-Rtd=12;w20119-Rtd=3.1;w20120-Rtd=4")
    assert read["Cd"].value == pytest.approx(0.0008)
    assert read["Hg"].value == pytest.approx(0.00005)
    assert read["Cr6"].value == pytest.approx(0.012)
    assert read["As"].value == pytest.approx(0.0031)
    assert read["Pb"].value == pytest.approx(0.004)
    assert exceedance_multiple("Cd", read["Cd"].value, WaterClass.III) == 0.0


def test_the_registry_unit_wins_over_the_table() -> None:
    read = values("w20115-Rtd=0.8", registry(units={"Cd": "mg/L"}))
    assert read["Cd"].value == pytest.approx(0.8)


def test_wastewater_flow_is_in_litres_per_second_unless_the_registry_says_otherwise() -> None:
    assert values("w00000-Rtd=50")["discharge"].value == pytest.approx(0.05)  # m³/s
    assert values("w00000-Rtd=50", registry(units={"discharge": "m3/s"}))["discharge"].value == 50
    assert values("w00000-Rtd=50", registry(units={"discharge": "L/s"}))["discharge"].value == pytest.approx(0.05)


def test_the_registry_rejects_a_unit_that_does_not_fit_the_parameter() -> None:
    with pytest.raises(ValueError, match="'ug/L' of pH"):
        registry(units={"pH": "ug/L"})
    with pytest.raises(ValueError, match="'mg/L' of discharge is not one of m3/s"):
        registry(units={"discharge": "mg/L"})


def test_hj212_2005_numeric_codes_are_accepted_in_the_2005_units() -> None:
    read = values("011-Rtd=18.2;060-Rtd=0.42;101-Rtd=0.11;B01-Rtd=20;001-Rtd=7.3;022-Rtd=0.002;003-Rtd=12")
    assert read["COD"].value == 18.2
    assert read["NH3N"].value == 0.42
    assert read["TP"].value == 0.11
    assert read["pH"].value == 7.3
    assert read["discharge"].value == pytest.approx(0.02)
    assert read["Cd"].value == 0.002  # the 2005 table gives concentrations in mg/L
    assert read["w01012"].value == 12  # suspended solids: no canonical name, the 2017 code keeps it


def test_surface_water_metal_codes_get_canonical_names_and_limits() -> None:
    names = {code: WATER[code].parameter for code in ("w20138", "w20139", "w20140", "w20141", "w20142", "w20143",
                                                      "w20144")}
    assert names == {"w20138": "Cu", "w20139": "Zn", "w20140": "Se", "w20141": "As", "w20142": "Hg", "w20143": "Cd",
                     "w20144": "Pb"}
    assert all(gb3838_limit(name, WaterClass.III) is not None for name in names.values() if name)
    read = values("w20143-Rtd=8;w20140-Rtd=0.015;w20144-Rtd=0.06")
    assert exceedance_multiple("Cd", read["Cd"].value, WaterClass.III) == pytest.approx(0.6)  # 8 µg/L vs 5
    assert exceedance_multiple("Se", read["Se"].value, WaterClass.III) == pytest.approx(0.5)
    assert read["Pb"].value == pytest.approx(0.06)  # w20144 is in mg/L, unlike w20120


def test_a_numeric_code_outside_the_table_keeps_its_value_under_a_valid_name() -> None:
    read = values("w01001-Rtd=7.2;831-Rtd=3")
    assert read["pH"].value == 7.2
    assert read["hj212.831"].value == 3


def test_two_codes_of_one_parameter_are_rejected_naming_both() -> None:
    with pytest.raises(PayloadError) as caught:
        values("w20115-Rtd=0.8;w20143-Rtd=0.9")
    assert caught.value.code == "schema"
    assert "w20115 and w20143 both report Cd" in caught.value.message


def test_the_simulators_frames_use_the_table_units_and_decode_back() -> None:
    stations = load_registry()
    station = next(s for s in stations.stations if "Pb" in s.parameters and "Pb" not in s.units)
    reading = Reading(station_id=station.station_id, river=station.river, time="2024-01-05T02:30:00Z",
                      values={"Pb": Measurement(value=0.004)}, source_format=SourceFormat.HJ212)
    raw = encode_hj212(reading, station)
    assert b"w20120-Rtd=4," in raw  # µg/L on the wire
    [decoded] = Hj212Codec().decode(raw, topic="", registry=stations)
    assert decoded.values["Pb"].value == pytest.approx(0.004)


def test_every_canonical_name_in_the_table_is_a_parameter() -> None:
    assert {f.parameter for f in WATER.values() if f.parameter} <= PARAMETERS.keys()


def test_the_catalogues_codes_name_the_same_parameter_in_the_table() -> None:
    codes = {p.hj212_code: p.name for p in PARAMETERS.values() if p.hj212_code}
    assert {code: WATER[code].parameter for code in codes} == codes


def test_thallium_and_beryllium_are_read_in_the_tables_units() -> None:
    read = values("w20089-Rtd=80;w20127-Rtd=1.5", registry(parameters=["Tl", "Be"]))
    assert read["Tl"].value == pytest.approx(8e-5)  # ng/L
    assert read["Be"].value == pytest.approx(0.0015)  # µg/L


def test_a_registry_file_with_a_bad_unit_names_it(tmp_path: Any) -> None:
    path = tmp_path / "stations.yaml"
    path.write_text("stations:\n- {station_id: s1, mn: M, river: tuo, section: x, city: y, parameters: [TP],"
                    " units: {TP: L/s}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'L/s' of TP"):
        load_registry(path)
