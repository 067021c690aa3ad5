"""Every sentence of alert text, by message id, in Chinese (first) and English.

Code never branches on the language: it asks for a message id with its fields, and the language
picks the template. A field may itself be a :class:`Text` (a level's name, a pollutant class): it
is put in the same language. Data that arrives in both languages (a river's ``name_zh`` and
``name_en``, a playbook action's ``what_zh`` and ``what_en``) is chosen with :func:`pick`.
A test checks that every id has both languages with the same fields, and that every id is used.

>>> say("zh", "sms.exceedance", river="沱江", station="大磨子", pollutant="氨氮", multiple=12.34)
'沱江 大磨子站 氨氮超标12.3倍'
>>> say("en", "reason.multiple", multiple=4.2, threshold=3, level=level_name(WarningLevel.ORANGE))
'4.2× over the limit ≥ 3× → orange'
>>> both("reason.maintenance")
Reason(zh='设备故障/运维 → 运维通道', en='instrument fault/maintenance → maintenance route')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, get_args

from riverguard.incidents import IncidentStatus, NotificationReason, Reason, WarningLevel

Language = Literal["zh", "en"]
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)


@dataclass(frozen=True, slots=True)
class Text:
    """One message in both languages (``str.format`` templates with the same named fields)."""

    zh: str
    en: str

    def __call__(self, language: Language) -> str:
        return self.zh if language == "zh" else self.en

    def format(self, language: Language, /, **fields: object) -> str:
        """The template in ``language`` with ``fields``; :class:`Text` fields are put in that language too."""
        values = {k: v(language) if isinstance(v, Text) else v for k, v in fields.items()}
        return self(language).format(**values)


def _t(zh: str, en: str) -> Text:
    return Text(zh, en)


CATALOGUE: Final[Mapping[str, Text]] = MappingProxyType({
    # warning levels, and a message's level label
    "level.blue": _t("蓝色", "blue"),
    "level.yellow": _t("黄色", "yellow"),
    "level.orange": _t("橙色", "orange"),
    "level.red": _t("红色", "red"),
    "alert.blue": _t("蓝色预警", "BLUE alert"),
    "alert.yellow": _t("黄色预警", "YELLOW alert"),
    "alert.orange": _t("橙色预警", "ORANGE alert"),
    "alert.red": _t("红色预警", "RED alert"),
    "maintenance.label": _t("运维", "MAINTENANCE"),
    # why a message is sent, in its prefix
    "tag.opened": _t("", ""),
    "tag.level_raised": _t("升级·", "RAISED "),
    "tag.escalation": _t("逐级上报{stage}·", "ESCALATION {stage} "),
    "tag.reminder": _t("第{stage}次提醒·", "REMINDER {stage} "),
    "tag.reopened": _t("再次出现·", "REOPENED "),
    "tag.resolved": _t("已解除·", "RESOLVED "),
    "tag.summary": _t("限流汇总·", "SUMMARY "),
    "message.prefix": _t("【{reason}{level}】", "[{reason}{level}] "),
    # incident status
    "status.open": _t("未确认", "unacknowledged"),
    "status.acknowledged": _t("已确认", "acknowledged"),
    "status.resolved": _t("已解除", "resolved"),
    # what happened (titles and SMS)
    "pollutant.unknown": _t("不明污染物", "unknown"),
    "title.maintenance": _t("{station} {kind}", "{station} {kind}"),
    "title.exceedance": _t("{pollutant}超标{multiple:.1f}倍", "{pollutant} {multiple:.1f}× over limit"),
    "title.anomaly": _t("{pollutant}异常", "{pollutant} anomaly"),
    "sms.maintenance": _t("{station}站 {kind}", "station {station}: {kind}"),
    "sms.exceedance": _t("{river} {station}站 {pollutant}超标{multiple:.1f}倍",
                         "{river} {station}: {pollutant} {multiple:.1f}x over limit"),
    "sms.anomaly": _t("{river} {station}站 {pollutant}异常", "{river} {station}: {pollutant} anomaly"),
    "sms.resolved": _t("，已恢复正常。事件{incident}", " back to normal. {incident}"),
    "sms.incident": _t("。事件{incident}", ". Incident {incident}"),
    "sms.ack": _t(" 确认:{url}", " Ack: {url}"),
    "sms.intake": _t("，{arrival}", "; {arrival}"),
    "summary.held_back": _t("限流期间有{count}条通知未发送，涉及事件：{incidents}",
                            "{count} notifications held back by the rate limit, incidents: {incidents}"),
    # the next drinking-water intake
    "intake.arrived.short": _t("已到达{intake}", "at intake {intake} now"),
    "intake.ahead.short": _t("约{hours:.1f}小时到达{intake}", "reaches intake {intake} in ~{hours:.1f} h"),
    "intake.ahead.short.clock": _t("约{hours:.1f}小时({clock})到达{intake}",
                                   "reaches intake {intake} in ~{hours:.1f} h ({clock})"),
    "intake.ahead": _t("{name}，预计 {clock} 到达（约 {hours:.1f} 小时）",
                       "{name}, plume expected {clock} (~{hours:.1f} h)"),
    "intake.arrived": _t("{name}，污染团已到达", "{name}, the plume is there now"),
    "intake.passing": _t("{name}，污染团已到达，预计 {clock} 前后通过",
                         "{name}, the plume is there now, expected to pass by {clock}"),
    # the facts of IM and e-mail messages
    "fact.incident": _t("事件", "Incident"),
    "fact.river": _t("河流", "River"),
    "fact.stations": _t("站点", "Stations"),
    "fact.pollutant": _t("污染物", "Pollutant"),
    "fact.peak": _t("峰值", "Peak"),
    "fact.peak.multiple": _t("，超标 {multiple:.1f} 倍", ", {multiple:.1f}× over the limit"),
    "fact.intake": _t("最近取水口", "Nearest intake"),
    "fact.why": _t("级别依据（{level}）", "Why {level}"),
    "fact.opened": _t("开始时间", "Opened"),
    "fact.silenced": _t("静默", "Silenced"),
    "fact.line": _t("- **{label}**：{value}", "- **{label}**: {value}"),
    "list.separator": _t("；", "; "),
    "actions.heading": _t("**处置措施**", "**Actions**"),
    "action.deadline": _t("[截止 {clock}] ", "[by {clock}] "),
    "link.playbook": _t("处置方案（一河一策一图）", "Response playbook"),
    "link.ack": _t("确认接警", "Acknowledge"),
    # why an incident has its level (stored in both languages on the incident)
    "reason.maintenance": _t("设备故障/运维 → 运维通道", "instrument fault/maintenance → maintenance route"),
    "reason.spike": _t("异常突变（无标准限值）→ 蓝色", "anomalous spike (no standard limit) → blue"),
    "reason.multiple": _t("超标 {multiple:.1f} 倍 ≥ {threshold:g} 倍 → {level}",
                          "{multiple:.1f}× over the limit ≥ {threshold:g}× → {level}"),
    "reason.multiple.low": _t("超标 {multiple:.1f} 倍 → 蓝色", "{multiple:.1f}× over the limit → blue"),
    "reason.class": _t("{pollutant_class} → 升 {up} 级", "{pollutant_class} → up {up}"),
    "reason.intake.unnamed": _t("{hours:.1f} 小时到达取水口 (≤ {within:g} 小时) → 升 {up} 级",
                                "reaches a drinking-water intake in {hours:.1f} h (≤ {within:g} h) → up {up}"),
    "reason.intake.arrived": _t("污染团已到达{intake}（{clock}）→ 升 {up} 级",
                                "the plume is at intake {intake} ({clock}) → up {up}"),
    "reason.intake.ahead": _t("预计 {clock} 到达{intake}，约 {hours:.1f} 小时 (≤ {within:g} 小时) → 升 {up} 级",
                              "reaches intake {intake} at {clock}, in {hours:.1f} h (≤ {within:g} h) → up {up}"),
})


def say(language: Language, message_id: str, /, **fields: object) -> str:
    """The message ``message_id`` in ``language`` (see :meth:`Text.format`)."""
    return CATALOGUE[message_id].format(language, **fields)


def both(message_id: str, /, **fields: object) -> Reason:
    """The message in both languages, as the incident stores its level reasons."""
    return Reason(zh=say("zh", message_id, **fields), en=say("en", message_id, **fields))


def pick(language: Language, zh: str, en: str) -> str:
    """Data that comes in both languages (a network's river name, an action); English falls back to Chinese."""
    return Text(zh, en or zh)(language)


def level_name(level: WarningLevel) -> Text:
    return CATALOGUE[f"level.{level.value}"]


def alert_label(level: WarningLevel) -> Text:
    return CATALOGUE[f"alert.{level.value}"]


def reason_tag(reason: NotificationReason) -> Text:
    return CATALOGUE[f"tag.{reason.value}"]


def status_name(status: IncidentStatus) -> Text:
    return CATALOGUE[f"status.{status.value}"]
