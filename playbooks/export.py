"""Writing a playbook's documents and map to a directory (the imperative shell of the package)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from playbooks.clock import local
from playbooks.errors import PlaybookError
from playbooks.models import Playbook
from playbooks.network import RiverNetwork
from playbooks.render import Lang, playbook_json, render_html, render_markdown, render_sms

if TYPE_CHECKING:
    from playbooks.geomap import PlaybookMap

FORMATS: Final = ("md", "html", "json", "sms", "png", "svg", "geojson")
_MAP_FORMATS: Final = frozenset({"html", "png", "svg", "geojson"})


def playbook_stem(playbook: Playbook) -> str:
    """``playbook-<river>-<station>-<pollutant>-<YYYYmmddHHMM>`` (local time), stable per alert."""
    return f"playbook-{playbook.river}-{playbook.station_id}-{playbook.pollutant}-{local(playbook.at):%Y%m%d%H%M}"


def write_playbook(
    playbook: Playbook,
    network: RiverNetwork,
    out_dir: Path,
    formats: Sequence[str] = ("md", "html", "json"),
    lang: Lang = "zh",
) -> list[Path]:
    """Write the chosen formats (md, html, json, sms, png, svg, geojson); return the paths written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PlaybookError(f"unknown playbook formats {unknown}; choose from {', '.join(FORMATS)}")
    chart: PlaybookMap | None = None
    if _MAP_FORMATS & set(formats):
        from playbooks.geomap import render_map  # matplotlib: loaded only when a map is drawn

        chart = render_map(playbook, network)
    contents: dict[str, str | bytes] = {}
    for fmt in formats:
        if fmt == "md":
            contents["md"] = render_markdown(playbook, lang)
        elif fmt == "html":
            contents["html"] = render_html(playbook, lang, map_svg=chart.svg if chart else None)
        elif fmt == "json":
            contents["json"] = json.dumps(playbook_json(playbook), ensure_ascii=False, indent=2) + "\n"
        elif fmt == "sms":
            contents["sms.txt"] = render_sms(playbook, lang) + "\n"
        elif chart is not None and fmt == "png":
            contents["png"] = chart.png
        elif chart is not None and fmt == "svg":
            contents["svg"] = chart.svg
        elif chart is not None:
            contents["geojson"] = json.dumps(chart.geojson, ensure_ascii=False, indent=1) + "\n"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlaybookError(f"cannot create output directory {out_dir}: {exc.strerror}") from exc
    stem = playbook_stem(playbook)
    written = []
    for suffix, content in contents.items():
        path = out_dir / f"{stem}.{suffix}"
        try:
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        except OSError as exc:
            raise PlaybookError(f"cannot write {path}: {exc.strerror}") from exc
        written.append(path)
    return written
