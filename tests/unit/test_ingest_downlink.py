"""Commands to data loggers (pure): dispatch, the standard's answers, expiry, incidents, clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from ingest.datalogger import LoggerState
from ingest.downlink import CommandBook, Dispatch, DownlinkEffect, Publish
from ingest.hj212 import crc16, parse_frame
from riverguard.commands import CommandKind, CommandOutcome, CommandResult, StationCommand
from riverguard.incidents import Incident, IncidentStatus, Route, WarningLevel
from riverguard.models import DetectionKind
from riverguard.stations import StationSecrets, load_registry

REGISTRY = load_registry()
STATION = REGISTRY.by_id["tuo-hongyuan"]
OTHER = REGISTRY.by_id["tuo-sanhuangmiao"]
SECRETS = StationSecrets({STATION.station_id: SecretStr("123456"), OTHER.station_id: SecretStr("654321")})
T0 = datetime(2024, 5, 14, 2, 0, tzinfo=UTC)


def book() -> CommandBook:
    return CommandBook(REGISTRY, SECRETS, answer_timeout=timedelta(minutes=2), clock_interval=timedelta(hours=1),
                       ttl=timedelta(hours=1))


def order(command_id: str = "c1", kind: CommandKind = CommandKind.RETAIN_SAMPLE, station: str = STATION.station_id,
          ttl: timedelta = timedelta(hours=1)) -> StationCommand:
    return StationCommand(command_id=command_id, station_id=station, kind=kind, issued_at=T0, expires_at=T0 + ttl,
                          incident_id="RG-1")


def sent(effects: list[DownlinkEffect]) -> list[bytes]:
    return [e.data for e in effects if isinstance(e, Dispatch)]


def results(effects: list[DownlinkEffect]) -> list[CommandResult]:
    return [e.result for e in effects if isinstance(e, Publish)]


def exchange(commands: CommandBook, logger: LoggerState, effects: list[DownlinkEffect], now: datetime) -> list[
        DownlinkEffect]:
    """Let the logger answer every command frame in ``effects``, until nothing more is sent."""
    out: list[DownlinkEffect] = []
    while frames := sent(effects):
        effects = []
        for data in frames:
            for answer in logger.handle(parse_frame(data), now):
                effects += commands.answer(logger.station.station_id, parse_frame(answer), now)
        out += effects
    return out


def test_a_sample_retention_command_and_the_loggers_answers() -> None:
    commands = book()
    logger = LoggerState(STATION, "123456")
    assert commands.add(order(), T0) == []  # offline: it waits
    dispatched = commands.online(STATION.station_id, "21", T0 + timedelta(minutes=1))
    [data] = sent(dispatched)
    frame = parse_frame(data)
    assert (frame.cn, frame.st, frame.pw, frame.mn, frame.flag, frame.cp) == ("3015", "21", "123456", STATION.mn,
                                                                               "5", ())
    assert frame.qn == "20240514100100000"
    [result] = results(exchange(commands, logger, dispatched, T0 + timedelta(minutes=1)))
    assert (result.outcome, result.bottle, result.code, result.incident_id) == (CommandOutcome.EXECUTED, 1, 1, "RG-1")
    assert result.sampled_at == T0 + timedelta(minutes=1)
    assert result.message_zh == "宏缘站已超标留样（1 号瓶，2024-05-14 10:01）"
    assert [s.bottle for s in logger.samples] == [1]


def test_one_command_in_flight_per_station_the_next_after_the_result() -> None:
    commands = book()
    logger = LoggerState(STATION, "123456")
    commands.online(STATION.station_id, "21", T0)
    first = commands.add(order("c1"), T0)
    assert len(sent(first)) == 1
    assert sent(commands.add(order("c2"), T0)) == []
    assert [c.command_id for c in commands.waiting(STATION.station_id)] == ["c2"]
    effects = exchange(commands, logger, first, T0)  # c2 goes out once c1 has its result
    assert [(r.command_id, r.bottle) for r in results(effects)] == [("c1", 1), ("c2", 2)]
    assert len({s.qn for s in logger.samples}) == 2


@pytest.mark.parametrize(("answer", "outcome", "code"), [
    ("CN=9011;PW=123456;MN={mn};Flag=4;CP=&&QnRtn=3&&", CommandOutcome.REFUSED, 3),
    ("CN=9012;PW=123456;MN={mn};Flag=4;CP=&&ExeRtn=5&&", CommandOutcome.FAILED, 5),
])
def test_refused_and_failed(answer: str, outcome: CommandOutcome, code: int) -> None:
    commands = book()
    [data] = sent(commands.online(STATION.station_id, "21", T0) + commands.add(order(), T0))
    qn = parse_frame(data).qn
    raw = f"QN={qn};ST=91;" + answer.format(mn=STATION.mn)
    framed = b"##%04d%s%04X\r\n" % (len(raw), raw.encode(), crc16(raw.encode()))
    [result] = results(commands.answer(STATION.station_id, parse_frame(framed), T0))
    assert (result.outcome, result.code) == (outcome, code)
    assert str(code) in result.message_zh


def test_expiry_offline_and_unanswered() -> None:
    commands = book()
    commands.add(order("waits", ttl=timedelta(minutes=10)), T0)
    [expired] = results(commands.tick(T0 + timedelta(minutes=11)))
    assert (expired.command_id, expired.outcome) == ("waits", CommandOutcome.EXPIRED)
    assert expired.message_zh == "宏缘站离线，超标留样命令已过期"
    commands.online(STATION.station_id, "21", T0)
    commands.add(order("silence"), T0)
    assert results(commands.tick(T0 + timedelta(minutes=1))) == []
    [unanswered] = results(commands.tick(T0 + timedelta(minutes=3)))
    assert unanswered.outcome is CommandOutcome.UNANSWERED
    commands.add(order("cut"), T0 + timedelta(minutes=3))
    [cut] = results(commands.offline(STATION.station_id, T0 + timedelta(minutes=4)))
    assert (cut.command_id, cut.outcome) == ("cut", CommandOutcome.UNANSWERED)
    assert commands.add(order("waits"), T0) == []  # done once: not again


def incident(stations: tuple[str, ...], **changes: object) -> Incident:
    fields: dict[str, object] = {
        "incident_id": "RG-0A1B2C3D", "key": "pollution|tuo|tuo|Cd", "route": Route.POLLUTION, "river": "tuo",
        "reach": "tuo", "pollutant": "Cd", "kind": DetectionKind.LIMIT_EXCEEDANCE, "level": WarningLevel.ORANGE,
        "opened_at": T0, "updated_at": T0 + timedelta(minutes=20), "last_active_at": T0, "first_station": stations[0],
        "stations": stations,
    }
    return Incident.model_validate(fields | changes)


def test_a_pollution_incident_retains_a_sample_at_each_of_its_stations_once() -> None:
    commands = book()
    commands.online(STATION.station_id, "21", T0)
    [data] = sent(commands.incident(incident((STATION.station_id,)), T0 + timedelta(minutes=1)))
    assert parse_frame(data).cn == "3015"
    assert commands.incident(incident((STATION.station_id,)), T0 + timedelta(minutes=2)) == []  # an update
    assert sent(commands.incident(incident((STATION.station_id, OTHER.station_id)), T0)) == []  # offline
    [waiting] = commands.waiting(OTHER.station_id)
    assert waiting.command_id == f"RG-0A1B2C3D:retain_sample:{OTHER.station_id}"
    assert waiting.expires_at == T0 + timedelta(minutes=20) + timedelta(hours=1)  # from when it joined


def test_what_does_not_retain_a_sample() -> None:
    commands = book()
    commands.online(STATION.station_id, "21", T0)
    assert commands.incident(incident((STATION.station_id,), route=Route.MAINTENANCE,
                                      key="maintenance|tuo-hongyuan|sensor_fault"), T0) == []
    assert commands.incident(incident((STATION.station_id,), status=IncidentStatus.RESOLVED), T0) == []
    done = CommandResult.of(order(f"RG-0A1B2C3D:retain_sample:{STATION.station_id}"), CommandOutcome.EXECUTED, at=T0)
    commands.seen(done)  # a restarted gateway read it back from Kafka
    assert commands.incident(incident((STATION.station_id,)), T0) == []
    old = incident((STATION.station_id,), incident_id="RG-OLD")  # read back at start, a day later
    assert commands.incident(old, T0 + timedelta(days=1)) == []


def test_clock_setting_with_its_interval() -> None:
    commands = book()
    logger = LoggerState(STATION, "123456", clock_offset=timedelta(minutes=-7))
    commands.online(STATION.station_id, "21", T0)
    dispatched = commands.clock_off(STATION.station_id, timedelta(minutes=-7), T0)
    [data] = sent(dispatched)
    frame = parse_frame(data)
    assert (frame.cn, frame.cp) == ("1012", (("SystemTime", "20240514100000"),))
    [result] = results(exchange(commands, logger, dispatched, T0))
    assert (result.kind, result.outcome) == (CommandKind.SET_CLOCK, CommandOutcome.EXECUTED)
    assert logger.clock_offset == timedelta(0)
    assert commands.clock_off(STATION.station_id, timedelta(minutes=-7), T0 + timedelta(minutes=30)) == []
    assert len(sent(commands.clock_off(STATION.station_id, None, T0 + timedelta(minutes=31)))) == 1  # it asked
