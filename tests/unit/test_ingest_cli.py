"""``riverguard parse``: readings on stdout, one reason per rejected payload on stderr, exit 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from ingest.codecs import encode_hj212, frame_of
from ingest.hj212 import build_frame, split_frame
from pipeline.cli import app
from riverguard.models import Measurement, Reading, SourceFormat
from riverguard.stations import load_registry

REGISTRY = load_registry()
STATION = REGISTRY.by_id["tuo-sanhuangmiao"]
READING = Reading(station_id=STATION.station_id, river="tuo", time=datetime(2024, 1, 5, 2, 30, tzinfo=UTC),
                  values={"pH": Measurement(value=7.5), "NH3N": Measurement(value=0.4)},
                  source_format=SourceFormat.HJ212, section=STATION.section)


def run(*args: str) -> tuple[int, list[str], list[str]]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout.splitlines(), result.stderr.splitlines()


def test_parse_json_lines(tmp_path: Path) -> None:
    good = '{"station_id": "tuo-hongyuan", "time": "2024-01-05T10:30:00", "values": {"pH": 7.5}}'
    path = tmp_path / "payloads.jsonl"
    path.write_text(f"{good}\n\n{good}\n")
    code, out, err = run("parse", str(path), "--format", "json")
    assert (code, err) == (0, [])
    assert [json.loads(line)["station_id"] for line in out] == ["tuo-hongyuan", "tuo-hongyuan"]
    path.write_text(f"{good}\n{{broken\n" + good.replace("7.5", "15") + "\n")
    code, out, err = run("parse", str(path))
    assert code == 2
    assert len(out) == 1
    assert [line.split(": ")[1:3] for line in err] == [["line 2", "bad_json"], ["line 3", "out_of_range"]]


def test_parse_concatenated_hj212_frames_with_a_split_message(tmp_path: Path) -> None:
    parts = b"".join(build_frame(f) for f in split_frame(frame_of(READING, STATION), 2))
    path = tmp_path / "frames.txt"
    path.write_bytes(encode_hj212(READING, STATION) + parts)
    code, out, err = run("parse", str(path), "--format", "hj212")
    assert (code, err) == (0, [])
    assert [Reading.model_validate_json(line) for line in out] == [READING, READING]
    path.write_bytes(encode_hj212(READING, STATION).replace(b"7.5", b"7.6") + parts[: len(parts) // 2])
    code, out, err = run("parse", str(path), "--format", "hj212")
    assert (code, out) == (2, [])
    assert "frame 1: hj212_crc" in err[0]
    assert "frame 2: split_incomplete" in err[1]


def test_a_wrong_length_field_does_not_swallow_the_next_lines_frame(tmp_path: Path) -> None:
    good = encode_hj212(READING, STATION)
    too_long = b"##9000" + good[6:]
    too_short = b"##0010" + good[6:]
    path = tmp_path / "frames.log"
    path.write_bytes(too_long + good + too_short + good)
    code, out, err = run("parse", str(path), "--format", "hj212")
    assert code == 2
    assert [Reading.model_validate_json(line) for line in out] == [READING, READING]
    assert [line.split(": ")[1:3] for line in err] == [["frame 1", "hj212_length"], ["frame 3", "hj212_length"]]


def test_a_megabyte_of_garbage_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "noise.log"
    path.write_bytes(b"#" * 1_000_000 + b"\n" + encode_hj212(READING, STATION))
    code, out, err = run("parse", str(path), "--format", "hj212")
    assert code == 2
    assert [Reading.model_validate_json(line) for line in out] == [READING]
    assert len(err) == 1
    assert "frame 1: hj212_frame" in err[0]


def test_parse_reports_an_unreadable_file(tmp_path: Path) -> None:
    code, _, err = run("parse", str(tmp_path / "missing"))
    assert code == 2
    assert "cannot read" in err[0]
