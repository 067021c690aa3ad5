"""Playbook content, action cards and golden files of the rendered documents.

Regenerate the golden files after an intended change with
``RIVERGUARD_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_playbook_documents.py`` and review the diff.
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from playbooks import (
    SAFETY_MARGIN,
    Playbook,
    build_playbook,
    load_network,
    playbook_json,
    render_html,
    render_markdown,
    render_sms,
)
from playbooks.render import SMS_LIMIT_UCS2
from riverguard.parameters import PollutantClass

GOLDEN = Path(__file__).parents[1] / "golden" / "playbooks"
CST = timezone(timedelta(hours=8))
AT = datetime(2024, 5, 14, 10, 0, tzinfo=CST)

CASES: dict[str, dict[str, Any]] = {
    "tuo-sanhuangmiao-NH3N": {
        "river": "tuo",
        "station_id": "tuo-sanhuangmiao",
        "pollutant": "NH3N",
        "concentration": 3.2,
    },
    "jialing-bamiaogou-Cd": {
        "river": "jialing",
        "station_id": "jialing-bamiaogou",
        "pollutant": "Cd",
        "concentration": 0.02,
        "discharge_m3s": 450.0,
    },
    "min-maanshan-petroleum": {"river": "min", "station_id": "min-maanshan", "pollutant": "petroleum"},
}


def _build(case: str) -> Playbook:
    args: dict[str, Any] = dict(CASES[case])
    river = str(args.pop("river"))
    return build_playbook(load_network(river), at=AT, **args)


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("RIVERGUARD_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with RIVERGUARD_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_documents(case: str) -> None:
    playbook = _build(case)
    _check_golden(f"{case}.zh.md", render_markdown(playbook))
    _check_golden(f"{case}.en.md", render_markdown(playbook, "en"))
    _check_golden(f"{case}.json", json.dumps(playbook_json(playbook), ensure_ascii=False, indent=2) + "\n")
    _check_golden(f"{case}.sms.txt", render_sms(playbook) + "\n" + render_sms(playbook, "en") + "\n")


def test_json_lists_receptor_arrivals_in_iso_8601() -> None:
    data = playbook_json(_build("tuo-sanhuangmiao-NH3N"))
    first = data["receptors"][0]
    assert first["name"] == "资阳城区取水口"
    assert first["kind"] == "intake"
    intake = next(i for i in load_network("tuo").intakes if i.name == "资阳城区取水口")
    assert first["river_km"] == intake.river_km
    assert first["distance_km"] == pytest.approx(intake.river_km - data["station_km"])
    assert datetime.fromisoformat(first["leading_edge_at"]).utcoffset() == timedelta(hours=8)
    assert first["leading_edge_at"] < first["peak_at"] < first["trailing_edge_at"]
    assert first["peak_concentration"] > 0
    assert data["nearest_intake"] == "资阳城区取水口"


def test_receptors_are_ordered_downstream_with_consistent_bands() -> None:
    playbook = _build("tuo-sanhuangmiao-NH3N")
    kms = [r.river_km for r in playbook.receptors]
    assert kms == sorted(kms)
    for r in playbook.receptors:
        assert r.leading_edge_fast_at <= r.leading_edge_at <= r.leading_edge_slow_at
        assert r.leading_edge_at < r.peak_at < r.trailing_edge_at
    peaks = [r.peak_concentration for r in playbook.receptors]
    assert all(a is not None and b is not None and a >= b for a, b in itertools.pairwise(peaks))
    # everything below the horizon is named, nothing is dropped silently
    network = load_network("tuo")
    downstream = [i.name for i in network.intakes if i.river_km > playbook.station_km]
    listed = {r.name for r in playbook.receptors} | set(playbook.beyond_horizon)
    assert set(downstream) <= listed


def test_higher_discharge_brings_the_plume_sooner() -> None:
    network = load_network("tuo")
    slow = build_playbook(network, station_id="tuo-sanhuangmiao", pollutant="NH3N", at=AT, discharge_m3s=160.0)
    fast = build_playbook(network, station_id="tuo-sanhuangmiao", pollutant="NH3N", at=AT, discharge_m3s=420.0)
    assert slow.nearest_intake is not None
    assert fast.nearest_intake is not None
    assert fast.nearest_intake.peak_at < slow.nearest_intake.peak_at


def test_heavy_metal_card_doses_and_closes_intakes_with_deadlines() -> None:
    playbook = _build("jialing-bamiaogou-Cd")
    assert playbook.pollutant_class is PollutantClass.HEAVY_METAL
    dosing = next(a for a in playbook.actions if "石灰" in a.what_zh and a.what_zh.startswith("在"))
    assert dosing.where == "上石盘电站"
    intake = playbook.nearest_intake
    assert intake is not None
    close = next(a for a in playbook.actions if a.where == intake.name)
    assert "关闭" in close.what_zh
    assert close.deadline == intake.leading_edge_fast_at - SAFETY_MARGIN
    assert "guangyuan-supply" in close.apprise_tags
    assert [a.order for a in playbook.actions] == list(range(1, len(playbook.actions) + 1))
    deadlines = [a.deadline for a in playbook.actions if a.deadline is not None]
    assert deadlines == sorted(deadlines)
    assert any(s.name.startswith("陕西段铅锌矿") for s in playbook.suspected_sources)


def test_oil_card_uses_booms_and_sorbents() -> None:
    playbook = _build("min-maanshan-petroleum")
    assert any("围油栏" in a.what_zh for a in playbook.actions)
    assert any(a.what_zh.startswith("从") and "围油栏" in a.what_zh for a in playbook.actions)


@pytest.mark.parametrize(
    ("pollutant", "expected"),
    [("TP", "除磷"), ("pH", "中和"), ("PFAS", "全氟化合物"), ("unknown", "全分析"), ("NH3N", "活性炭")],
)
def test_each_pollutant_class_gets_its_card(pollutant: str, expected: str) -> None:
    playbook = build_playbook(load_network("min"), station_id="min-pengshan", pollutant=pollutant, at=AT)
    assert any(expected in a.what_zh for a in playbook.actions), [a.what_zh for a in playbook.actions]


def test_organic_card_asks_upstream_reservoir_for_dilution() -> None:
    playbook = build_playbook(load_network("min"), station_id="min-pengshan", pollutant="COD", at=AT)
    assert any("紫坪铺" in a.what_zh and "下泄" in a.what_zh for a in playbook.actions)


def test_suspected_sources_match_pollutant_and_lie_upstream() -> None:
    playbook = build_playbook(load_network("min"), station_id="min-hekoudukou", pollutant="Cd", at=AT)
    names = [s.name for s in playbook.suspected_sources]
    assert names[:2] == ["沙湾冶金区（经大渡河汇入）", "眉山冶金工业园区"]
    assert all(s.river_km <= playbook.station_km for s in playbook.suspected_sources)
    assert all(s.match == "pollutant" for s in playbook.suspected_sources[:2])


@pytest.mark.parametrize("river", ["min", "tuo", "jialing"])
def test_sms_fits_two_segments(river: str) -> None:
    # every station (their names and intakes differ) and every card (their verbs differ)
    network = load_network(river)
    cases = [(site.station_id, "NH3N") for site in network.stations] + [
        (network.stations[0].station_id, p) for p in ("Cd", "Tl", "petroleum", "TP", "pH", "PFAS", "unknown")
    ]
    for station_id, pollutant in cases:
        playbook = build_playbook(network, station_id=station_id, pollutant=pollutant, at=AT, concentration=12.5)
        text = render_sms(playbook)
        assert len(text) <= SMS_LIMIT_UCS2, text
        assert text.startswith(f"【{network.name_zh}水质预警】")


def test_html_is_self_contained_and_escaped() -> None:
    playbook = _build("tuo-sanhuangmiao-NH3N")
    page = render_html(playbook, map_svg='<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    assert "<?xml" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "资阳城区取水口" in page


def test_bad_inputs_are_rejected() -> None:
    network = load_network("tuo")
    with pytest.raises(ValueError, match="timezone-aware"):
        build_playbook(network, station_id="tuo-damozi", pollutant="NH3N", at=datetime(2024, 5, 14, 10))
    with pytest.raises(ValueError, match="concentration must be a finite non-negative number, got -1"):
        build_playbook(network, station_id="tuo-damozi", pollutant="NH3N", at=AT, concentration=-1)
    with pytest.raises(Exception, match="unknown pollutant 'NH4'"):
        build_playbook(network, station_id="tuo-damozi", pollutant="NH4", at=AT)
    with pytest.raises(Exception, match="'temperature' is not a pollutant"):
        build_playbook(network, station_id="tuo-damozi", pollutant="temperature", at=AT)


def test_english_sms_asks_to_close_now_when_the_deadline_has_passed() -> None:
    # 凉姜沟 is a few km above the Yibin intake: its deadline (fast leading edge − 1 h) has passed
    playbook = build_playbook(load_network("min"), station_id="min-liangjianggou", pollutant="Tl", at=AT,
                              concentration=0.001)
    intake = playbook.nearest_intake
    assert intake is not None
    step = next(a for a in playbook.actions if a.where == intake.name)
    assert step.deadline is not None
    assert step.deadline <= AT  # the deadline has passed
    english = render_sms(playbook, "en")
    assert "close now" in english
    assert "by now" not in english
    assert "立即关闭" in render_sms(playbook)
