"""The map (一图): river, stations, plume now and later, receptors by arrival time, resources.

Rendered offline with matplotlib (no tiles): a PNG for messages, an SVG (text kept as text) for
the HTML playbook, and GeoJSON of the same features for GIS tools. Chinese labels need a CJK
font (Debian: ``fonts-noto-cjk`` or ``fonts-wqy-zenhei``); without one the map falls back to
ASCII labels (station ids, English names) instead of drawing empty boxes.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib import font_manager

from playbooks.clock import clock, stamp
from playbooks.models import Playbook, ReceptorArrival
from playbooks.network import RiverNetwork

log = logging.getLogger(__name__)

CJK_FONTS: Final = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "WenQuanYi Zen Hei",
    "Source Han Sans SC",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)
#: Arrival buckets (hours after the alert) and their colours, nearest first.
ARRIVAL_COLOURS: Final = ((6.0, "#d62728"), (12.0, "#ff7f0e"), (24.0, "#e6b800"), (48.0, "#9acd32"))
_LATER: Final = "#9e9e9e"
_PLUME_COLOURS: Final = ("#b2182b", "#ef6548", "#fdae6b", "#fee391")


@dataclass(frozen=True, slots=True)
class PlaybookMap:
    png: bytes
    svg: str
    geojson: dict[str, Any]


@cache
def cjk_font() -> str | None:
    """The first installed CJK font family, or ``None``."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in CJK_FONTS if name in installed), None)
    if found is not None:
        # WenQuanYi registers only weight 500; matplotlib warns on every label without this.
        logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    else:
        log.warning("no CJK font found (install fonts-noto-cjk or fonts-wqy-zenhei); map labels fall back to ASCII")
    return found


def render_map(playbook: Playbook, network: RiverNetwork) -> PlaybookMap:
    """Draw the playbook's map and collect the same features as GeoJSON."""
    plumes: list[tuple[float, tuple[float, float] | None]] = [
        (span.hours, (span.from_km, span.to_km)) for span in playbook.plume
    ]
    geojson = _geojson(playbook, network, plumes)
    font = cjk_font()
    rc: Any = {
        "font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"],
        "svg.fonttype": "none",
        "svg.hashsalt": "riverguard",
        "axes.unicode_minus": False,
    }
    with plt.rc_context(rc):
        figure = _draw(playbook, network, plumes, font is not None)
        png, svg = io.BytesIO(), io.StringIO()
        figure.savefig(png, format="png", dpi=110, metadata={"Software": None})
        figure.savefig(svg, format="svg", metadata={"Date": None})
        plt.close(figure)
    return PlaybookMap(png.getvalue(), svg.getvalue(), geojson)


def arrival_colour(receptor: ReceptorArrival, at: Any) -> str:
    hours = (receptor.leading_edge_at - at).total_seconds() / 3600.0
    return next((colour for limit, colour in ARRIVAL_COLOURS if hours <= limit), _LATER)


