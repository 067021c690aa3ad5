"""Wire models of commands to stations (downlink) and what the stations answered.

``StationCommand`` records on ``topics.station_commands`` (key = station id) ask the HJ 212
gateway to send a command to a station's data logger; the gateway also derives commands itself
(a sample-retention command when a pollution incident opens at a connected station, a clock
setting when a station's clock is off). Every command ends in one ``CommandResult`` on
``topics.command_results`` (key = station id): executed, refused, failed, expired before the
station came online, or unanswered. Ids are stable (``command_id`` derives from what asked for the
command, ``result_id`` from the command), so replays update instead of duplicating.

The alert side records a result whose ``incident_id`` is set in that incident's history and
messages ("已留样").

>>> from datetime import datetime, timedelta, UTC
>>> t = datetime(2024, 5, 14, 2, 0, tzinfo=UTC)
>>> command = StationCommand(command_id="RG-1:retain_sample:tuo-hongyuan", station_id="tuo-hongyuan",
...                          kind=CommandKind.RETAIN_SAMPLE, issued_at=t, expires_at=t + timedelta(hours=1),
...                          incident_id="RG-1")
>>> result = CommandResult.of(command, CommandOutcome.EXECUTED, at=t, bottle=3, sampled_at=t, station_name="宏缘")
>>> result.result_id, result.message_zh
('RG-1:retain_sample:tuo-hongyuan#executed', '宏缘站已超标留样（3 号瓶，2024-05-14 10:00）')
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from riverguard.models import ParameterName, StationId
from riverguard.timekeeping import BEIJING


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CommandKind(StrEnum):
    """What a command asks of the station (HJ 212-2017 §6.6.5, Table 9 command codes)."""

    SET_CLOCK = "set_clock"  # CN=1012 设置现场机时间
    RETAIN_SAMPLE = "retain_sample"  # CN=3015 超标留样
    TAKE_SAMPLE = "take_sample"  # CN=3012 即时采样 (one instrument: ``parameter``)

    @property
    def label_zh(self) -> str:
        return _LABELS_ZH[self]


_LABELS_ZH: Final = {
    CommandKind.SET_CLOCK: "校时",
    CommandKind.RETAIN_SAMPLE: "超标留样",
    CommandKind.TAKE_SAMPLE: "即时采样",
}


class CommandOutcome(StrEnum):
    EXECUTED = "executed"  # 9012 ExeRtn=1
    REFUSED = "refused"  # 9011 QnRtn other than 1 (2 refused, 3 PW, 4 MN, ... HJ 212-2017 Table 7)
    FAILED = "failed"  # 9012 ExeRtn other than 1 (HJ 212-2017 Table 6)
    UNANSWERED = "unanswered"  # sent, but no 9011/9012 within the answer timeout (or the station left)
    EXPIRED = "expired"  # the station was not connected before the command expired

    @property
    def is_success(self) -> bool:
        return self is CommandOutcome.EXECUTED


class StationCommand(_Frozen):
    """A command for one station; the gateway sends it while the station is connected, once."""

    command_id: str = Field(min_length=1, max_length=200)
    station_id: StationId
    kind: CommandKind
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    incident_id: str | None = None
    parameter: ParameterName | None = None  # TAKE_SAMPLE: the instrument's parameter
    reason: str = ""


class CommandResult(_Frozen):
    """How one command ended. ``code`` is the station's QnRtn or ExeRtn when it answered."""

    result_id: str
    command_id: str
    station_id: StationId
    kind: CommandKind
    outcome: CommandOutcome
    at: AwareDatetime
    incident_id: str | None = None
    code: int | None = None
    bottle: int | None = None  # RETAIN_SAMPLE: the sample bottle (VaseNo) the station reported
    sampled_at: AwareDatetime | None = None  # RETAIN_SAMPLE: when the sample was taken (DataTime)
    detail: str = ""
    message_zh: str = ""
    message_en: str = ""

    @classmethod
    def of(
        cls,
        command: StationCommand,
        outcome: CommandOutcome,
        *,
        at: datetime,
        code: int | None = None,
        bottle: int | None = None,
        sampled_at: datetime | None = None,
        detail: str = "",
        station_name: str | None = None,
    ) -> CommandResult:
        """The result of ``command``, with its messages ("已留样" …) in both languages."""
        name = station_name or command.station_id
        zh, en = _messages(command.kind, outcome, name, bottle, sampled_at, code)
        return cls(
            result_id=f"{command.command_id}#{outcome.value}", command_id=command.command_id,
            station_id=command.station_id, kind=command.kind, outcome=outcome, at=at,
            incident_id=command.incident_id, code=code, bottle=bottle, sampled_at=sampled_at, detail=detail,
            message_zh=zh, message_en=en,
        )


def _messages(
    kind: CommandKind, outcome: CommandOutcome, station: str, bottle: int | None, sampled_at: datetime | None,
    code: int | None,
) -> tuple[str, str]:
    label = kind.label_zh
    if outcome is CommandOutcome.EXECUTED and kind is CommandKind.RETAIN_SAMPLE:
        where = []
        if bottle is not None:
            where.append(f"{bottle} 号瓶")
        if sampled_at is not None:
            where.append(sampled_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"))
        suffix = f"（{'，'.join(where)}）" if where else ""
        english = f" (bottle {bottle})" if bottle is not None else ""
        return f"{station}站已超标留样{suffix}", f"{station}: sample retained{english}"
    if outcome is CommandOutcome.EXECUTED:
        return f"{station}站已执行{label}", f"{station}: {kind.value.replace('_', ' ')} done"
    code_text = "" if code is None else f"（返回码 {code}）"
    code_en = "" if code is None else f" (code {code})"
    zh = {
        CommandOutcome.REFUSED: f"{station}站拒绝{label}{code_text}",
        CommandOutcome.FAILED: f"{station}站{label}执行失败{code_text}",
        CommandOutcome.UNANSWERED: f"{station}站未应答{label}命令",
        CommandOutcome.EXPIRED: f"{station}站离线，{label}命令已过期",
    }[outcome]
    return zh, f"{station}: {kind.value.replace('_', ' ')} {outcome.value}{code_en}"
