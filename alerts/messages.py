"""Message text per channel: SMS (≤ 2 segments), IM markdown, e-mail HTML; Chinese or English.

Every message carries the incident id and the ack link. SMS length: Chinese text goes as UCS-2,
70 characters in one segment and 67 per segment when concatenated, so two segments hold 134;
English GSM-7 holds 2 × 153. When a text is longer, the optional parts go first (ack link, then
the arrival clock time) — never the incident id.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from alerts.intakes import IntakeOutlook, clock, incident_outlook
from alerts.playbook_source import PlaybookView
from riverguard.incidents import Channel, Incident, NotificationReason, OutboxEntry, Route
from riverguard.parameters import PARAMETERS

SMS_LIMIT: Final = {"zh": 134, "en": 306}

_RIVERS: Final = {"min": ("岷江", "Min River"), "tuo": ("沱江", "Tuo River"), "jialing": ("嘉陵江", "Jialing River")}
_LEVEL_EN: Final = {"blue": "BLUE", "yellow": "YELLOW", "orange": "ORANGE", "red": "RED"}
_STATUS: Final = {"open": ("未确认", "unacknowledged"), "acknowledged": ("已确认", "acknowledged"),
                  "resolved": ("已解除", "resolved")}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    body_format: str  # "text", "markdown" or "html" (Apprise NotifyFormat values)
    attachment_png: bytes | None = None


@dataclass(frozen=True)
class MessageContext:
    """What the shell knows beyond the incident: names, links, the playbook."""

    language: str = "zh"
    ack_url: str = ""
    playbook_url: str = ""
    station_names: Mapping[str, str] = field(default_factory=dict)
    playbook: PlaybookView | None = None
    playbook_html: str | None = None
    map_png: bytes | None = None


def river_name(river: str, lang: str) -> str:
    zh, en = _RIVERS.get(river, (river, river))
    return zh if lang == "zh" else en


def pollutant_name(parameter: str, lang: str) -> str:
    spec = PARAMETERS.get(parameter)
    if spec is None:
        return "不明污染物" if lang == "zh" and parameter == "unknown" else parameter
    return spec.name_zh if lang == "zh" else spec.name_en


def _prefix(incident: Incident, entry: OutboxEntry, lang: str) -> str:
    level = incident.level.label_zh + "预警" if lang == "zh" else _LEVEL_EN[incident.level.value] + " alert"
    if incident.route is Route.MAINTENANCE:
        level = "运维" if lang == "zh" else "MAINTENANCE"
    tags_zh = {
        NotificationReason.OPENED: "",
        NotificationReason.LEVEL_RAISED: "升级·",
        NotificationReason.ESCALATION: f"逐级上报{entry.stage}·",
        NotificationReason.REMINDER: f"第{entry.stage}次提醒·",
        NotificationReason.REOPENED: "再次出现·",
        NotificationReason.RESOLVED: "已解除·",
        NotificationReason.SUMMARY: "限流汇总·",
    }
    tags_en = {
        NotificationReason.OPENED: "",
        NotificationReason.LEVEL_RAISED: "RAISED ",
        NotificationReason.ESCALATION: f"ESCALATION {entry.stage} ",
        NotificationReason.REMINDER: f"REMINDER {entry.stage} ",
        NotificationReason.REOPENED: "REOPENED ",
        NotificationReason.RESOLVED: "RESOLVED ",
        NotificationReason.SUMMARY: "SUMMARY ",
    }
    return f"【{tags_zh[entry.reason]}{level}】" if lang == "zh" else f"[{tags_en[entry.reason]}{level}] "


def _station(incident: Incident, ctx: MessageContext) -> str:
    latest = incident.stations[-1] if incident.stations else incident.first_station
    return ctx.station_names.get(latest, latest)


def _intake(incident: Incident, lang: str, now: datetime, with_clock: bool) -> str:
    """``，约2.5小时(16:55)到达X`` or ``，已到达X``; nothing when no intake lies ahead or its time is unknown."""
    ahead = incident_outlook(incident, now)
    if ahead is None:
        return ""
    return ("，" if lang == "zh" else "; ") + ahead.describe(lang, with_clock=with_clock)


def title(incident: Incident, entry: OutboxEntry, lang: str) -> str:
    river = river_name(incident.river, lang)
    pollutant = pollutant_name(incident.pollutant, lang)
    if incident.route is Route.MAINTENANCE:
        what = f"{incident.first_station} {incident.kind.value}"
    elif incident.peak_multiple is not None:
        what = f"{pollutant}超标{incident.peak_multiple:.1f}倍" if lang == "zh" else (
            f"{pollutant} {incident.peak_multiple:.1f}× over limit"
        )
    else:
        what = f"{pollutant}异常" if lang == "zh" else f"{pollutant} anomaly"
    return f"{_prefix(incident, entry, lang)}{river} {what} {incident.incident_id}"


def sms(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> str:
    """Short text: river, station, pollutant, 超标 N 倍, level, nearest intake and arrival, id, ack link."""
    lang = ctx.language
    river, station = river_name(incident.river, lang), _station(incident, ctx)
    pollutant = pollutant_name(incident.pollutant, lang)
    if entry.reason is NotificationReason.SUMMARY:
        return _fit([_prefix(incident, entry, lang), held_back(entry, lang)], [], lang)
    if incident.route is Route.MAINTENANCE:
        what = f"{station}站 {incident.kind.value}" if lang == "zh" else f"station {station}: {incident.kind.value}"
    elif incident.peak_multiple is not None:
        what = (f"{river} {station}站 {pollutant}超标{incident.peak_multiple:.1f}倍" if lang == "zh"
                else f"{river} {station}: {pollutant} {incident.peak_multiple:.1f}x over limit")
    else:
        what = f"{river} {station}站 {pollutant}异常" if lang == "zh" else f"{river} {station}: {pollutant} anomaly"
    if entry.reason is NotificationReason.RESOLVED:
        ident = incident.incident_id
        tail = f"，已恢复正常。事件{ident}" if lang == "zh" else f" back to normal. {ident}"
        return _fit([_prefix(incident, entry, lang), what, tail], [], lang)
    ident = f"。事件{incident.incident_id}" if lang == "zh" else f". Incident {incident.incident_id}"
    ack = f" 确认:{ctx.ack_url}" if lang == "zh" else f" Ack: {ctx.ack_url}"
    with_clock = _intake(incident, lang, now, with_clock=True)
    without_clock = _intake(incident, lang, now, with_clock=False)
    for intake, link in ((with_clock, ack), (without_clock, ack), (with_clock, ""), (without_clock, "")):
        text = f"{_prefix(incident, entry, lang)}{what}{intake}{ident}{link if ctx.ack_url else ''}"
        if len(text) <= SMS_LIMIT[lang]:
            return text
    return _fit([_prefix(incident, entry, lang), what, ident], [], lang)


def held_back(entry: OutboxEntry, lang: str) -> str:
    """The summary of a storm: how many notifications the rate limit held back, for which incidents."""
    count, _, incidents = entry.note.partition(": ")
    if lang == "zh":
        return f"限流期间有{count}条通知未发送，涉及事件：{incidents}"
    return f"{count} notifications held back by the rate limit, incidents: {incidents}"


def _fit(parts: list[str], optional: list[str], lang: str) -> str:
    text = "".join(parts)
    for extra in optional:
        if len(text) + len(extra) <= SMS_LIMIT[lang]:
            text += extra
    return text


def _facts(incident: Incident, ctx: MessageContext, now: datetime) -> list[tuple[str, str]]:
    zh = ctx.language == "zh"
    stations = " → ".join(ctx.station_names.get(s, s) for s in incident.stations) or incident.first_station
    status_zh, status_en = _STATUS[incident.status.value]
    facts = [
        ("事件" if zh else "Incident", f"{incident.incident_id} ({status_zh if zh else status_en})"),
        ("河流" if zh else "River", river_name(incident.river, ctx.language)),
        ("站点" if zh else "Stations", stations),
        ("污染物" if zh else "Pollutant", pollutant_name(incident.pollutant, ctx.language)),
    ]
    if incident.peak_value is not None:
        multiple = "" if incident.peak_multiple is None else (
            f"，超标 {incident.peak_multiple:.1f} 倍" if zh else f", {incident.peak_multiple:.1f}× over the limit"
        )
        facts.append(("峰值" if zh else "Peak", f"{incident.peak_value:g} {incident.unit}{multiple}"))
    ahead = incident_outlook(incident, now)
    if ahead is not None:
        facts.append(("最近取水口" if zh else "Nearest intake", _intake_fact(ahead, zh)))
    why = "；".join(r.zh for r in incident.level_reasons) if zh else "; ".join(r.en for r in incident.level_reasons)
    facts.append(("级别依据" if zh else f"Why {incident.level.value}", why))
    facts.append(("开始时间" if zh else "Opened", clock(incident.opened_at)))
    if incident.silenced_by:
        facts.append(("静默" if zh else "Silenced", incident.silenced_by))
    return facts


def _intake_fact(ahead: IntakeOutlook, zh: bool) -> str:
    if not ahead.arrived:
        hours = max(ahead.hours, 0.1)
        return (f"{ahead.name}，预计 {clock(ahead.arrival_at)} 到达（约 {hours:.1f} 小时）" if zh
                else f"{ahead.name}, plume expected {clock(ahead.arrival_at)} (~{hours:.1f} h)")
    if ahead.passes_at is None:
        return f"{ahead.name}，污染团已到达" if zh else f"{ahead.name}, the plume is there now"
    return (f"{ahead.name}，污染团已到达，预计 {clock(ahead.passes_at)} 前后通过" if zh
            else f"{ahead.name}, the plume is there now, expected to pass by {clock(ahead.passes_at)}")


def _actions(ctx: MessageContext) -> list[str]:
    if ctx.playbook is None:
        return []
    zh = ctx.language == "zh"
    lines = []
    for step in ctx.playbook.actions:
        deadline = f"[{'截止' if zh else 'by'} {clock(step.deadline)}] " if step.deadline else ""
        what = step.what_zh if zh else step.what_en
        lines.append(f"{step.order}. {deadline}{what} — {step.who} @ {step.where}")
    return lines


def markdown(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> str:
    """IM text (DingTalk / WeCom / Feishu): the facts, why this level, the action list, links."""
    zh = ctx.language == "zh"
    lines = [f"### {title(incident, entry, ctx.language)}", ""]
    if entry.reason is NotificationReason.SUMMARY:
        lines.append(held_back(entry, ctx.language))
    lines.extend(f"- **{k}**：{v}" if zh else f"- **{k}**: {v}" for k, v in _facts(incident, ctx, now))
    actions = _actions(ctx)
    if actions and entry.reason is not NotificationReason.RESOLVED:
        lines += ["", "**处置措施**" if zh else "**Actions**", *actions]
    links = []
    if ctx.playbook_url:
        links.append(f"[{'处置方案（一河一策一图）' if zh else 'Response playbook'}]({ctx.playbook_url})")
    if ctx.ack_url and entry.reason is not NotificationReason.RESOLVED:
        links.append(f"[{'确认接警' if zh else 'Acknowledge'}]({ctx.ack_url})")
    if links:
        lines += ["", "  ".join(links)]
    return "\n".join(lines)


def email_html(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> str:
    """The facts and links on top, then the playbook document when there is one."""
    zh = ctx.language == "zh"
    facts = _facts(incident, ctx, now)
    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    links = ""
    if ctx.ack_url and entry.reason is not NotificationReason.RESOLVED:
        links += f"<p><a href='{html.escape(ctx.ack_url)}'>{'确认接警' if zh else 'Acknowledge'}</a></p>"
    if ctx.playbook_url:
        label = "处置方案（一河一策一图）" if zh else "Response playbook"
        links += f"<p><a href='{html.escape(ctx.playbook_url)}'>{label}</a></p>"
    actions = "".join(f"<li>{html.escape(a)}</li>" for a in _actions(ctx))
    playbook = ctx.playbook_html or (f"<ol>{actions}</ol>" if actions else "")
    head = html.escape(title(incident, entry, ctx.language))
    return f"<html><body><h2>{head}</h2><table>{rows}</table>{links}<hr/>{playbook}</body></html>"


def render(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> Message:
    """The message for ``entry``'s channel."""
    head = title(incident, entry, ctx.language)
    if entry.channel is Channel.SMS:
        return Message("", sms(incident, entry, ctx, now), "text")  # SMS gateways prepend a title
    if entry.channel is Channel.EMAIL:
        return Message(head, email_html(incident, entry, ctx, now), "html", ctx.map_png)
    return Message(head, markdown(incident, entry, ctx, now), "markdown")