def _draw(
    playbook: Playbook, network: RiverNetwork, plumes: list[tuple[float, tuple[float, float] | None]], cjk: bool
) -> Any:
    at = playbook.at

    def label(text: str, fallback: str = "") -> str:
        return text if cjk or text.isascii() else fallback

    figure, axes = plt.subplots(figsize=(9, 10))
    mid_lat = sum(p.lat for p in network.course) / len(network.course)
    axes.set_aspect(1.0 / math.cos(math.radians(mid_lat)))
    for reach in network.chain:
        xs, ys = _line(network, reach.from_km, reach.to_km)
        axes.plot(
            xs,
            ys,
            color="#6baed6" if reach.reservoir else "#2171b5",
            linewidth=6 if reach.reservoir else 3,
            solid_capstyle="round",
            zorder=1,
        )
    for junction in network.junctions:
        x, y = network.coordinates(junction)
        if junction.upstream_lon is not None and junction.upstream_lat is not None:
            axes.plot([junction.upstream_lon, x], [junction.upstream_lat, y], color="#2171b5", linewidth=1.5, zorder=1)
            axes.annotate(
                label(junction.name, junction.name_en),
                (junction.upstream_lon, junction.upstream_lat),
                fontsize=8,
                color="#2171b5",
                ha="center",
                va="bottom",
            )
    for (hours, span), colour in zip(plumes, _PLUME_COLOURS, strict=False):
        if span is None:
            continue
        xs, ys = _line(network, span[0], max(span[1], span[0] + 0.5))
        axes.plot(
            xs,
            ys,
            color=colour,
            linewidth=11,
            alpha=0.75,
            solid_capstyle="round",
            zorder=2,
            label=(f"污染团 +{hours:g} h" if cjk else f"plume +{hours:g} h"),
        )
    _release_reach(axes, playbook, network, cjk)
    for source in network.risk_sources:
        x, y = network.coordinates(source)
        axes.scatter([x], [y], marker="X", s=60, color="#7b3294", zorder=4)
        axes.annotate(
            label(source.name),
            (x, y),
            xytext=(-6, -10),
            textcoords="offset points",
            fontsize=7,
            color="#7b3294",
            ha="right",
        )
    for depot in network.depots:
        x, y = network.coordinates(depot)
        axes.scatter([x], [y], marker="D", s=45, color="#1a9850", edgecolor="white", zorder=4)
    for point in network.interception_points:
        x, y = network.coordinates(point)
        axes.scatter([x], [y], marker="s", s=50, color="#252525", zorder=5)
        axes.annotate(
            label(point.name), (x, y), xytext=(6, -4), textcoords="offset points", fontsize=7, color="#252525"
        )
    for site in network.stations:
        x, y = network.coordinates(site)
        alerting = site.station_id == playbook.station_id
        axes.scatter(
            [x],
            [y],
            marker="*" if alerting else "^",
            s=320 if alerting else 60,
            color="#e31a1c" if alerting else "#08519c",
            edgecolor="black",
            linewidth=0.6,
            zorder=6,
        )
        axes.annotate(
            label(site.name, site.station_id),
            (x, y),
            xytext=(-8, 4),
            textcoords="offset points",
            fontsize=9 if alerting else 8,
            ha="right",
            weight="bold" if alerting else "normal",
        )
    reached = {r.name: r for r in playbook.receptors if r.kind == "intake"}
    for intake in network.intakes:
        x, y = network.coordinates(intake)
        receptor = reached.get(intake.name)
        colour = arrival_colour(receptor, at) if receptor is not None else "white"
        axes.scatter([x], [y], marker="o", s=90, color=colour, edgecolor="black", linewidth=1, zorder=7)
        text = label(intake.name)
        if receptor is not None:
            text = f"{text} {clock(receptor.leading_edge_at, at)}".strip()
        axes.annotate(
            text,
            (x, y),
            xytext=(8, 4),
            textcoords="offset points",
            fontsize=8,
            zorder=8,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour, "alpha": 0.85},
        )
    _legend(axes, cjk)
    river = playbook.river_name_zh if cjk else network.name_en or playbook.river
    what = playbook.pollutant_name_zh if cjk else playbook.pollutant
    station = label(playbook.station_name, playbook.station_id)
    axes.set_title(f"{river} · {station} · {what} · {stamp(at)}", fontsize=12)
    axes.set_xlabel("经度 lon (°E)" if cjk else "lon (°E)")
    axes.set_ylabel("纬度 lat (°N)" if cjk else "lat (°N)")
    note = "位置为近似值，无底图（离线）" if cjk else "approximate positions; no base map (offline)"
    axes.text(0.01, 0.01, note, transform=axes.transAxes, fontsize=7, color="#555555")
    _scale_bar(axes, mid_lat)
    axes.grid(color="#eeeeee", linewidth=0.5)
    figure.tight_layout()
    return figure


def _release_reach(axes: Any, playbook: Playbook, network: RiverNetwork, cjk: bool) -> None:
    """The likely release reach (溯源), shaded under the river, in the risk sources' colour."""
    release = playbook.release
    if release is None:
        return
    xs, ys = _line(network, release.km_low, max(release.km_high, release.km_low + 0.5))
    axes.plot(xs, ys, color="#7b3294", linewidth=16, alpha=0.25, solid_capstyle="round", zorder=1,
              label="疑似排放河段" if cjk else "likely release reach")


def _legend(axes: Any, cjk: bool) -> None:
    def words(zh: str, en: str) -> str:
        return zh if cjk else en

    for limit, colour in ARRIVAL_COLOURS:
        axes.scatter(
            [],
            [],
            marker="o",
            s=60,
            color=colour,
            edgecolor="black",
            label=words(f"取水口 ≤{limit:g} h 到达", f"intake, arrives ≤{limit:g} h"),
        )
    axes.scatter([], [], marker="o", s=60, color=_LATER, edgecolor="black", label=words("取水口 更晚", "intake, later"))
    axes.scatter(
        [], [], marker="*", s=150, color="#e31a1c", edgecolor="black", label=words("预警断面", "alerting station")
    )
    axes.scatter([], [], marker="^", s=50, color="#08519c", label=words("监测断面", "station"))
    axes.scatter([], [], marker="s", s=40, color="#252525", label=words("拦截点", "interception point"))
    axes.scatter([], [], marker="D", s=40, color="#1a9850", label=words("应急物资库", "material depot"))
    axes.scatter([], [], marker="X", s=50, color="#7b3294", label=words("风险源", "risk source"))
    axes.plot([], [], color="#6baed6", linewidth=6, label=words("库区/壅水段", "reservoir reach"))
    axes.legend(loc="upper right", fontsize=7, framealpha=0.9)


