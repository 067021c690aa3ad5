"""Message text per channel: SMS (≤ 2 segments), IM markdown, e-mail HTML, SMS gateway template
fields; Chinese or English (all text from :mod:`alerts.catalogue`).

Every message carries the incident id and the ack link. SMS length: Chinese text goes as UCS-2,
70 characters in one segment and 67 per segment when concatenated, so two segments hold 134;
English GSM-7 holds 2 × 153. When a text is longer, the optional parts go first (ack link, then
the intake) — never the incident id, nor the note that the data is late.

Times are written when the message is sent (``now``), as clock times: one notion of arrival, the
earliest and the expected ("最早13:20、预计14:26到达"). A message about readings processed late (a
backlog after an outage, a replay) says which reading it speaks of and how late it is.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from alerts.catalogue import (
    Language,
    Text,
    named,
    pick,
    say,
)
from alerts.intakes import CHINA, IntakeOutlook, clock, incident_outlook, intake_text
from alerts.playbook_source import PlaybookView
from alerts.rivers import shipped_river_names
from riverguard.incidents import Channel, Incident, NotificationReason, OutboxEntry, Route
from riverguard.parameters import PARAMETERS

SMS_LIMIT: Final[Mapping[Language, int]] = {"zh": 134, "en": 306}
_TOGETHER: Final = frozenset({NotificationReason.SUMMARY, NotificationReason.DIGEST})  # speak for many incidents


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    body_format: str  # "text", "markdown" or "html" (Apprise NotifyFormat values)
    attachment_png: bytes | None = None


@dataclass(frozen=True)
class MessageContext:
    """What the shell knows beyond the incident: names, links, the playbook.

    ``rivers`` are the names of the river networks the service loaded (:func:`alerts.rivers.river_names`);
    ``late_after`` is the routing file's ``lifecycle.late_after_min``.
    """

    language: Language = "zh"
    ack_url: str = ""
    playbook_url: str = ""
    station_names: Mapping[str, str] = field(default_factory=dict)
    rivers: Mapping[str, Text] = field(default_factory=shipped_river_names)
    playbook: PlaybookView | None = None
    playbook_html: str | None = None
    map_png: bytes | None = None
    late_after: timedelta = timedelta(minutes=30)

    def river(self, river: str) -> str:
        """The river's name in the message language; its id when no network names it."""
        name = self.rivers.get(river)
        return river if name is None else name(self.language)

    def station(self, station: str) -> str:
        return self.station_names.get(station, station)


def pollutant_name(parameter: str, lang: Language) -> str:
    spec = PARAMETERS.get(parameter)
    if spec is None:
        return say(lang, "pollutant.unknown") if parameter == "unknown" else parameter
    return pick(lang, spec.name_zh, spec.name_en)


def short_clock(at: datetime, now: datetime) -> str:
    """``14:26`` on the day of ``now`` (Beijing time), else ``07-04 03:01``."""
    same_day = at.astimezone(CHINA).date() == now.astimezone(CHINA).date()
    return clock(at)[6:] if same_day else clock(at)


def arrival(ahead: IntakeOutlook, lang: Language, now: datetime, *, dated: bool = False) -> str:
    """The next intake, the earliest and the expected arrival, as clock times (on the day of ``now``
    unless ``dated``: an IM message or e-mail is also read later, an SMS is short)."""
    when = clock if dated else lambda at: short_clock(at, now)
    times = {"intake": intake_text(ahead.name), "earliest": when(ahead.earliest_at), "expected": when(ahead.arrival_at)}
    if not ahead.arrived:  # a forecast without a band (an incident of an earlier release) has one time
        return say(lang, "arrival.ahead" if ahead.earliest_at < ahead.arrival_at else "arrival.expected", **times)
    if not ahead.expected_now:
        return say(lang, "arrival.possible", **times)
    if ahead.passes_at is None:
        return say(lang, "arrival.there.open", **times)
    return say(lang, "arrival.there", **times, passes=when(ahead.passes_at))


def _latest_station(incident: Incident) -> str:
    return incident.stations[-1] if incident.stations else incident.first_station


