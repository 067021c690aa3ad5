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

from alerts.catalogue import Language, Text, alert_label, level_name, pick, reason_tag, say, status_name
from alerts.intakes import IntakeOutlook, clock, incident_outlook
from alerts.playbook_source import PlaybookView
from alerts.rivers import shipped_river_names
from riverguard.incidents import Channel, Incident, NotificationReason, OutboxEntry, Route
from riverguard.parameters import PARAMETERS

SMS_LIMIT: Final[Mapping[Language, int]] = {"zh": 134, "en": 306}


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    body_format: str  # "text", "markdown" or "html" (Apprise NotifyFormat values)
    attachment_png: bytes | None = None


@dataclass(frozen=True)
class MessageContext:
    """What the shell knows beyond the incident: names, links, the playbook.

    ``rivers`` are the names of the river networks the service loaded (:func:`alerts.rivers.river_names`).
    """

    language: Language = "zh"
    ack_url: str = ""
    playbook_url: str = ""
    station_names: Mapping[str, str] = field(default_factory=dict)
    rivers: Mapping[str, Text] = field(default_factory=shipped_river_names)
    playbook: PlaybookView | None = None
    playbook_html: str | None = None
    map_png: bytes | None = None

    def river(self, river: str) -> str:
        """The river's name in the message language; its id when no network names it."""
        name = self.rivers.get(river)
        return river if name is None else name(self.language)


def pollutant_name(parameter: str, lang: Language) -> str:
    spec = PARAMETERS.get(parameter)
    if spec is None:
        return say(lang, "pollutant.unknown") if parameter == "unknown" else parameter
    return pick(lang, spec.name_zh, spec.name_en)


def _prefix(incident: Incident, entry: OutboxEntry, lang: Language) -> str:
    level = alert_label(incident.level) if incident.route is Route.POLLUTION else say(lang, "maintenance.label")
    return say(lang, "message.prefix", reason=reason_tag(entry.reason).format(lang, stage=entry.stage), level=level)
def _station(incident: Incident, ctx: MessageContext) -> str:
    latest = incident.stations[-1] if incident.stations else incident.first_station
    return ctx.station_names.get(latest, latest)


def _intake(incident: Incident, lang: Language, now: datetime, with_clock: bool) -> str:
    """``，约2.5小时(16:55)到达X`` or ``，已到达X``; nothing when no intake lies ahead or its time is unknown."""
    ahead = incident_outlook(incident, now)
    if ahead is None:
        return ""
    return say(lang, "sms.intake", arrival=ahead.describe(lang, with_clock=with_clock))


def title(incident: Incident, entry: OutboxEntry, ctx: MessageContext) -> str:
    lang = ctx.language
    pollutant = pollutant_name(incident.pollutant, lang)
    if incident.route is Route.MAINTENANCE:
        what = say(lang, "title.maintenance", station=incident.first_station, kind=incident.kind.value)
    elif incident.peak_multiple is not None:
        what = say(lang, "title.exceedance", pollutant=pollutant, multiple=incident.peak_multiple)
    else:
        what = say(lang, "title.anomaly", pollutant=pollutant)
    return f"{_prefix(incident, entry, lang)}{ctx.river(incident.river)} {what} {incident.incident_id}"


