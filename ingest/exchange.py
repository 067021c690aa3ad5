"""HJ 212-2017 exchanges between the platform (上位机: the gateway) and a station's data logger
(现场机): what a frame's Flag asks for, which frames answer which, and the frames the gateway
writes (pure, no I/O).

From the standard (quoted in public implementations, e.g. ``dgiot/dgiot``
``apps/dgiot_hjt212/src/protocol``, and used alike by ``caoyiliang/HJ212`` and
``caoyiliang/HJ212_Server``):

- §6.3.2, Table 3: ``Flag`` = V5..V0 D A. A (bit 0): the command wants an answer; D (bit 1): the
  packet carries PNUM/PNO; V5..V0: the version, 000001 for HJ 212-2017 and 000000 for HJ/T
  212-2005 — so ``Flag=5`` is a 2017 frame that wants an answer and ``Flag=4`` one that does not.
- §6.6.1, Table 5: ST=91 (系统交互) marks the interaction frames 9011–9014.
- §6.6.2 Table 6 (ExeRtn) and §6.6.3 Table 7 (QnRtn): the return codes below.
- §6.6.5, Table 9: command codes and their kinds — requests (the other side answers 9011, acts,
  then 9012), uploads (answered by 9014 数据应答 when Flag asks) and notices (9013 通知应答).
- Appendix C (通讯命令示例): an answer repeats the QN, PW and MN of what it answers, with ST=91,
  Flag=4 and an empty ``CP=&&&&`` for 9013/9014, ``CP=&&QnRtn=1&&`` for 9011 and
  ``CP=&&ExeRtn=1&&`` for 9012; 超标留样 is ``CN=3015 … Flag=5;CP=&&&&``, the station answers 9011,
  uploads ``CN=3015`` with ``DataTime`` and ``VaseNo`` (the bottle) and ends with 9012; 设置现场机时间
  is ``CN=1012`` with ``SystemTime=yyyyMMddHHmmss`` (a ``PolId`` picks one instrument's clock; without
  it the data logger's own clock is meant).

>>> frame = parse_frame(b"##0140QN=20160801085857223;ST=32;CN=2011;PW=123456;MN=010000A8900016F000169DC0;"
...                     b"Flag=5;CP=&&DataTime=20160801085857;w01018-Rtd=50.1,w01018-Flag=N&&2C40\\r\\n")
>>> asks_answer(frame.flag), answer_to(frame)
(True, b'##0087QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&3240\\r\\n')
"""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Final

from ingest.hj212 import Frame, build_frame, parse_frame

__all__ = [
    "ExeRtn", "Kind", "QnRtn", "answer_to", "asks_answer", "command", "execution_result", "kind_of", "parse_frame",
    "request_answer",
]

ANSWER_BIT: Final = 0b01
PACKETS_BIT: Final = 0b10
VERSION_2017: Final = 0b100  # V5..V0 = 000001
#: ST of the interaction frames (9011–9014).
INTERACTION_ST: Final = "91"
DATA_ANSWER: Final = "9014"
NOTICE_ANSWER: Final = "9013"
REQUEST_ANSWER: Final = "9011"
EXECUTION_RESULT: Final = "9012"
SET_CLOCK: Final = "1012"
CLOCK_REQUEST: Final = "1013"  # 现场机时间校准请求: a notice from the data logger
TAKE_SAMPLE: Final = "3012"
RETAIN_SAMPLE: Final = "3015"
#: ``yyyyMMddHHmmss``: SystemTime (1012) and DataTime (the 3015 upload).
TIME_FORMAT: Final = "%Y%m%d%H%M%S"


class QnRtn(IntEnum):
    """请求命令返回 (HJ 212-2017 Table 7)."""

    READY = 1
    REFUSED = 2
    BAD_PW = 3
    BAD_MN = 4
    BAD_ST = 5
    BAD_FLAG = 6
    BAD_QN = 7
    BAD_CN = 8
    BAD_CRC = 9
    UNKNOWN = 100


class ExeRtn(IntEnum):
    """执行结果 (HJ 212-2017 Table 6)."""

    SUCCESS = 1
    FAILED = 2
    BAD_CONDITION = 3
    TIMEOUT = 4
    BUSY = 5
    FAULT = 6
    NO_DATA = 100


class Kind(StrEnum):
    """What a frame from a data logger is, for the platform."""

    UPLOAD = "upload"  # data and information the logger sends: answered by 9014 when Flag asks
    NOTICE = "notice"  # answered by 9013 when Flag asks
    ANSWER = "answer"  # 9011/9012/9013/9014: the logger answering the platform's commands
    KEEPALIVE = "keepalive"  # a heartbeat: keeps the connection, nothing to store or answer
    REQUEST = "request"  # a platform's command sent by the logger: refused (9011 QnRtn=2)


