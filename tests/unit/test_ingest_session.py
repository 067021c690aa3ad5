"""A data logger's connection as a pure state machine: the standard's frames in, effects out.

The expected answers are written out byte for byte as HJ 212-2017 shapes them (Appendix C: same
QN, PW and MN, ST=91, Flag=4), and their CRCs are checked with the standard's bytewise algorithm.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from ingest.codecs import TopicPattern
from ingest.hj212 import crc16, crc16_bytewise
from ingest.session import Answer, Bind, ClockOff, Close, Effect, Limits, Reject, Route, Send, Session
from riverguard.stations import StationRegistry, StationSecrets

MN = "010000A8900016F000169DC0"  # the MN of the standard's examples
REGISTRY = StationRegistry.model_validate({"stations": [
    {"station_id": "example", "mn": MN, "river": "tuo", "section": "示例", "city": "x", "parameters": ["COD"]},
    {"station_id": "other", "mn": "010000A8900016F000169DC1", "river": "tuo", "section": "y", "city": "x",
     "parameters": ["COD"]},
]})
SECRETS = StationSecrets({"example": SecretStr("123456"), "other": SecretStr("999999")})
LIMITS = Limits(max_frame_bytes=1024, idle_timeout=timedelta(minutes=30), frame_timeout=timedelta(seconds=30),
                max_bad_frames=3, clock_tolerance=timedelta(minutes=5))
T0 = datetime(2016, 8, 1, 0, 58, 57, 223000, tzinfo=UTC)  # 08:58:57.223 Beijing: the QN of the examples

UPLOAD = (b"##0140QN=20160801085857223;ST=32;CN=2011;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
          b"CP=&&DataTime=20160801085857;w01018-Rtd=50.1,w01018-Flag=N&&2C40\r\n")
DATA_ANSWER = (b"##0087QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;"
               b"CP=&&&&3240\r\n")
CLOCK_REQUEST = (b"##0087QN=20160801085857223;ST=32;CN=1013;PW=123456;MN=010000A8900016F000169DC0;Flag=5;"
                 b"CP=&&&&3840\r\n")
NOTICE_ANSWER = (b"##0087QN=20160801085857223;ST=91;CN=9013;PW=123456;MN=010000A8900016F000169DC0;Flag=4;"
                 b"CP=&&&&2A80\r\n")


def frame(data: str) -> bytes:
    raw = data.encode()
    return b"##%04d%s%04X\r\n" % (len(raw), raw, crc16(raw))


def session() -> Session:
    return Session(REGISTRY, SECRETS, LIMITS, TopicPattern(), T0)


def kinds(effects: list[Effect]) -> list[str]:
    return [type(e).__name__ for e in effects]


def reject(effects: list[Effect]) -> Reject:
    [found] = [e for e in effects if isinstance(e, Reject)]
    return found


@pytest.mark.parametrize("raw", [UPLOAD, DATA_ANSWER, CLOCK_REQUEST, NOTICE_ANSWER])
def test_the_expected_frames_carry_the_standards_crc(raw: bytes) -> None:
    assert f"{crc16_bytewise(raw[6:-6]):04X}".encode() == raw[-6:-2]


def test_an_upload_binds_the_station_and_is_answered_after_kafka() -> None:
    effects = session().receive(UPLOAD, T0)
    assert kinds(effects) == ["Bind", "Route"]
    bind, route = effects
    assert isinstance(bind, Bind)
    assert (bind.station.station_id, bind.st) == ("example", "32")
    assert route == Route(UPLOAD, "stations/tuo/example/telemetry", DATA_ANSWER)


def test_frames_split_across_reads_and_a_frame_that_wants_no_answer() -> None:
    link = session()
    assert link.receive(UPLOAD[:50], T0) == []
    assert kinds(link.receive(UPLOAD[50:], T0)) == ["Bind", "Route"]
    quiet = frame(f"QN=20160801085857224;ST=32;CN=2011;PW=123456;MN={MN};Flag=4;CP=&&DataTime=20160801085857;"
                  "w01018-Rtd=50.1&&")
    [route] = link.receive(quiet, T0)
    assert route == Route(quiet, "stations/tuo/example/telemetry", None)


def test_a_clock_calibration_request_is_answered_and_asks_for_the_clock() -> None:
    link = session()
    link.receive(UPLOAD, T0)
    assert link.receive(CLOCK_REQUEST, T0) == [Send(NOTICE_ANSWER), ClockOff("example", None)]


def test_a_clock_off_by_more_than_the_tolerance() -> None:
    link = session()
    assert [e for e in link.receive(UPLOAD, T0 - timedelta(minutes=6)) if isinstance(e, ClockOff)] == [
        ClockOff("example", timedelta(minutes=6))
    ]
    assert not [e for e in link.receive(UPLOAD, T0 + timedelta(minutes=4)) if isinstance(e, ClockOff)]


def test_a_wrong_pw_is_refused_without_naming_it() -> None:
    wrong = frame(f"QN=20160801085857223;ST=32;CN=2011;PW=654321;MN={MN};Flag=5;CP=&&DataTime=20160801085857&&")
    link = session()
    effects = link.receive(wrong, T0)
    assert effects[0] == Send(b"##0094QN=20160801085857223;ST=91;CN=9011;PW=654321;MN=010000A8900016F000169DC0;"
                              b"Flag=4;CP=&&QnRtn=3&&9241\r\n")
    error = reject(effects).error
    assert error.code == "hj212_password"
    assert "123456" not in error.message
    assert "654321" not in error.message
    assert link.station is None


def test_an_unknown_mn_and_a_second_station_on_one_connection_are_refused() -> None:
    link = session()
    stranger = frame("QN=1;ST=32;CN=2011;PW=123456;MN=NOPE;Flag=4;CP=&&DataTime=20160801085857&&")
    assert reject(link.receive(stranger, T0)).error.code == "unknown_station"
    link.receive(UPLOAD, T0)
    other = frame("QN=2;ST=32;CN=2011;PW=999999;MN=010000A8900016F000169DC1;Flag=5;CP=&&DataTime=20160801085857&&")
    effects = link.receive(other, T0)
    assert isinstance(effects[0], Send)
    assert b"CN=9011" in effects[0].data
    assert b"QnRtn=4" in effects[0].data
    assert reject(effects).error.code == "hj212_mn_mismatch"
    assert link.station is not None
    assert link.station.station_id == "example"


def test_heartbeats_keep_the_connection_and_are_not_bad_frames() -> None:
    link = session()
    link.receive(UPLOAD, T0)
    beat = frame(f"QN=20160801085857300;ST=91;CN=9015;PW=123456;MN={MN};Flag=4;CP=&&&&")
    assert [link.receive(beat, T0 + timedelta(minutes=n)) for n in range(1, 6)] == [[]] * 5
    assert link.tick(T0 + timedelta(minutes=34)) == []  # idle counts from the last heartbeat
    assert link.closed is None


def test_a_platforms_request_sent_by_a_logger_is_refused() -> None:
    standard_example = (b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5;"
                        b"CP=&&RtdInterval=30&&1C80\r\n")
    secrets = StationSecrets({"example": SecretStr("100000")})
    effects = Session(REGISTRY, secrets, LIMITS, TopicPattern(), T0).receive(standard_example, T0)
    assert effects[1] == Send(b"##0094QN=20160801085857223;ST=91;CN=9011;PW=100000;MN=010000A8900016F000169DC0;"
                              b"Flag=4;CP=&&QnRtn=2&&B101\r\n")
    assert reject(effects).error.code == "hj212_command"


@pytest.mark.parametrize(("raw", "code"), [
    (UPLOAD.replace(b"2C40", b"2C41"), "hj212_crc"),
    (UPLOAD.replace(b"##0140", b"##0141"), "hj212_length"),
    (b"GET / HTTP/1.1\r\n", "hj212_frame"),
])
def test_bad_frames_are_rejected_with_their_reason(raw: bytes, code: str) -> None:
    effects = session().receive(raw, T0)
    assert kinds(effects) == ["Reject"]
    assert reject(effects) == Reject(raw, reject(effects).error)
    assert reject(effects).error.code == code


def test_bad_frames_in_a_row_close_the_connection_and_a_good_one_resets_the_count() -> None:
    link = session()
    junk = b"garbage\r\n"  # one read of junk is one rejection
    assert [kinds(link.receive(junk, T0)) for _ in range(2)] == [["Reject"], ["Reject"]]
    link.receive(UPLOAD, T0)
    assert link.outcome(rejected=False) == []
    assert [kinds(link.receive(junk, T0)) for _ in range(2)] == [["Reject"], ["Reject"]]
    assert link.outcome(rejected=True) == [Close("bad_frames")]
    assert link.receive(UPLOAD, T0) == []


def test_oversize_slow_and_idle() -> None:
    link = session()
    effects = link.receive(b"##0999" + b"x" * 1100, T0)
    assert reject(effects).error.code == "hj212_oversize"
    assert effects[-1] == Close("oversize")
    slow = session()
    assert slow.receive(UPLOAD[:40], T0) == []
    assert slow.tick(T0 + timedelta(seconds=29)) == []
    effects = slow.tick(T0 + timedelta(seconds=31))
    assert reject(effects) == Reject(UPLOAD[:40], reject(effects).error)
    assert reject(effects).error.code == "hj212_slow_sender"
    assert effects[-1] == Close("slow_sender")
    idle = session()
    idle.receive(UPLOAD, T0)
    assert idle.tick(T0 + timedelta(minutes=29)) == []
    assert idle.tick(T0 + timedelta(minutes=31)) == [Close("idle")]


def test_answers_to_the_gateways_commands() -> None:
    link = session()
    link.receive(UPLOAD, T0)
    uploads = [frame(f"QN=20240514100000000;ST=91;CN=9011;PW=123456;MN={MN};Flag=4;CP=&&QnRtn=1&&"),
               frame(f"QN=20240514100000000;ST=32;CN=3015;PW=123456;MN={MN};Flag=4;CP=&&DataTime=20240514100001;"
                     "VaseNo=2&&"),
               frame(f"QN=20240514100000000;ST=91;CN=9012;PW=123456;MN={MN};Flag=4;CP=&&ExeRtn=1&&")]
    effects: list[Any] = [e for raw in uploads for e in link.receive(raw, T0)]
    assert [e.frame.cn for e in effects if isinstance(e, Answer)] == ["9011", "3015", "9012"]
    assert kinds(effects) == ["Answer"] * 3