def sms(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> str:
    """Short text: river, station, pollutant, 超标 N 倍, level, nearest intake and arrival, id, ack link."""
    lang = ctx.language
    prefix = _prefix(incident, entry, lang)
    if entry.reason is NotificationReason.SUMMARY:
        return prefix + held_back(entry, lang)
    where = {"river": ctx.river(incident.river), "station": _station(incident, ctx),
             "pollutant": pollutant_name(incident.pollutant, lang)}
    if incident.route is Route.MAINTENANCE:
        what = say(lang, "sms.maintenance", station=where["station"], kind=incident.kind.value)
    elif incident.peak_multiple is not None:
        what = say(lang, "sms.exceedance", **where, multiple=incident.peak_multiple)
    else:
        what = say(lang, "sms.anomaly", **where)
    if entry.reason is NotificationReason.RESOLVED:
        return prefix + what + say(lang, "sms.resolved", incident=incident.incident_id)
    ident = say(lang, "sms.incident", incident=incident.incident_id)
    ack = say(lang, "sms.ack", url=ctx.ack_url) if ctx.ack_url else ""
    with_clock = _intake(incident, lang, now, with_clock=True)
    without_clock = _intake(incident, lang, now, with_clock=False)
    for intake, link in ((with_clock, ack), (without_clock, ack), (with_clock, ""), (without_clock, "")):
        text = f"{prefix}{what}{intake}{ident}{link}"
        if len(text) <= SMS_LIMIT[lang]:
            return text
    return prefix + what + ident


def held_back(entry: OutboxEntry, lang: Language) -> str:
    """The summary of a storm: how many notifications the rate limit held back, for which incidents."""
    count, _, incidents = entry.note.partition(": ")
    return say(lang, "summary.held_back", count=count, incidents=incidents)


def _facts(incident: Incident, ctx: MessageContext, now: datetime) -> list[tuple[str, str]]:
    lang = ctx.language
    stations = " → ".join(ctx.station_names.get(s, s) for s in incident.stations) or incident.first_station
    status = status_name(incident.status)(lang)
    facts = [
        (say(lang, "fact.incident"), f"{incident.incident_id} ({status})"),
        (say(lang, "fact.river"), ctx.river(incident.river)),
        (say(lang, "fact.stations"), stations),
        (say(lang, "fact.pollutant"), pollutant_name(incident.pollutant, lang)),
    ]
    if incident.peak_value is not None:
        multiple = "" if incident.peak_multiple is None else say(
            lang, "fact.peak.multiple", multiple=incident.peak_multiple
        )
        facts.append((say(lang, "fact.peak"), f"{incident.peak_value:g} {incident.unit}{multiple}"))
    ahead = incident_outlook(incident, now)
    if ahead is not None:
        facts.append((say(lang, "fact.intake"), _intake_fact(ahead, lang)))
    why = say(lang, "list.separator").join(pick(lang, r.zh, r.en) for r in incident.level_reasons)
    facts.append((say(lang, "fact.why", level=level_name(incident.level)), why))
    facts.append((say(lang, "fact.opened"), clock(incident.opened_at)))
    if incident.silenced_by:
        facts.append((say(lang, "fact.silenced"), incident.silenced_by))
    return facts


def _intake_fact(ahead: IntakeOutlook, lang: Language) -> str:
    if not ahead.arrived:
        hours = max(ahead.hours, 0.1)
        return say(lang, "intake.ahead", name=ahead.name, clock=clock(ahead.arrival_at), hours=hours)
    if ahead.passes_at is None:
        return say(lang, "intake.arrived", name=ahead.name)
    return say(lang, "intake.passing", name=ahead.name, clock=clock(ahead.passes_at))


def _actions(ctx: MessageContext) -> list[str]:
    if ctx.playbook is None:
        return []
    lang = ctx.language
    lines = []
    for step in ctx.playbook.actions:
        deadline = say(lang, "action.deadline", clock=clock(step.deadline)) if step.deadline else ""
        what = pick(lang, step.what_zh, step.what_en)
        lines.append(f"{step.order}. {deadline}{what} — {step.who} @ {step.where}")
    return lines


def markdown(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> str:
    """IM text (DingTalk / WeCom / Feishu): the facts, why this level, the action list, links."""
    lang = ctx.language
    lines = [f"### {title(incident, entry, ctx)}", ""]
    if entry.reason is NotificationReason.SUMMARY:
        lines.append(held_back(entry, lang))
    lines.extend(say(lang, "fact.line", label=k, value=v) for k, v in _facts(incident, ctx, now))
    actions = _actions(ctx)
    if actions and entry.reason is not NotificationReason.RESOLVED:
        lines += ["", say(lang, "actions.heading"), *actions]
    links = []
    if ctx.playbook_url:
        links.append(f"[{say(lang, 'link.playbook')}]({ctx.playbook_url})")
    if ctx.ack_url and entry.reason is not NotificationReason.RESOLVED:
        links.append(f"[{say(lang, 'link.ack')}]({ctx.ack_url})")
    if links:
        lines += ["", "  ".join(links)]
    return "\n".join(lines)


def email_html(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> str:
    """The facts and links on top, then the playbook document when there is one."""
    lang = ctx.language
    facts = _facts(incident, ctx, now)
    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    links = ""
    if ctx.ack_url and entry.reason is not NotificationReason.RESOLVED:
        links += f"<p><a href='{html.escape(ctx.ack_url)}'>{say(lang, 'link.ack')}</a></p>"
    if ctx.playbook_url:
        links += f"<p><a href='{html.escape(ctx.playbook_url)}'>{say(lang, 'link.playbook')}</a></p>"
    actions = "".join(f"<li>{html.escape(a)}</li>" for a in _actions(ctx))
    playbook = ctx.playbook_html or (f"<ol>{actions}</ol>" if actions else "")
    head = html.escape(title(incident, entry, ctx))
    return f"<html><body><h2>{head}</h2><table>{rows}</table>{links}<hr/>{playbook}</body></html>"


def render(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> Message:
    """The message for ``entry``'s channel."""
    head = title(incident, entry, ctx)
    if entry.channel is Channel.SMS:
        return Message("", sms(incident, entry, ctx, now), "text")  # SMS gateways prepend a title
    if entry.channel is Channel.EMAIL:
        return Message(head, email_html(incident, entry, ctx, now), "html", ctx.map_png)
    return Message(head, markdown(incident, entry, ctx, now), "markdown")
