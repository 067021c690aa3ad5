"""Every sentence of alert text, by message id, in Chinese (first) and English.

Code never branches on the language: it asks for a message id with its fields, and the language
picks the template. A field may itself be a :class:`Text` (a level's name, a pollutant class): it
is put in the same language. Data that arrives in both languages (a river's ``name_zh`` and
``name_en``, a playbook action's ``what_zh`` and ``what_en``) is chosen with :func:`pick`.
A test checks that every id has both languages with the same fields, and that every id is used.

>>> say("zh", "sms.exceedance", river="沱江", station="大磨子", pollutant="氨氮", multiple=12.34)
'沱江 大磨子站 氨氮超标12.3倍'
>>> from riverguard.incidents import WarningLevel
>>> say("en", "reason.multiple", multiple=4.2, threshold=3, level=named("level", WarningLevel.ORANGE))
'4.2× over the limit ≥ 3× → orange'
>>> both("reason.maintenance")
Reason(zh='设备故障/运维 → 运维通道', en='instrument fault/maintenance → maintenance route')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal, get_args

from riverguard.incidents import Reason

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
    "route.pollution": _t("污染", "pollution"),
    "route.maintenance": _t("运维", "MAINTENANCE"),
    # why a message is sent, in its prefix
    "tag.opened": _t("", ""),
    "tag.level_raised": _t("升级·", "RAISED "),
    "tag.escalation": _t("逐级上报{stage}·", "ESCALATION {stage} "),
    "tag.reminder": _t("第{stage}次提醒·", "REMINDER {stage} "),
    "tag.reopened": _t("再次出现·", "REOPENED "),
    "tag.resolved": _t("已解除·", "RESOLVED "),
    "tag.summary": _t("限流汇总·", "SUMMARY "),
    "tag.digest": _t("运维日报·", "DIGEST "),
    "message.prefix": _t("【{reason}{level}】", "[{reason}{level}] "),
    "summary.level": _t("{route}·最高{level}", "{route}, highest {level}"),
    # incident status
    "status.open": _t("未确认", "unacknowledged"),
    "status.acknowledged": _t("已确认", "acknowledged"),
    "status.resolved": _t("已解除", "resolved"),
    # detection kinds, as the instrument's trouble is named
    "kind.pollution_spike": _t("水质突变", "pollution spike"),
    "kind.limit_exceedance": _t("超标", "limit exceedance"),
    "kind.class_downgrade": _t("水质类别下降", "class downgrade"),
    "kind.ecological_flow_low": _t("生态流量不足", "ecological flow low"),
    "kind.sensor_fault": _t("仪器故障", "instrument fault"),
    "kind.maintenance": _t("仪器维护", "maintenance"),
    "kind.data_gap": _t("数据中断", "data gap"),
    # what happened (titles and SMS)
    "pollutant.unknown": _t("不明污染物", "unknown"),
    "title.exceedance": _t("{pollutant}超标{multiple:.1f}倍", "{pollutant} {multiple:.1f}× over limit"),
    "title.anomaly": _t("{pollutant}异常", "{pollutant} anomaly"),
    "maintenance.what": _t("{station}站 {kinds}：{parameters}", "station {station}: {kinds} ({parameters})"),
    "maintenance.what.bare": _t("{station}站 {kinds}", "station {station}: {kinds}"),
    "sms.exceedance": _t("{river} {station}站 {pollutant}超标{multiple:.1f}倍",
                         "{river} {station}: {pollutant} {multiple:.1f}x over limit"),
    "sms.anomaly": _t("{river} {station}站 {pollutant}异常", "{river} {station}: {pollutant} anomaly"),
    "sms.resolved": _t("，已恢复正常。事件{incident}", " back to normal. {incident}"),
    "sms.incident": _t("。事件{incident}", ". Incident {incident}"),
    "sms.ack": _t(" 确认:{url}", " Ack: {url}"),
    "sms.intake": _t("，{arrival}", "; {arrival}"),
    "late.note": _t("（数据时间{reading}，晚到{hours:.1f}小时）", " (reading of {reading}, {hours:.1f} h late)"),
    "summary.count": _t("{count}条通知未发送，{incidents}个事件", "{count} held back, {incidents} incidents"),
    "summary.held_back": _t("限流期间{count}条通知未发送：", "{count} notifications held back by the rate limit: "),
    "summary.item": _t("{incident} {level} {river}{station} {subject}（{held}条）",
                       "{incident} {level} {river} {station} {subject} ({held})"),
    "digest.title": _t("{count}个站点有仪器事件", "{count} stations with instrument trouble"),
    "digest.item": _t("{station}站 {kinds}：{subject}（{status}，{opened}起）",
                      "station {station}: {kinds} ({subject}; {status}, since {opened})"),
    # the next drinking-water intake: one notion of arrival — the earliest and the expected time
    "arrival.ahead": _t("{intake}最早{earliest}、预计{expected}到达",
                        "intake {intake}: earliest {earliest}, expected {expected}"),
    "arrival.expected": _t("{intake}预计{expected}到达", "intake {intake}: expected {expected}"),
    "arrival.possible": _t("污染团可能已到{intake}（最早{earliest}，预计{expected}）",
                           "the plume may be at intake {intake} now (earliest {earliest}, expected {expected})"),
    "arrival.there": _t("污染团已到{intake}，预计{passes}前后通过",
                        "the plume is at intake {intake}, passing by {passes}"),
    "arrival.there.open": _t("污染团已到{intake}", "the plume is at intake {intake}"),
    "arrival.in": _t("（距最早到达约{hours:.1f}小时）", " ({hours:.1f} h to the earliest arrival)"),
    "template.ahead": _t("{intake} 最早{earliest} 预计{expected}", "{intake} {earliest} (exp. {expected})"),
    "template.possible": _t("{intake} 可能已到 预计{expected}", "{intake} may be there (exp. {expected})"),
    "template.there": _t("{intake} 已到达（{earliest}起）", "{intake} reached ({earliest})"),
    # the facts of IM and e-mail messages
    "fact.incident": _t("事件", "Incident"),
    "fact.river": _t("河流", "River"),
    "fact.stations": _t("站点", "Stations"),
    "fact.pollutant": _t("污染物", "Pollutant"),
    "fact.parameters": _t("仪器参数", "Parameters"),
    "fact.peak": _t("峰值", "Peak"),
    "fact.peak.multiple": _t("，超标 {multiple:.1f} 倍", ", {multiple:.1f}× over the limit"),
    "fact.intake": _t("最近取水口", "Nearest intake"),
    "fact.why": _t("级别依据（{level}）", "Why {level}"),
    "fact.opened": _t("开始时间", "Opened"),
    "fact.reading": _t("数据时间", "Reading time"),
    "fact.reading.late": _t("{reading}（处理时已晚到 {hours:.1f} 小时）", "{reading} (processed {hours:.1f} h late)"),
    "fact.silenced": _t("静默", "Silenced"),
    "fact.line": _t("- **{label}**：{value}", "- **{label}**: {value}"),
    "list.separator": _t("；", "; "),
    "list.comma": _t("、", ", "),
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
    "reason.intake.arrived": _t("{at}时污染团可能已到{intake}（最早{earliest}，预计{expected}）→ 升 {up} 级",
                                "as of {at} the plume may be at intake {intake} (earliest {earliest}, "
                                "expected {expected}) → up {up}"),
    "reason.intake.ahead": _t("{intake}最早{earliest}、预计{expected}到达，{at}时距预计到达 {hours:.1f} 小时"
                              "（≤ {within:g} 小时）→ 升 {up} 级",
                              "intake {intake}: earliest {earliest}, expected {expected}, {hours:.1f} h after {at} "
                              "(≤ {within:g} h) → up {up}"),
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


def named(family: str, member: StrEnum) -> Text:
    """The entry ``family.value`` of an enum member: ``named("level", WarningLevel.RED)`` is 红色 / red.
    Families: ``level``, ``alert`` (a message's level label), ``tag`` (why a message is sent),
    ``status``, ``route``, ``kind`` (a detection kind)."""
    return CATALOGUE[f"{family}.{member.value}"]