def _scale_bar(axes: Any, lat: float) -> None:
    x0, x1 = axes.get_xlim()
    y0, y1 = axes.get_ylim()
    km = 20.0
    degrees = km / (111.32 * math.cos(math.radians(lat)))
    x, y = x0 + 0.05 * (x1 - x0), y0 + 0.06 * (y1 - y0)
    axes.plot([x, x + degrees], [y, y], color="black", linewidth=2)
    axes.text(x + degrees / 2, y + 0.01 * (y1 - y0), f"{km:g} km", ha="center", fontsize=7)


def _line(network: RiverNetwork, from_km: float, to_km: float) -> tuple[list[float], list[float]]:
    kms = [from_km, *(p.river_km for p in network.course if from_km < p.river_km < to_km), to_km]
    points = [network.position(km) for km in kms]
    return [p[0] for p in points], [p[1] for p in points]


def _geojson(
    playbook: Playbook, network: RiverNetwork, plumes: list[tuple[float, tuple[float, float] | None]]
) -> dict[str, Any]:
    at = playbook.at
    features: list[dict[str, Any]] = []

    def point(coordinates: tuple[float, float], **properties: Any) -> None:
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(coordinates)},
                "properties": properties,
            }
        )

    def line(start_km: float, end_km: float, **properties: Any) -> None:
        xs, ys = _line(network, start_km, end_km)
        features.append(
            {
                "type": "Feature",
                "properties": properties,
                "geometry": {"type": "LineString", "coordinates": [[x, y] for x, y in zip(xs, ys, strict=True)]},
            }
        )

    for reach in network.chain:
        line(
            reach.from_km,
            reach.to_km,
            kind="reach",
            id=reach.id,
            name=reach.name,
            reservoir=reach.reservoir,
            from_km=reach.from_km,
            to_km=reach.to_km,
        )
    for hours, span in plumes:
        if span is not None:
            line(
                span[0],
                max(span[1], span[0] + 0.5),
                kind="plume",
                hours_ahead=hours,
                from_km=span[0],
                to_km=span[1],
                at=(at + timedelta(hours=hours)).isoformat(),
            )
    release = playbook.release
    if release is not None:
        line(
            release.km_low,
            max(release.km_high, release.km_low + 0.5),
            kind="release_reach",
            from_km=release.km_low,
            to_km=release.km_high,
            km_best=release.km_best,
            start_low=release.start_low.isoformat(),
            start_high=release.start_high.isoformat(),
            mass_kg=release.mass_kg,
        )
    receptors = {(r.kind, r.name): r for r in playbook.receptors}
    for site in network.stations:
        point(
            network.coordinates(site),
            kind="station",
            station_id=site.station_id,
            name=site.name,
            city=site.city,
            river_km=site.river_km,
            alerting=site.station_id == playbook.station_id,
            estimated_position=site.estimated_position,
        )
    for intake in network.intakes:
        extra = _arrival_properties(receptors.get(("intake", intake.name)))
        point(
            network.coordinates(intake),
            kind="intake",
            name=intake.name,
            city=intake.city,
            river_km=intake.river_km,
            population=intake.population,
            estimated_position=intake.estimated_position,
            **extra,
        )
    for cp in network.interception_points:
        extra = _arrival_properties(receptors.get(("interception", cp.name)))
        point(
            network.coordinates(cp),
            kind="interception",
            name=cp.name,
            city=cp.city,
            river_km=cp.river_km,
            structure=cp.kind,
            capabilities=list(cp.capabilities),
            **extra,
        )
    for depot in network.depots:
        point(
            network.coordinates(depot),
            kind="depot",
            name=depot.name,
            city=depot.city,
            river_km=depot.river_km,
            materials=list(depot.materials),
        )
    suspected = {s.name for s in playbook.suspected_sources}
    for source in network.risk_sources:
        point(
            network.coordinates(source),
            kind="risk_source",
            name=source.name,
            city=source.city,
            river_km=source.river_km,
            source_kind=source.kind,
            pollutants=list(source.pollutants),
            suspected=source.name in suspected,
        )
    for junction in network.junctions:
        point(network.coordinates(junction), kind="confluence", name=junction.name, river_km=junction.river_km)
    return {
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "river": playbook.river,
            "station_id": playbook.station_id,
            "pollutant": playbook.pollutant,
            "at": at.isoformat(),
            "approximate": True,
        },
    }


def _arrival_properties(receptor: ReceptorArrival | None) -> dict[str, Any]:
    if receptor is None:
        return {}
    return {
        "leading_edge_at": receptor.leading_edge_at.isoformat(),
        "peak_at": receptor.peak_at.isoformat(),
        "trailing_edge_at": receptor.trailing_edge_at.isoformat(),
        "peak_concentration": receptor.peak_concentration,
    }
