"""The embedded demo, run in-process on a short simulated span: real codecs, detectors, alert stage,
playbooks and Apprise (to local files), checked against the simulator's ground truth."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest import EventKind, InjectedEvent, Spill
from pipeline.cli import app
from pipeline.demo import DemoOptions, run_demo
from pipeline.report import DemoReport, DetectionLine
from riverguard.incidents import Route
from riverguard.settings import Settings
from riverguard.stations import load_registry


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoReport, Path]:
    out = tmp_path_factory.mktemp("demo")
    options = DemoOptions(out=out, warmup=timedelta(hours=6))
    report = asyncio.run(run_demo(options, Settings(), load_registry()))
    return report, out


def test_spill_is_detected_at_its_station_then_downstream(demo_run: tuple[DemoReport, Path]) -> None:
    report, _ = demo_run
    assert report.ok, report.problems
    assert report.spill.station_id == "tuo-hongyuan"
    first_at: dict[str, datetime] = {}
    for line in report.spill_detections:
        first_at.setdefault(line.station_id, line.time)
        assert "NH3N" in line.parameters
        assert line.delay is not None
        assert timedelta(0) <= line.delay <= timedelta(hours=3)
    assert list(first_at)[:2] == ["tuo-hongyuan", "tuo-sanhuangmiao"]
    assert first_at["tuo-sanhuangmiao"] > first_at["tuo-hongyuan"] + timedelta(hours=6)
    assert report.readings > 0
    assert report.dead_letters == 0


def test_exactly_one_pollution_incident_for_the_spill(demo_run: tuple[DemoReport, Path]) -> None:
    report, _ = demo_run
    [incident] = report.spill_incidents
    assert incident.route is Route.POLLUTION
    assert incident.stations[:2] == ("tuo-hongyuan", "tuo-sanhuangmiao")
    assert incident.level_reasons
    same = [i for i in report.other_incidents
            if i.route is Route.POLLUTION and i.river == "tuo" and i.pollutant == "NH3N"
            and {"tuo-hongyuan", "tuo-sanhuangmiao"} & set(i.stations)]
    assert same == []


def test_chinese_sms_with_the_incident_id_was_delivered(demo_run: tuple[DemoReport, Path]) -> None:
    report, out = demo_run
    [incident] = report.spill_incidents
    lines = (out / "notifications-sms.jsonl").read_text(encoding="utf-8").splitlines()
    bodies = [json.loads(line)["body"] for line in lines]
    mine = [b for b in bodies if incident.incident_id in b]
    assert mine, bodies
    assert "预警】沱江 宏缘站 氨氮超标" in mine[0]
    sent = [n for n in report.notifications if n.incident_id == incident.incident_id and n.channel == "sms"]
    assert sent[0].outcome == "sent"
    assert sent[0].first_line == mine[0]


def test_playbook_html_embeds_the_map(demo_run: tuple[DemoReport, Path]) -> None:
    report, out = demo_run
    html = [p for p in report.playbook_files if p.suffix == ".html"]
    assert html
    assert html[0].parent == out
    text = html[0].read_text(encoding="utf-8")
    assert "<svg" in text
    assert "tuo-hongyuan" in html[0].name or "宏缘" in text
    assert {p.suffix for p in report.playbook_files} >= {".md", ".json", ".png", ".svg", ".geojson"}


def test_report_names_what_is_missing() -> None:
    start = datetime(2024, 7, 1, tzinfo=UTC)
    spill = Spill("tuo", "NH3N", start, timedelta(hours=1), 8.0, station_id="tuo-hongyuan")
    arrival = InjectedEvent(EventKind.SPILL_ARRIVAL, "tuo-hongyuan", start, start + timedelta(hours=1), "NH3N")
    background = DetectionLine(start, "tuo-damozi", "大磨子", "limit_exceedance", ("TP",), "")
    report = DemoReport(spill, [arrival], [background], [], [], [], [], 10, 0, start, start + timedelta(hours=2))
    assert not report.ok
    assert "was not detected there" in report.problems[0]
    assert "tuo-hongyuan" in report.problems[0]
    assert any("no pollution incident" in p for p in report.problems)
    assert report.to_json()["ok"] is False


def test_cli_rejects_a_station_off_the_river(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--station", "min-pengshan", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert "--station 'min-pengshan' is not on the tuo" in result.output


def test_cli_rejects_a_bad_duration(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--warmup", "two days", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--warmup" in result.output


def test_run_all_rejects_an_unknown_stage() -> None:
    result = CliRunner().invoke(app, ["run", "all", "--skip", "bridge"])
    assert result.exit_code == 2
    assert "unknown stage(s) bridge" in result.output


def test_one_target_for_every_route_in_a_storm_of_faults_still_gets_every_spill_page(tmp_path: Path) -> None:
    """Issue 16 in the demo: one duty phone with every tag, instrument faults on, a Tuo NH3N spill."""
    out = tmp_path / "desk"
    options = DemoOptions(out=out, warmup=timedelta(hours=6), after=timedelta(hours=6), faults=True,
                          single_target=True)
    report = asyncio.run(run_demo(options, Settings(), load_registry()))
    assert report.ok, report.problems
    [incident] = report.spill_incidents
    spill = [n for n in report.notifications if n.incident_id == incident.incident_id]
    assert spill
    assert {n.outcome for n in spill} == {"sent"}
    assert any(i.route is Route.MAINTENANCE for i in report.other_incidents)
    assert any(n.route == "maintenance" and n.outcome == "sent" for n in report.notifications)
    summaries = [n for n in report.notifications if n.reason == "summary"]
    assert all(n.route == "maintenance" and incident.incident_id not in n.covers for n in summaries)
    lines = [json.loads(line) for line in (out / "notifications-desk.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == sum(n.outcome == "sent" for n in report.notifications)
    # stamped with the simulated time of the send, not the wall clock of the run
    assert all(report.simulated_from <= datetime.fromisoformat(line["at"]) <= report.simulated_to for line in lines)
    assert {"opened", "level_raised"} <= {n.reason for n in spill}
