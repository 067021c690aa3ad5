"""Network files: the shipped rivers match the station registry; bad files fail clearly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from playbooks import (
    NetworkError,
    UnknownFeatureError,
    build_playbook,
    load_network,
    load_network_file,
    load_networks,
)
from riverguard.stations import load_registry

EXAMPLE = Path(__file__).parents[2] / "playbooks" / "networks" / "example.yaml"


@pytest.mark.parametrize("river", ["min", "tuo", "jialing"])
def test_shipped_network_stations_match_the_registry_in_order(river: str) -> None:
    network = load_network(river)
    registry = [s.station_id for s in load_registry().on_river(river)]
    assert [s.station_id for s in network.stations] == registry
    sections = {s.station_id: s.section for s in load_registry().on_river(river)}
    assert all(site.name == sections[site.station_id] for site in network.stations)


@pytest.mark.parametrize("river", ["min", "tuo", "jialing"])
def test_shipped_networks_are_complete_and_marked_approximate(river: str) -> None:
    network = load_network(river)
    assert network.intakes
    assert network.interception_points
    assert network.depots
    assert network.risk_sources
    assert all(i.estimated_position for i in network.intakes)
    assert "估计" in network.data_quality
    for intake in network.intakes:
        assert network.departments_of(intake.city, "water_supply"), intake.name


def test_jialing_cascade_is_slow() -> None:
    pools = [r for r in load_network("jialing").chain if r.reservoir]
    assert len(pools) >= 5
    assert all(0.1 <= r.velocity_ms <= 0.3 for r in pools)


def test_min_tributaries_join_at_leshan() -> None:
    network = load_network("min")
    junctions = {j.name: j.river_km for j in network.junctions}
    leshan = next(i.river_km for i in network.intakes if i.name.startswith("乐山"))
    assert abs(junctions["大渡河"] - leshan) < 5
    assert abs(junctions["青衣江"] - leshan) < 5


def test_example_file_is_a_valid_network() -> None:
    network = load_network_file(EXAMPLE)
    assert network.river == "fu-example"
    assert sorted(load_networks([EXAMPLE])) == ["fu-example", "jialing", "min", "tuo"]


def _write(tmp_path: Path, mutate: object) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert callable(mutate)
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _tributary(river_km: float, discharge_m3s: float) -> object:
    def mutate(data: dict[str, list[dict[str, object]]]) -> None:
        data["junctions"][0].update(river_km=river_km, discharge_m3s=discharge_m3s)

    return mutate


def _add_intake(river_km: float) -> object:
    def mutate(data: dict[str, list[dict[str, object]]]) -> None:
        data["intakes"].append({"name": "下游第二取水口", "city": "绵阳", "river_km": river_km})

    return mutate


def _set(key: str, index: int, field: str, value: object) -> object:
    def mutate(data: dict[str, list[dict[str, object]]]) -> None:
        data[key][index][field] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set("reaches", 0, "downstream", "fu-r9"), r"'fu-r1' names downstream reach 'fu-r9', which does not exist"),
        (_set("reaches", 0, "to_km", -5), r"reaches\['fu-r1'\]\.to_km=-5: Input should be greater than or equal to 0"),
        (_set("reaches", 1, "from_km", 70), r"reach 'fu-r2': length -10 km is not positive"),
        (_set("reaches", 1, "downstream", "fu-r1"), r"reaches form a cycle: fu-r1 → fu-r2 → fu-r1"),
        (_set("reaches", 1, "from_km", 30), r"'fu-r2' starts at km 30 but the reach above it, 'fu-r1', ends at km 25"),
        (
            _set("stations", 0, "river_km", 95),
            r"stations: 'fu-mianyang' at river-km 95 is off the chain \(reaches span km 0–60\)",
        ),
        (
            _set("intakes", 0, "city", "德阳"),
            r"intakes: '绵阳市区下游取水口（示例）' is in city '德阳', which has no departments",
        ),
        (
            _set("risk_sources", 0, "pollutants", ["NH4"]),
            r"risk_sources\['示例化工园区'\]\.pollutants=\['NH4'\]: Value error, unknown pollutants",
        ),
        (
            _set("interception_points", 0, "capabilities", ["pray"]),
            r"interception_points\['示例拦河闸'\]\.capabilities\.0",
        ),
        (_add_intake(20), r"intakes: '下游第二取水口' \(km 20\) is listed after '绵阳市区下游取水口（示例）'"),
        (_tributary(20, 300), r"'fu-r2' carries 320 m³/s, but 600 m³/s arrive from above"),
        (_set("reaches", 1, "discharge_m3s", 1000), r"'fu-r2' carries 1000 m³/s, but 300 m³/s arrive"),
    ],
    ids=[
        "unknown-reach",
        "negative-km",
        "negative-length",
        "cycle",
        "gap",
        "station-off-chain",
        "intake-city",
        "unknown-pollutant",
        "bad-capability",
        "feature-out-of-order",
        "tributary-breaks-mass-balance",
        "reach-breaks-mass-balance",
    ],
)
def test_bad_network_files_name_file_item_and_problem(tmp_path: Path, mutate: object, expected: str) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(NetworkError, match=expected) as caught:
        load_network_file(path)
    assert str(caught.value).startswith(f"network file {path}: ")


def test_two_heads_are_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, _set("reaches", 0, "downstream", None))
    with pytest.raises(NetworkError, match=r"'fu-r1', 'fu-r2' all have no upstream reach"):
        load_network_file(path)


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(NetworkError, match=r"cannot read network file .*missing\.yaml"):
        load_network_file(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("river: [unclosed", encoding="utf-8")
    with pytest.raises(NetworkError, match=r"broken\.yaml is not valid YAML"):
        load_network_file(broken)


def test_unknown_river_and_station() -> None:
    with pytest.raises(UnknownFeatureError, match="no shipped network for river 'yellow'"):
        load_network("yellow")
    with pytest.raises(UnknownFeatureError, match="station 'tuo-nowhere' is not on the tuo network"):
        load_network("tuo").station("tuo-nowhere")


def test_a_station_at_the_networks_last_km_gets_a_playbook(tmp_path: Path) -> None:
    # it used to crash with IndexError: no reach below the station
    path = _write(tmp_path, _set("stations", 0, "river_km", 60))
    network = load_network_file(path)
    at = datetime(2024, 5, 14, 10, 0, tzinfo=timezone(timedelta(hours=8)))
    playbook = build_playbook(network, station_id="fu-mianyang", pollutant="NH3N", at=at, concentration=3.0,
                              discharge_m3s=250.0)
    assert playbook.receptors == []
    assert playbook.station_km == 60
    assert any("排查" in a.what_zh for a in playbook.actions)