#: Table 9 codes a data logger sends as uploads (上传…): the platform's requests of the same
#: code (提取…/取…) are answered with them.
_UPLOADS: Final = frozenset({"1011", "1061", "1063", "2011", "2021", "2031", "2041", "2051", "2061", "2081",
                             "3015", "3017", "3018", "3019", "3020"})
_ANSWERS: Final = frozenset({REQUEST_ANSWER, EXECUTION_RESULT, NOTICE_ANSWER, DATA_ANSWER})
#: Heartbeats are not in HJ 212-2017's Table 9, but loggers send them: 9015 (心跳包, the draft
#: revision, as in caoyiliang/HJ212) and 9021 (dgiot/dgiot's 心跳).
_HEARTBEATS: Final = frozenset({"9015", "9021"})


def kind_of(frame: Frame) -> Kind:
    """What ``frame`` is (by its CN, Table 9).

    >>> [kind_of(Frame(cn=cn, mn="M", cp=())).value for cn in ("2011", "1013", "9012", "9015", "1062")]
    ['upload', 'notice', 'answer', 'keepalive', 'request']
    """
    if frame.cn in _UPLOADS:
        return Kind.UPLOAD
    if frame.cn == CLOCK_REQUEST:
        return Kind.NOTICE
    if frame.cn in _ANSWERS:
        return Kind.ANSWER
    if frame.cn in _HEARTBEATS:
        return Kind.KEEPALIVE
    return Kind.REQUEST


def _flag_bits(flag: str | None) -> int | None:
    return int(flag) if flag is not None and flag.isascii() and flag.isdigit() and len(flag) <= 3 else None


def asks_answer(flag: str | None) -> bool:
    """True when a frame's Flag has the A bit (a frame without Flag asks for none)."""
    bits = _flag_bits(flag)
    return bits is not None and bits & ANSWER_BIT == ANSWER_BIT


def _answer_flag(flag: str | None) -> str:
    # The answer speaks the version of what it answers; never asks for an answer, never split.
    bits = _flag_bits(flag)
    return str(VERSION_2017 if bits is None else bits & ~(ANSWER_BIT | PACKETS_BIT))


def _answer(frame: Frame, cn: str, cp: tuple[tuple[str, str], ...] = ()) -> bytes:
    return build_frame(Frame(cn=cn, mn=frame.mn, cp=cp, qn=frame.qn, st=INTERACTION_ST, pw=frame.pw,
                             flag=_answer_flag(frame.flag)))


def answer_to(frame: Frame) -> bytes | None:
    """The platform's answer to an upload (9014) or notice (9013) whose Flag asks for one."""
    if not asks_answer(frame.flag):
        return None
    kind = kind_of(frame)
    if kind is Kind.UPLOAD:
        return _answer(frame, DATA_ANSWER)
    if kind is Kind.NOTICE:
        return _answer(frame, NOTICE_ANSWER)
    return None


def request_answer(frame: Frame, code: QnRtn) -> bytes | None:
    """9011 with ``code``: what the platform says when it refuses a frame that asks for an answer
    (PW or MN wrong, a command it does not take)."""
    return _answer(frame, REQUEST_ANSWER, (("QnRtn", str(int(code))),)) if asks_answer(frame.flag) else None


def execution_result(frame: Frame, code: ExeRtn) -> bytes:
    """9012: a data logger's result of executing the platform's request ``frame``."""
    return _answer(frame, EXECUTION_RESULT, (("ExeRtn", str(int(code))),))


def command(*, qn: str, st: str, cn: str, pw: str, mn: str, cp: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A platform request to a data logger, asking for its answers (Flag=5).

    >>> command(qn="20160801085857223", st="32", cn=RETAIN_SAMPLE, pw="123456", mn="010000A8900016F000169DC0")
    b'##0087QN=20160801085857223;ST=32;CN=3015;PW=123456;MN=010000A8900016F000169DC0;Flag=5;CP=&&&&E401\\r\\n'
    """
    return build_frame(Frame(cn=cn, mn=mn, cp=cp, qn=qn, st=st, pw=pw, flag=str(VERSION_2017 | ANSWER_BIT)))


def qn_of(moment: datetime) -> str:
    """A QN (``yyyyMMddHHmmsszzz``) for ``moment`` as it is written (give it in Beijing time)."""
    return moment.strftime(TIME_FORMAT) + f"{moment.microsecond // 1000:03d}"
