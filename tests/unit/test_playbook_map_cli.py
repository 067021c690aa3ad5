"""The map (PNG/SVG/GeoJSON), written files and the ``riverguard playbook`` command."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from pipeline.cli import app
from playbooks import build_playbook, load_network, render_map, write_playbook

AT = datetime(2024, 5, 14, 10, 0, tzinfo=timezone(timedelta(hours=8)))
EXAMPLE = Path(__file__).parents[2] / "playbooks" / "networks" / "example.yaml"


def test_plume_moves_downstream_and_spreads() -> None:
    network = load_network("tuo")
    playbook = build_playbook(network, station_id="tuo-sanhuangmiao", pollutant="NH3N", at=AT)
    now, _, later = playbook.plume
    assert (now.hours, later.hours) == (0.0, 24.0)
    assert now.from_km < playbook.station_km < now.to_km  # centred on the station at the alert
    assert later.from_km > now.from_km
    assert later.to_km > now.to_km
    assert later.to_km - later.from_km > now.to_km - now.from_km


def test_map_png_svg_and_geojson_are_sane() -> None:
    network = load_network("tuo")
    playbook = build_playbook(network, station_id="tuo-sanhuangmiao", pollutant="NH3N", at=AT, concentration=3.2)
    chart = render_map(playbook, network)
    image = Image.open(io.BytesIO(chart.png))
    assert image.format == "PNG"
    assert image.size[0] > 600
    assert image.size[1] > 600
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # drawn, not blank
    assert chart.svg.lstrip().startswith("<?xml")
    assert "资阳城区取水口" in chart.svg or "tuo-sanhuangmiao" in chart.svg
    kinds = [f["properties"]["kind"] for f in chart.geojson["features"]]
    assert kinds.count("station") == 7
    assert kinds.count("plume") == 3
    assert kinds.count("intake") == 7
    intake = next(f for f in chart.geojson["features"] if f["properties"].get("name") == "资阳城区取水口")
    expected = next(r for r in playbook.receptors if r.name == "资阳城区取水口").leading_edge_at
    assert intake["properties"]["leading_edge_at"] == expected.isoformat()
    lon, lat = intake["geometry"]["coordinates"]
    assert 104 < lon < 106
    assert 29 < lat < 31


def test_write_playbook_writes_every_format(tmp_path: Path) -> None:
    network = load_network("min")
    playbook = build_playbook(network, station_id="min-pengshan", pollutant="Cd", at=AT, concentration=0.03)
    paths = write_playbook(playbook, network, tmp_path, ("md", "html", "json", "sms", "png", "svg", "geojson"))
    assert sorted(p.name.split(".", 1)[1] for p in paths) == ["geojson", "html", "json", "md", "png", "sms.txt", "svg"]
    html = next(p for p in paths if p.suffix == ".html").read_text(encoding="utf-8")
    assert "<svg" in html
    assert paths[0].name.startswith("playbook-min-min-pengshan-Cd-202405141000")


def test_cli_prints_json_with_receptors() -> None:
    result = CliRunner().invoke(
        app,
        [
            "playbook",
            "--river",
            "tuo",
            "--station",
            "tuo-sanhuangmiao",
            "--pollutant",
            "NH3N",
            "--at",
            "2024-05-14T10:00+08:00",
            "--concentration",
            "3.2",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    same = build_playbook(
        load_network("tuo"), station_id="tuo-sanhuangmiao", pollutant="NH3N", at=AT, concentration=3.2
    )
    assert data["receptors"][0]["leading_edge_at"] == same.receptors[0].leading_edge_at.isoformat()
    assert data["station_id"] == "tuo-sanhuangmiao"


def test_cli_writes_files_and_accepts_a_network_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "playbook",
            "--network",
            str(EXAMPLE),
            "--station",
            "fu-mianyang",
            "--pollutant",
            "petroleum",
            "--at",
            "2024-05-14T10:00+08:00",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    suffixes = sorted(Path(line).name.split(".", 1)[1] for line in result.output.split())
    assert suffixes == ["geojson", "html", "json", "md", "png", "sms.txt", "svg"]


def test_cli_errors_name_the_problem(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["playbook", "--station", "tuo-damozi", "--pollutant", "NH3N", "--at", "2024-05-14T10:00"]
    )
    assert result.exit_code == 2
    assert "has no UTC offset" in result.output
    result = runner.invoke(
        app, ["playbook", "--station", "nowhere", "--pollutant", "NH3N", "--at", "2024-05-14T10:00Z"]
    )
    assert result.exit_code == 2
    assert "station 'nowhere' is on none of the networks" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text(encoding="utf-8").replace("downstream: fu-r2", "downstream: fu-r7"), encoding="utf-8"
    )
    result = runner.invoke(app, ["playbook-network", "check", str(bad)])
    assert result.exit_code == 2
    assert "'fu-r1' names downstream reach 'fu-r7', which does not exist" in result.output
