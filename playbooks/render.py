"""Documents of a playbook: SMS summary, Markdown, self-contained HTML and JSON.

Chinese first (``lang="zh"``), English available (``lang="en"``); times in China Standard Time.
The Chinese SMS fits two concatenated UCS-2 segments (2 × 67 = 134 characters).
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any, Final, Literal

from playbooks.clock import clock, stamp
from playbooks.models import ActionStep, Playbook, ReceptorArrival
from playbooks.transport import BAND_FRACTION, EDGE_FRACTION

Lang = Literal["zh", "en"]
#: Two concatenated SMS segments: 67 UCS-2 characters each (Chinese), 153 GSM-7 characters each.
SMS_LIMIT_UCS2: Final = 134
SMS_LIMIT_GSM: Final = 306
JSON_SCHEMA: Final = "riverguard.playbook/1"

_KIND: Final[dict[str, tuple[str, str]]] = {
    "intake": ("取水口", "intake"),
    "station": ("监测断面", "station"),
    "interception": ("拦截点", "interception point"),
    "confluence": ("支流汇口", "confluence"),
    "outlet": ("河口", "outlet"),
}


def sms_limit(text: str) -> int:
    """Characters two segments hold: 306 for plain GSM-7 text, 134 once any other character appears."""
    return SMS_LIMIT_GSM if re.fullmatch(r"[\x20-\x7e\n]*", text) else SMS_LIMIT_UCS2


def render_sms(playbook: Playbook, lang: Lang = "zh") -> str:
    """A short alert that fits two SMS segments; less important parts drop out first.

    Required: river, time, station, pollutant (and value). Then, while it fits: the first intake
    with its arrival and deadline, the top suspected source, a pointer to the full playbook.
    """
    at = playbook.at
    zh = lang == "zh"
    value = f"{playbook.concentration:g}{playbook.unit}" if playbook.concentration is not None else ""
    if zh:
        parts = [
            f"【{playbook.river_name_zh}水质预警】{clock(at, at)}{playbook.station_name}{playbook.pollutant_name_zh}"
            f"{value}异常。"
        ]
    else:
        parts = [
            f"[{playbook.river} alert] {clock(at, at)} {playbook.station_name}: {playbook.pollutant_name_en} "
            f"{value} abnormal. ".replace("  ", " ")
        ]
    optional: list[str] = []
    intake = playbook.nearest_intake
    if intake is not None:
        step = _step_at(playbook.actions, intake.name)
        verb_zh = "关闭" if step is not None and "关闭" in step.what_zh.split("，")[0] else "强化处理"
        when = clock(step.deadline, at) if step is not None and step.deadline and step.deadline > at else None
        people_zh = f"（约{intake.population / 10_000:g}万人）" if intake.population else ""
        if zh:
            ask = f"请{when}前{verb_zh}" if when else f"请立即{verb_zh}"
            optional.append(f"{_arrives_zh(intake, at)}{intake.name}{people_zh}，{ask}。")
        else:
            verb = "close" if verb_zh == "关闭" else "treat"
            # a deadline already past is "now", never "by now"
            ask_en = f"{verb} by {when}" if when else f"{verb} now"
            optional.append(f"{_arrives_en(intake, at)} {intake.name}; {ask_en}. ")
    elif playbook.receptors:
        first = playbook.receptors[0]
        optional.append(f"{_arrives_zh(first, at)}{first.name}。" if zh else f"{_arrives_en(first, at)} {first.name}. ")
    if playbook.suspected_sources:
        source = playbook.suspected_sources[0].name
        optional.append(f"疑似源：{source}。" if zh else f"Suspect: {source}. ")
    optional.append("详见预案。" if zh else "See playbook.")
    text = parts[0]
    for part in optional:
        if len(text + part) <= sms_limit(text + part):
            text += part
    if len(text) > sms_limit(text):
        text = text[: sms_limit(text) - 1] + "…"
    return text.strip()


def _arrives_zh(receptor: ReceptorArrival, at: datetime) -> str:
    return "已抵" if receptor.leading_edge_at <= at else f"预计{clock(receptor.leading_edge_at, at)}抵"


def _arrives_en(receptor: ReceptorArrival, at: datetime) -> str:
    return "Already at" if receptor.leading_edge_at <= at else f"By {clock(receptor.leading_edge_at, at)} reaches"


def render_markdown(playbook: Playbook, lang: Lang = "zh") -> str:
    """The playbook as a Markdown document."""
    t = _Text(lang)
    at = playbook.at
    lines = [f"# {t('title', river=playbook.river_name_zh if lang == 'zh' else playbook.river)}", ""]
    for label, value in _summary(playbook, lang):
        lines.append(f"- **{label}**: {value}")
    lines += ["", f"## {t('receptors')}", ""]
    if playbook.receptors:
        lines.append("| " + " | ".join(t.receptor_header) + " |")
        lines.append("|" + "---|" * len(t.receptor_header))
        lines += ["| " + " | ".join(_md(c) for c in _receptor_row(r, at, lang)) + " |" for r in playbook.receptors]
    else:
        lines.append(t("no_receptors", h=f"{playbook.horizon_h:g}"))
    if playbook.beyond_horizon:
        lines += ["", t("beyond", h=f"{playbook.horizon_h:g}", names="、".join(playbook.beyond_horizon))]
    if playbook.station_checks:
        header, rows = _checks(playbook, lang)
        lines += ["", f"### {t('checks')}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    if playbook.corrections:
        lines += ["", _corrections(playbook, lang)]
    lines += ["", f"## {t('actions')}", ""]
    for step in playbook.actions:
        lines.append(f"{step.order}. {_step_text(step, at, lang)}")
    lines += ["", f"## {t('sources')}", ""]
    if playbook.suspected_sources:
        lines += [f"- {row}" for row in _source_rows(playbook, lang)]
    else:
        lines.append(t("no_sources"))
    lines += ["", f"## {t('departments')}", ""]
    lines += [f"- {d.city} {d.name}（{', '.join(d.apprise_tags)}）" for d in playbook.departments]
    lines += ["", f"## {t('method')}", "", _method(playbook, lang)]
    if playbook.data_quality:
        lines += ["", f"{t('data')}: {playbook.data_quality}"]
    return "\n".join(lines) + "\n"


def render_html(playbook: Playbook, lang: Lang = "zh", map_svg: str | None = None) -> str:
    """A single self-contained HTML page (inline CSS, the map's SVG inline; no external requests)."""
    t = _Text(lang)
    at = playbook.at
    e = html.escape
    title = t("title", river=playbook.river_name_zh if lang == "zh" else playbook.river)
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
        "<dl>",
    ]
    for label, value in _summary(playbook, lang):
        out.append(f"<dt>{e(label)}</dt><dd>{e(value)}</dd>")
    out.append("</dl>")
    if map_svg:
        svg = map_svg[map_svg.find("<svg") :] if "<svg" in map_svg else map_svg
        out += [f"<h2>{e(t('map'))}</h2>", f'<figure class="map">{svg}</figure>']
    out.append(f"<h2>{e(t('receptors'))}</h2>")
    if playbook.receptors:
        out.append(
            "<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.receptor_header) + "</tr></thead><tbody>"
        )
        for r in playbook.receptors:
            css = ' class="intake"' if r.kind == "intake" else ""
            out.append(f"<tr{css}>" + "".join(f"<td>{e(c)}</td>" for c in _receptor_row(r, at, lang)) + "</tr>")
        out.append("</tbody></table>")
    else:
        out.append(f"<p>{e(t('no_receptors', h=f'{playbook.horizon_h:g}'))}</p>")
    if playbook.beyond_horizon:
        out.append(f"<p>{e(t('beyond', h=f'{playbook.horizon_h:g}', names='、'.join(playbook.beyond_horizon)))}</p>")
    if playbook.station_checks:
        header, rows = _checks(playbook, lang)
        out.append(f"<h3>{e(t('checks'))}</h3><table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header))
        out.append("</tr></thead><tbody>")
        out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        out.append("</tbody></table>")
    if playbook.corrections:
        out.append(f"<p>{e(_corrections(playbook, lang))}</p>")
    out.append(f"<h2>{e(t('actions'))}</h2><ol>")
    out += [f"<li>{e(_step_text(step, at, lang))}</li>" for step in playbook.actions]
    out.append(f"</ol><h2>{e(t('sources'))}</h2>")
    if playbook.suspected_sources:
        out.append("<ul>" + "".join(f"<li>{e(row)}</li>" for row in _source_rows(playbook, lang)) + "</ul>")
    else:
        out.append(f"<p>{e(t('no_sources'))}</p>")
    out.append(f"<h2>{e(t('departments'))}</h2><ul>")
    out += [
        f"<li>{e(d.city)} {e(d.name)} <code>{e(', '.join(d.apprise_tags))}</code></li>" for d in playbook.departments
    ]
    out.append(f"</ul><h2>{e(t('method'))}</h2>")
    out.append(f"<p>{e(_method(playbook, lang))}</p>")
    if playbook.data_quality:
        out.append(f'<p class="note">{e(t("data"))}: {e(playbook.data_quality)}</p>')
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def playbook_json(playbook: Playbook) -> dict[str, Any]:
    """The machine form: every field, times as ISO 8601 with offset, plus the nearest intake."""
    data: dict[str, Any] = {"schema": JSON_SCHEMA, **playbook.model_dump(mode="json")}
    intake = playbook.nearest_intake
    data["nearest_intake"] = intake.name if intake is not None else None
    return data


def _summary(playbook: Playbook, lang: Lang) -> list[tuple[str, str]]:
    t = _Text(lang)
    value = f"{playbook.concentration:g} {playbook.unit}".strip() if playbook.concentration is not None else "—"
    name = playbook.pollutant_name_zh if lang == "zh" else playbook.pollutant_name_en
    flow = f"{playbook.discharge_m3s:g} m³/s" if playbook.discharge_m3s is not None else t("typical_flow")
    cls = playbook.pollutant_class
    kind = cls.label_zh if lang == "zh" else cls.label_en
    return [
        (
            t("station"),
            f"{playbook.station_name}（{playbook.station_id}，{playbook.station_city}，km {playbook.station_km:g}）",
        ),
        (t("pollutant"), f"{name}（{playbook.pollutant}）{value}，{t('class')} {kind}"),
        (t("time"), f"{stamp(playbook.at)}（UTC+8）"),
        (t("flow"), flow),
        (t("horizon"), f"{playbook.horizon_h:g} h"),
    ]


def _receptor_row(r: ReceptorArrival, at: Any, lang: Lang) -> list[str]:
    kind = _KIND[r.kind][0 if lang == "zh" else 1]
    name = r.name + ("*" if r.estimated_position else "")
    if r.population:
        name += f"（{r.population / 10_000:g} 万人）" if lang == "zh" else f" ({r.population:,} people)"
    concentration = (
        "—" if r.peak_concentration is None else f"{r.peak_concentration:g}" + (" ⚠" if r.exceeds_limit else "")
    )
    return [
        name,
        kind,
        r.city or "—",
        f"{r.distance_km:g}",
        clock(r.leading_edge_at, at),
        f"{clock(r.leading_edge_fast_at, at)} / {clock(r.leading_edge_slow_at, at)}",
        clock(r.peak_at, at),
        clock(r.trailing_edge_at, at),
        concentration,
    ]


def _step_text(step: ActionStep, at: Any, lang: Lang) -> str:
    deadline = (
        "—"
        if step.deadline is None
        else ("立即" if lang == "zh" else "now")
        if step.deadline <= at
        else clock(step.deadline, at)
    )
    if lang == "zh":
        return f"[{deadline}] {step.what_zh} — 责任单位：{step.who}（通知：{', '.join(step.apprise_tags) or '—'}）"
    return f"[{deadline}] {step.what_en} — by: {step.who} (notify: {', '.join(step.apprise_tags) or '—'})"


def _source_rows(playbook: Playbook, lang: Lang) -> list[str]:
    rows = []
    release = playbook.release
    if release is not None:
        at = playbook.at
        span = f"{clock(release.start_low, at)}–{clock(release.start_high, at)}"
        if lang == "zh":
            rows.append(f"溯源估计：排放位置 km {release.km_low:g}–{release.km_high:g}"
                        f"（最可能 km {release.km_best:g}），开始于 {span}，"
                        f"排放量约 {release.mass_kg:g} kg（92% 区间）")
        else:
            rows.append(f"Traced release: km {release.km_low:g}–{release.km_high:g} (most likely km "
                        f"{release.km_best:g}), starting {span}, about {release.mass_kg:g} kg (92 % intervals)")
    for s in playbook.suspected_sources:
        chance = "" if s.probability is None else f"{s.probability:.0%} "
        if lang == "zh":
            match = {"pollutant": "排放同种污染物", "class": "排放同类污染物", "other": "未登记该污染物"}[s.match]
            emits = f"，{match}：{'、'.join(s.pollutants)}" if s.pollutants else ""
            where = f"{s.city or '—'}，上游 {s.distance_km:g} km，约 {s.travel_h:g} h 流程"
            rows.append(f"{chance}{s.name}（{where}{emits}）")
        else:
            match = {"pollutant": "same pollutant", "class": "same class", "other": "not permitted for it"}[s.match]
            emits = f", {match}: {', '.join(s.pollutants)}" if s.pollutants else ""
            rows.append(f"{chance}{s.name} ({s.city or '—'}, {s.distance_km:g} km upstream, ~{s.travel_h:g} h "
                        f"travel{emits})")
    return rows


def _checks(playbook: Playbook, lang: Lang) -> tuple[list[str], list[list[str]]]:
    """Predicted (before the plume came) against observed, per station below the first that saw it."""
    at = playbook.at
    header = (
        ["断面", "距离(km)", "预测到达", "实测超标", "偏差(h)", "预测峰值", "实测峰值"]
        if lang == "zh"
        else ["Station", "km", "Predicted arrival", "First exceeded", "Error (h)", "Predicted peak", "Observed peak"]
    )
    rows = []
    for c in playbook.station_checks:
        error = c.arrival_error_h
        rows.append([
            c.name,
            f"{c.river_km:g}",
            clock(c.predicted_arrival_at, at) if c.predicted_arrival_at else "—",
            clock(c.observed_first_exceeded_at, at) if c.observed_first_exceeded_at else "—",
            "—" if error is None else f"{error:+.1f}",
            clock(c.predicted_peak_at, at) if c.predicted_peak_at else "—",
            clock(c.observed_peak_at, at) if c.observed_peak_at else "—",
        ])
    return header, rows


def _corrections(playbook: Playbook, lang: Lang) -> str:
    parts = [
        (f"{f.from_station}→{f.to_station} 流速×{f.velocity_factor:g}、弥散×{f.dispersion_factor:g}" if lang == "zh"
         else f"{f.from_station}→{f.to_station}: velocity ×{f.velocity_factor:g}, dispersion ×{f.dispersion_factor:g}")
        for f in playbook.corrections
    ]
    if lang == "zh":
        return "实时校正（按断面实测拟合，下游河段沿用最后一段）：" + "；".join(parts) + "。"
    lead = "Live correction (fitted to what the stations saw; reaches below use the last one): "
    return lead + "; ".join(parts) + "."


def _method(playbook: Playbook, lang: Lang) -> str:
    edge, band = f"{EDGE_FRACTION:.0%}", f"{BAND_FRACTION:.0%}"
    return _Text(lang)("method_text", edge=edge, band=band, pulse=f"{playbook.pulse_h:g}")


def _step_at(steps: list[ActionStep], where: str) -> ActionStep | None:
    return next((s for s in steps if s.where == where), None)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


class _Text:
    """Fixed document wording in one language."""

    _ZH: Final = {
        "title": "{river}突发水污染事件应急处置方案（一河一策一图）",
        "station": "预警断面",
        "pollutant": "污染物",
        "class": "类别",
        "time": "预警时间",
        "flow": "流量",
        "typical_flow": "未报实测流量，按典型流量计算",
        "horizon": "预测时段",
        "receptors": "一、下游受体与预计到达时间",
        "actions": "二、处置措施（一策）",
        "sources": "三、疑似污染源",
        "checks": "监测断面：预测与实测",
        "departments": "四、责任单位与通知对象",
        "method": "五、计算方法",
        "map": "一图",
        "data": "数据说明",
        "no_receptors": "预测时段 {h} h 内污染团不会到达下游受体。",
        "beyond": "预测时段 {h} h 之后才到达：{names}。",
        "no_sources": "名录中无与该污染物匹配、且在时段内可到达的上游风险源；请沿上游排查排口。",
        "method_text": (
            "一维对流—弥散方程数值解（按流经时间等分网格，对流精确、弥散 Crank–Nicolson；Fischer 纵向弥散系数；"
            "支流按汇入流量稀释；按污染物一级衰减）。前锋/尾部为浓度达到峰值 {edge} 的时刻；快/慢为流速 ±{band} "
            "时的前锋到达时间；截止时间为快速前锋到达前 1 小时。峰值浓度按预警断面实测值推算（假定污染团历时 "
            "{pulse} 小时），未计入本底。*为估计位置。"
        ),
    }
    _EN: Final = {
        "title": "{river} river water-pollution emergency playbook (one river, one plan, one map)",
        "station": "Alerting station",
        "pollutant": "Pollutant",
        "class": "class",
        "time": "Alert time",
        "flow": "Discharge",
        "typical_flow": "no live discharge; typical flows used",
        "horizon": "Horizon",
        "receptors": "1. Downstream receptors and arrival times",
        "actions": "2. Actions",
        "sources": "3. Suspected sources",
        "checks": "Stations: predicted against observed",
        "departments": "4. Departments to notify",
        "method": "5. Method",
        "map": "Map",
        "data": "Data quality",
        "no_receptors": "The plume reaches no receptor within the {h} h horizon.",
        "beyond": "Reached only after the {h} h horizon: {names}.",
        "no_sources": "No registered upstream source matches within the travel window; walk the outfalls upstream.",
        "method_text": (
            "1D advection-dispersion equation solved numerically (cells of equal travel time: exact advection, "
            "Crank-Nicolson dispersion; Fischer dispersion; dilution by tributary inflows; first-order decay per "
            "pollutant). Leading/trailing edge: concentration at {edge} of the peak; fast/slow: leading edge with "
            "velocities ±{band}; deadlines: one hour before the fast leading edge. Peak concentrations follow the "
            "observed value (assumed {pulse} h plume passage), background not included. * = estimated position."
        ),
    }

    def __init__(self, lang: Lang) -> None:
        self._words = self._ZH if lang == "zh" else self._EN
        self.receptor_header = (
            ["受体", "类型", "城市", "距离(km)", "前锋到达", "前锋 快/慢", "峰值", "尾部", "峰值浓度(mg/L)"]
            if lang == "zh"
            else [
                "Receptor",
                "Kind",
                "City",
                "Distance (km)",
                "Leading edge",
                "Leading fast/slow",
                "Peak",
                "Trailing",
                "Peak conc. (mg/L)",
            ]
        )

    def __call__(self, key: str, **values: str) -> str:
        return self._words[key].format(**values)


_CSS: Final = (
    "body{font-family:'Noto Sans CJK SC','WenQuanYi Zen Hei','Microsoft YaHei',sans-serif;margin:2em auto;"
    "max-width:70em;color:#222;line-height:1.5}h1{font-size:1.5em}dt{font-weight:bold;float:left;width:7em}"
    "dd{margin-left:8em}table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.25em .5em;"
    "text-align:left}tr.intake{background:#fff3e0}figure.map svg{width:100%;height:auto}.note{color:#666}"
)