def _prefix(incident: Incident, entry: OutboxEntry, lang: Language) -> str:
    if entry.reason is NotificationReason.DIGEST:
        level: str | Text = clock(entry.created_at)[:5]
    elif incident.route is Route.MAINTENANCE:
        level = named("route", Route.MAINTENANCE)
    elif entry.reason is NotificationReason.SUMMARY:  # the carrier is the most severe incident held back
        level = say(lang, "summary.level", route=named("route", Route.POLLUTION), level=named("level", incident.level))
    else:
        level = named("alert", incident.level)
    return say(lang, "message.prefix", reason=named("tag", entry.reason).format(lang, stage=entry.stage), level=level)


def _joined(lang: Language, items: list[str]) -> str:
    return say(lang, "list.comma").join(items)


def _maintenance(incident: Incident, ctx: MessageContext) -> str:
    """``宏缘站 仪器故障、仪器维护：氨氮、总磷`` — what is wrong with one station's instruments."""
    lang = ctx.language
    kinds = _joined(lang, [named("kind", k)(lang) for k in incident.kinds or (incident.kind,)])
    parameters = _joined(lang, [pollutant_name(p, lang) for p in incident.parameters])
    station = ctx.station(incident.first_station)
    if not parameters:
        return say(lang, "maintenance.what.bare", station=station, kinds=kinds)
    return say(lang, "maintenance.what", station=station, kinds=kinds, parameters=parameters)


def _late(incident: Incident, ctx: MessageContext) -> str:
    """``（数据时间07-03 08:25，晚到3.2小时）`` when the readings came through a backlog, else nothing."""
    lag = incident.lag
    if lag is None or incident.reading_at is None or lag <= ctx.late_after:
        return ""
    return say(ctx.language, "late.note", reading=clock(incident.reading_at), hours=lag.total_seconds() / 3600)


def _together_title(entry: OutboxEntry, lang: Language) -> str:
    if entry.reason is NotificationReason.DIGEST:
        return say(lang, "digest.title", count=len({c.station for c in entry.covers}))
    return say(lang, "summary.count", count=sum(c.held for c in entry.covers), incidents=len(entry.covers))


def title(incident: Incident, entry: OutboxEntry, ctx: MessageContext) -> str:
    lang = ctx.language
    prefix = _prefix(incident, entry, lang)
    if entry.reason in _TOGETHER:
        return prefix + _together_title(entry, lang)
    pollutant = pollutant_name(incident.pollutant, lang)
    if incident.route is Route.MAINTENANCE:
        what = _maintenance(incident, ctx)
    elif incident.peak_multiple is not None:
        what = say(lang, "title.exceedance", pollutant=pollutant, multiple=incident.peak_multiple)
    else:
        what = say(lang, "title.anomaly", pollutant=pollutant)
    return f"{prefix}{ctx.river(incident.river)} {what} {incident.incident_id}"


def covered_lines(entry: OutboxEntry, ctx: MessageContext) -> list[str]:
    """One line per incident a summary or digest speaks for, most severe first."""
    lang = ctx.language
    lines = []
    for c in entry.covers:
        subject = _joined(lang, [pollutant_name(p, lang) for p in c.subject])
        if entry.reason is NotificationReason.DIGEST:
            kinds = _joined(lang, [named("kind", k)(lang) for k in c.kinds])
            lines.append(say(lang, "digest.item", station=ctx.station(c.station), kinds=kinds, subject=subject,
                             status=named("status", c.status), opened=clock(c.opened_at)))
        else:
            kinds = _joined(lang, [named("kind", k)(lang) for k in c.kinds])
            level = named("level", c.level)(lang) if c.route is Route.POLLUTION else kinds
            lines.append(say(lang, "summary.item", incident=c.incident_id, level=level, river=ctx.river(c.river),
                             station=ctx.station(c.station), subject=subject, held=c.held))
    return lines


def _what(incident: Incident, ctx: MessageContext) -> str:
    lang = ctx.language
    if incident.route is Route.MAINTENANCE:
        return _maintenance(incident, ctx)
    where = {"river": ctx.river(incident.river), "station": ctx.station(_latest_station(incident)),
             "pollutant": pollutant_name(incident.pollutant, lang)}
    if incident.peak_multiple is not None:
        return say(lang, "sms.exceedance", **where, multiple=incident.peak_multiple)
    return say(lang, "sms.anomaly", **where)


def sms(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> str:
    """Short text: river, station, pollutant, 超标 N 倍, level, nearest intake and arrival, id, ack link."""
    lang = ctx.language
    prefix = _prefix(incident, entry, lang)
    limit = SMS_LIMIT[lang]
    if entry.reason in _TOGETHER:
        text = prefix + (say(lang, "summary.held_back", count=sum(c.held for c in entry.covers))
                         if entry.reason is NotificationReason.SUMMARY else "")
        for n, line in enumerate(covered_lines(entry, ctx)):
            joined = text + (say(lang, "list.separator") if n else "") + line
            if len(joined) > limit:
                break
            text = joined
        return text
    what = _what(incident, ctx) + _late(incident, ctx)
    if entry.reason is NotificationReason.RESOLVED:
        return prefix + what + say(lang, "sms.resolved", incident=incident.incident_id)
    ident = say(lang, "sms.incident", incident=incident.incident_id)
    ack = say(lang, "sms.ack", url=ctx.ack_url) if ctx.ack_url else ""
    ahead = incident_outlook(incident, now)
    intake = say(lang, "sms.intake", arrival=arrival(ahead, lang, now)) if ahead else ""
    for optional_intake, link in ((intake, ack), (intake, ""), ("", "")):
        text = f"{prefix}{what}{optional_intake}{ident}{link}"
        if len(text) <= limit:
            return text
    return prefix + what + ident


def _facts(incident: Incident, ctx: MessageContext, now: datetime) -> list[tuple[str, str]]:
    lang = ctx.language
    stations = " → ".join(ctx.station(s) for s in incident.stations) or ctx.station(incident.first_station)
    status = named("status", incident.status)(lang)
    facts = [
        (say(lang, "fact.incident"), f"{incident.incident_id} ({status})"),
        (say(lang, "fact.river"), ctx.river(incident.river)),
        (say(lang, "fact.stations"), stations),
    ]
    if incident.route is Route.MAINTENANCE:
        names = [pollutant_name(p, lang) for p in incident.parameters]
        facts.append((say(lang, "fact.parameters"), _maintenance(incident, ctx) if not names else _joined(lang, names)))
    else:
        facts.append((say(lang, "fact.pollutant"), pollutant_name(incident.pollutant, lang)))
    if incident.peak_value is not None:
        multiple = "" if incident.peak_multiple is None else say(
            lang, "fact.peak.multiple", multiple=incident.peak_multiple
        )
        facts.append((say(lang, "fact.peak"), f"{incident.peak_value:g} {incident.unit}{multiple}"))
    ahead = incident_outlook(incident, now)
    if ahead is not None:
        hours = (ahead.earliest_at - ahead.at).total_seconds() / 3600
        within = say(lang, "arrival.in", hours=max(hours, 0.1)) if not ahead.arrived else ""
        facts.append((say(lang, "fact.intake"), arrival(ahead, lang, now, dated=True) + within))
    why = say(lang, "list.separator").join(pick(lang, r.zh, r.en) for r in incident.level_reasons)
    facts.append((say(lang, "fact.why", level=named("level", incident.level)), why))
    facts.append((say(lang, "fact.opened"), clock(incident.opened_at)))
    if incident.reading_at is not None:
        facts.append((say(lang, "fact.reading"), _reading(incident.reading_at, incident.lag, ctx)))
    if incident.silenced_by:
        facts.append((say(lang, "fact.silenced"), incident.silenced_by))
    return facts


def _reading(reading_at: datetime, lag: timedelta | None, ctx: MessageContext) -> str:
    if lag is None or lag <= ctx.late_after:
        return clock(reading_at)
    return say(ctx.language, "fact.reading.late", reading=clock(reading_at), hours=lag.total_seconds() / 3600)


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
    if entry.reason in _TOGETHER:
        return "\n".join([*lines, *(f"- {line}" for line in covered_lines(entry, ctx))])
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
    head = html.escape(title(incident, entry, ctx))
    if entry.reason in _TOGETHER:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in covered_lines(entry, ctx))
        return f"<html><body><h2>{head}</h2><ol>{items}</ol></body></html>"
    facts = _facts(incident, ctx, now)
    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts)
    links = ""
    if ctx.ack_url and entry.reason is not NotificationReason.RESOLVED:
        links += f"<p><a href='{html.escape(ctx.ack_url)}'>{say(lang, 'link.ack')}</a></p>"
    if ctx.playbook_url:
        links += f"<p><a href='{html.escape(ctx.playbook_url)}'>{say(lang, 'link.playbook')}</a></p>"
    actions = "".join(f"<li>{html.escape(a)}</li>" for a in _actions(ctx))
    playbook = ctx.playbook_html or (f"<ol>{actions}</ol>" if actions else "")
    return f"<html><body><h2>{head}</h2><table>{rows}</table>{links}<hr/>{playbook}</body></html>"


def template_fields(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> dict[str, str]:
    """The variables of the SMS gateway templates (README, "SMS through China's gateways"):
    ``level``, ``river``, ``station``, ``event``, ``outlook``, ``incident``. Each is short by
    construction; the gateway plugin still cuts each to the provider's length limit."""
    lang = ctx.language
    level = _prefix(incident, entry, lang).strip("【】[] ")
    if entry.reason in _TOGETHER:
        event = _together_title(entry, lang)
        ids = " ".join(c.incident_id for c in entry.covers)
        return {"level": level, "river": ctx.river(incident.river), "station": "-", "event": event, "outlook": "-",
                "incident": ids}
    if incident.route is Route.MAINTENANCE:
        kinds = _joined(lang, [named("kind", k)(lang) for k in incident.kinds or (incident.kind,)])
        event = kinds + (":" + _joined(lang, [pollutant_name(p, lang) for p in incident.parameters])
                         if incident.parameters else "")
    elif incident.peak_multiple is not None:
        event = say(lang, "title.exceedance", pollutant=pollutant_name(incident.pollutant, lang),
                    multiple=incident.peak_multiple)
    else:
        event = say(lang, "title.anomaly", pollutant=pollutant_name(incident.pollutant, lang))
    ahead = incident_outlook(incident, now) if incident.route is Route.POLLUTION else None
    outlook = _template_outlook(ahead, lang, now) if ahead else "-"
    return {"level": level, "river": ctx.river(incident.river), "station": ctx.station(_latest_station(incident)),
            "event": event + _late(incident, ctx), "outlook": outlook, "incident": incident.incident_id}


def _template_outlook(ahead: IntakeOutlook, lang: Language, now: datetime) -> str:
    """``简阳城区 最早13:20 预计14:26``: the template says "下游取水口：" before it, so the name goes bare."""
    times = {"intake": ahead.name.removesuffix("取水口"), "earliest": short_clock(ahead.earliest_at, now),
             "expected": short_clock(ahead.arrival_at, now)}
    if not ahead.arrived:
        return say(lang, "template.ahead", **times)
    return say(lang, "template.possible" if not ahead.expected_now else "template.there", **times)


def render(incident: Incident, entry: OutboxEntry, ctx: MessageContext, now: datetime) -> Message:
    """The message for ``entry``'s channel."""
    head = title(incident, entry, ctx)
    if entry.channel is Channel.SMS:
        return Message("", sms(incident, entry, ctx, now), "text")  # SMS gateways prepend a title
    if entry.channel is Channel.SMS_TEMPLATE:
        fields = template_fields(incident, entry, ctx, now)
        return Message("", json.dumps(fields, ensure_ascii=False), "text")
    if entry.channel is Channel.EMAIL:
        return Message(head, email_html(incident, entry, ctx, now), "html", ctx.map_png)
    return Message(head, markdown(incident, entry, ctx, now), "markdown")

