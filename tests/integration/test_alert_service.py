"""The alert service end to end with real Apprise: JSON webhooks to local HTTP receivers and e-mail
to a local SMTP server (aiosmtpd), the incident API over real HTTP, a manual clock for schedules.

The bus here is the in-memory one (the restart test in ``test_alert_restart.py`` uses Kafka).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import socket
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from alerts.playbook_source import NoPlaybooks, PlaybookSource
from alerts.service import AlertService
from pipeline.cli import app
from pipeline.stages import alert_stage
from riverguard.bus.base import Bus, Record, TopicPartition
from riverguard.bus.kafka import KafkaBus
from riverguard.bus.memory import MemoryBus
from riverguard.bus.topics import topic_specs
from riverguard.incidents import DeliveryOutcome, IncidentStatus, NotificationRecord, WarningLevel
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding, decode, encode
from riverguard.settings import AlertSettings, Settings, TopicSettings
from riverguard.stations import load_registry
from tests.support.clock import ManualClock

pytestmark = pytest.mark.integration

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
TOKEN = "test-token-9f8e7d"


# -- receivers ------------------------------------------------------------------------------


@dataclass
class Receiver:
    """JSON webhook endpoints: ``/name`` collects what Apprise posts; failures and holds on demand."""

    failures: dict[str, int] = field(default_factory=dict)
    holds: dict[str, threading.Event] = field(default_factory=dict)
    accepted: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def messages(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.accepted.get(name, []))

    def bodies(self, name: str) -> list[str]:
        return [m["message"] for m in self.messages(name)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            name = self.path.strip("/").split("?")[0]
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            hold = state.holds.get(name)
            if hold is not None:
                hold.wait(timeout=30)
            with state.lock:
                state.attempts[name] = state.attempts.get(name, 0) + 1
                failing = state.failures.get(name, 0)
                if failing:
                    state.failures[name] = failing - 1
                else:
                    state.accepted.setdefault(name, []).append(payload)
            self.send_response(500 if failing else 200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    for hold in state.holds.values():
        hold.set()
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.messages if address in rcpt]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        box.port = s.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


# -- the service ----------------------------------------------------------------------------


ROUTING = """\
routes:
  - {name: tuo-duty, match: {route: pollution, river: [tuo]}, notify: [duty]}
  - {name: red, match: {route: pollution, min_level: red}, notify: [bureau]}
  - {name: maintenance, match: {route: maintenance}, notify: [ops]}
escalation:
  min_level: yellow
  stages:
    - {after_min: 15, notify: [chief]}
    - {after_min: 30, notify: [bureau]}
  reminder_every_min: 10
  max_reminders: 3
rate_limits:
  default: {burst: 20, per_hour: 60}
  sms: {burst: 3, per_hour: 6}
channels: {duty: sms}
retry: {base_s: 5, max_s: 60, max_attempts: 5}
"""


def configure(tmp_path: Path, base: Settings, receiver: Receiver, mailbox: Mailbox, unique: str,
              routing: str = ROUTING, extra_urls: str = "") -> Settings:
    apprise = tmp_path / "apprise.yaml"
    apprise.write_text(
        "version: 1\nurls:\n"
        f"  - json://127.0.0.1:{receiver.port}/duty:\n      - tag: duty\n"
        f"  - json://127.0.0.1:{receiver.port}/chief:\n      - tag: chief\n"
        f"  - json://127.0.0.1:{receiver.port}/ops:\n      - tag: ops\n"
        f"  - mailto://127.0.0.1:{mailbox.port}?from=riverguard@example.cn&to=bureau@example.cn&mode=insecure:\n"
        "      - tag: bureau\n" + extra_urls,
        encoding="utf-8",
    )
    routing_file = tmp_path / "routing.yaml"
    routing_file.write_text(routing, encoding="utf-8")
    topics = TopicSettings(**{name: f"{value}-{unique}" for name, value in TopicSettings().model_dump().items()})
    alerts = AlertSettings(apprise_config=apprise, routing_file=routing_file, http_port=0,
                           api_token=TOKEN, public_url="https://alerts.example.cn")
    return base.model_copy(update={"topics": topics, "alerts": alerts})


@asynccontextmanager
async def running(settings: Settings, bus: Bus, clock: ManualClock, playbooks: PlaybookSource | None = None,
                  group_id: str = "alerts-test", reload_s: float = 5.0) -> AsyncIterator[AlertService]:
    runtime, service = alert_stage(settings, load_registry(), bus, group_id=group_id,
                                   playbooks=playbooks or NoPlaybooks(), clock=clock, tick_s=0.02)
    service.reload_s = reload_s
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    await eventually(service.ready.is_set, "the alert service did not start")
    try:
        yield service
    finally:
        stop.set()
        await task


async def eventually(condition: Callable[[], object], what: str) -> None:
    """Wait for ``condition`` (polling, up to 30 s); fail with ``what`` if it never holds."""
    deadline = asyncio.get_running_loop().time() + 30.0
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.02)


async def settle(service: AlertService) -> None:
    """Let ticks and sends run until nothing is due or in flight."""
    def idle() -> bool:
        return not service.book.due(service.clock()) and not service._in_flight

    await eventually(idle, "deliveries did not settle")
    await asyncio.sleep(0.1)
    await eventually(idle, "deliveries did not settle")


def spill(n: int, *, station: str = "tuo-jiaoxiancun", event: str = "evt-nh3n", parameter: str = "NH3N",
          multiple: float = 1.5, kind: DetectionKind = DetectionKind.LIMIT_EXCEEDANCE,
          phase: DetectionPhase = DetectionPhase.ONSET, river: str = "tuo") -> Detection:
    findings = (Finding(parameter=parameter, value=round(0.005 * (1 + multiple), 6) if parameter == "Cd"
                        else 1.0 * (1 + multiple), limit=1.0, multiple=multiple, unit="mg/L"),)
    return Detection(detection_id=f"{event}-{n}", event_id=event, station_id=station, river=river,
                     time=T0 + timedelta(minutes=n), kind=kind, phase=phase,
                     findings=findings if kind.is_pollution else (), detector="test")


async def publish(bus: Bus, settings: Settings, *detections: Detection) -> None:
    async with bus.producer() as producer:
        for d in detections:
            await producer.send_and_wait(settings.topics.detections, encode(d), key=d.station_id.encode())


async def records(bus: Bus, settings: Settings) -> list[NotificationRecord]:
    topic = settings.topics.notifications
    out = []
    for partition in range(await bus.partitions(topic)):
        out += [decode(r.value, NotificationRecord).payload
                for r in await bus.read_partition(TopicPartition(topic, partition)) if r.value]
    return sorted(out, key=lambda r: (r.at, r.attempt))


async def http(method: str, url: str, body: dict[str, str] | None = None, token: str | None = TOKEN,
               form: str | None = None) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        data = form.encode() if form is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(url, method=method, data=data)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read().decode()
                return response.status, json.loads(raw) if response.headers["Content-Type"].startswith(
                    "application/json") else raw
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return await asyncio.to_thread(call)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    memory = MemoryBus(default_partitions=2)
    yield memory
    await memory.close()


# -- tests ----------------------------------------------------------------------------------


async def test_the_right_people_get_the_right_message_for_each_severity(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus
) -> None:
    from alerts.playbook_source import RiverPlaybooks

    class CountingPlaybooks(RiverPlaybooks):
        asked: list[str]

        def for_detection(self, detection: Detection) -> Any:
            self.asked.append(detection.detection_id)
            return super().for_detection(detection)

    cfg = configure(tmp_path, settings, receiver, mailbox, unique)
    clock = ManualClock(T0)
    playbooks = CountingPlaybooks.from_settings(cfg)
    playbooks.asked = []
    async with running(cfg, bus, clock, playbooks=playbooks) as service:
        # yellow ammonia on the Tuo: the duty officer's SMS, nobody else
        await publish(bus, cfg, spill(0, multiple=1.5))
        await eventually(lambda: receiver.bodies("duty"), "the duty officer got no SMS")
        await settle(service)
        sms = receiver.bodies("duty")[0]
        nh3n = service.book.incidents()[0]
        assert nh3n.level is WarningLevel.YELLOW
        assert "【黄色预警】沱江 脚仙村站 氨氮超标1.5倍" in sms
        assert "富顺县城取水口" in sms
        assert nh3n.incident_id in sms
        assert len(sms) <= 134
        assert mailbox.messages == []
        assert receiver.messages("ops") == []

        # cadmium 12× over: red → duty SMS plus the bureau's e-mail with the HTML playbook and map
        await publish(bus, cfg, spill(1, event="evt-cd", parameter="Cd", multiple=12.0))
        await eventually(lambda: mailbox.to("bureau@example.cn"), "the bureau got no e-mail")
        await settle(service)
        cd = next(i for i in service.book.incidents() if i.pollutant == "Cd")
        assert cd.level is WarningLevel.RED
        assert any("【红色预警】" in b and "镉超标12.0倍" in b for b in receiver.bodies("duty"))
        mail = mailbox.to("bureau@example.cn")[0]
        assert cd.incident_id in str(mail["Subject"])
        html_part = mail.get_body(preferencelist=("html",))
        assert html_part is not None
        html = html_part.get_content()
        assert "级别依据" in html
        assert "重金属 → 升 1 级" in html
        assert f"https://alerts.example.cn/ack/{cd.incident_id}?k=" in html
        attachments = [p.get_content_type() for p in mail.iter_attachments()]
        assert attachments == ["image/png"]
        port = service.api.port if service.api else 0
        playbook = f"http://127.0.0.1:{port}/incidents/{cd.incident_id}/playbook?k={service.capability(cd.incident_id)}"
        status, page = await http("GET", playbook, token=None)
        assert status == 200
        assert "<svg" in page

        # a sensor fault: maintenance route only
        await publish(bus, cfg, spill(2, event="evt-fault", kind=DetectionKind.SENSOR_FAULT, station="tuo-damozi"))
        await eventually(lambda: receiver.messages("ops"), "ops got no maintenance message")
        await settle(service)
        assert len(receiver.bodies("duty")) == 2
        assert len(mailbox.messages) == 1
        assert "大磨子站 仪器故障" in receiver.messages("ops")[0]["title"]  # the station by its name
    # each detection's playbook is asked for once, when it is observed: the messages reuse it
    assert sorted(playbooks.asked) == sorted({*playbooks.asked})
    assert len(playbooks.asked) == 2
    sent = [r for r in await records(bus, cfg) if r.outcome is DeliveryOutcome.SENT]
    assert len(sent) == 4
    assert all("test-token" not in r.target for r in sent)


async def test_a_burst_of_500_detections_is_one_incident_and_few_messages(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus
) -> None:
    cfg = configure(tmp_path, settings, receiver, mailbox, unique)
    clock = ManualClock(T0)
    stations = ["tuo-lijiawan", "tuo-jiaoxiancun", "tuo-damozi"]
    burst = [
        spill(n, station=stations[n * 3 // 500], event=f"evt-{stations[n * 3 // 500]}",
              multiple=0.2 + 15 * n / 500, phase=DetectionPhase.ONSET if n % 167 == 0 else DetectionPhase.UPDATE)
        for n in range(500)
    ]
    async with running(cfg, bus, clock) as service:
        await publish(bus, cfg, *burst)
        await eventually(lambda: sum(i.detection_count for i in service.book.incidents()) == 500,
                         "not every detection was processed")
        await settle(service)
        incidents = service.book.incidents()
        assert len(incidents) == 1
        incident = incidents[0]
        assert set(incident.stations) == set(stations)
        assert incident.level is WarningLevel.RED
        # opened and at most three raises reach the duty officer, whatever order the partitions come in
        assert 1 <= len(receiver.bodies("duty")) <= 4
        assert len(mailbox.messages) <= 1
        assert receiver.messages("chief") == []


async def test_an_incident_that_opens_and_rises_in_one_batch_reaches_the_duty_officer_once(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus
) -> None:
    cfg = configure(tmp_path, settings, receiver, mailbox, unique)
    clock = ManualClock(T0)
    batch = [
        Record(cfg.topics.detections, 0, n, b"tuo-jiaoxiancun", encode(d), 0)
        for n, d in enumerate((spill(0, multiple=1.5), spill(1, multiple=4.0, phase=DetectionPhase.UPDATE)))
    ]
    async with running(cfg, bus, clock) as service:
        await service.handle(batch)  # yellow, then orange, before anything was sent
        await eventually(lambda: receiver.bodies("duty"), "the duty officer got no SMS")
        await settle(service)
        incident = service.book.incidents()[0]
        assert incident.level is WarningLevel.ORANGE
        (sms,) = receiver.bodies("duty")
        assert sms.startswith("【橙色预警】")
        assert "升级" not in sms
    assert [r.reason.value for r in await records(bus, cfg)] == ["opened"]


async def test_a_storm_is_rate_limited_and_summarised_not_dropped(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus
) -> None:
    cfg = configure(tmp_path, settings, receiver, mailbox, unique)
    clock = ManualClock(T0)
    pollutants = ["NH3N", "TP", "COD", "CODMn", "BOD5", "phenol"]
    async with running(cfg, bus, clock) as service:
        # blue (0.5× over): routine notices, the only ones a rate limit holds back
        await publish(bus, cfg, *(spill(0, event=f"evt-{p}", parameter=p, multiple=0.5) for p in pollutants))
        await eventually(lambda: len(service.book.incidents()) == 6, "six incidents expected")
        await settle(service)
        assert len(receiver.bodies("duty")) == 3  # the SMS bucket: burst 3
        clock.advance(minutes=10)  # one token back: the held-back three go out as one summary
        await eventually(lambda: len(receiver.bodies("duty")) == 4, "no storm summary")
        await settle(service)
        summary = receiver.bodies("duty")[3]
        assert summary.startswith("【限流汇总·污染·最高蓝色】限流期间3条通知未发送")
        held = {i.incident_id for i in service.book.incidents()} - {
            i.incident_id for i in service.book.incidents() for b in receiver.bodies("duty")[:3] if i.incident_id in b
        }
        assert all(incident_id in summary for incident_id in held)
    suppressed = [r for r in await records(bus, cfg) if r.outcome is DeliveryOutcome.SUPPRESSED]
    assert len(suppressed) == 3


async def test_unacknowledged_incidents_escalate_on_schedule_and_ack_stops_it(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus
) -> None:
    cfg = configure(tmp_path, settings, receiver, mailbox, unique)
    clock = ManualClock(T0)
    async with running(cfg, bus, clock) as service:
        await publish(bus, cfg, spill(0, multiple=2.0))
        await eventually(lambda: receiver.bodies("duty"), "no first SMS")
        incident_id = service.book.incidents()[0].incident_id
        clock.advance(minutes=14, seconds=59)
        await settle(service)
        assert receiver.messages("chief") == []
        clock.advance(seconds=1)
        await eventually(lambda: receiver.messages("chief"), "the section chief was not paged at 15 min")
        assert "逐级上报1" in receiver.messages("chief")[0]["title"]
        await settle(service)

        base = f"http://127.0.0.1:{service.api.port if service.api else 0}"
        status, _ = await http("POST", f"{base}/incidents/{incident_id}/ack", {"by": "张三"}, token="wrong")
        assert status == 401
        status, body = await http("POST", f"{base}/incidents/{incident_id}/ack", {"by": "张三", "note": "已派人"})
        assert status == 200
        assert body["status"] == "acknowledged"
        chief_before = len(receiver.messages("chief"))
        duty_before = len(receiver.bodies("duty"))
        for _ in range(12):
            clock.advance(minutes=5)
            await settle(service)
        assert mailbox.messages == []  # stage 2 (bureau, 30 min) never fired
        assert len(receiver.messages("chief")) == chief_before
        assert len(receiver.bodies("duty")) <= duty_before + 1  # at most the auto-resolve notice
        assert service.book.get(incident_id).acknowledged_by == "张三"


async def test_a_receiver_that_fails_twice_then_recovers_gets_the_message_once(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus
) -> None:
    extra = (f"  - json://127.0.0.1:{receiver.port}/hang:\n      - tag: duty\n"
             f"  - json://127.0.0.1:{receiver.port}/down:\n      - tag: duty\n")
    cfg = configure(tmp_path, settings, receiver, mailbox, unique, extra_urls=extra)
    receiver.failures.update({"duty": 2, "down": 1000})
    receiver.holds["hang"] = threading.Event()
    clock = ManualClock(T0)
    async with running(cfg, bus, clock) as service:
        await publish(bus, cfg, spill(0, multiple=0.5))
        def recorded_attempts() -> int:
            # what the service has recorded (not what the receiver saw), so clock steps never race it
            return max((e.attempts for i in service.book.incidents() for e in i.outbox if e.target_id == duty_id),
                       default=0)

        duty_id = next(t.target_id for t in service.directory.targets if t.redacted.split("?")[0].endswith("/duty"))
        await eventually(lambda: recorded_attempts() == 1, "no first attempt")
        clock.advance(seconds=5)
        await eventually(lambda: recorded_attempts() == 2, "no retry after 5 s")
        clock.advance(seconds=9)
        await asyncio.sleep(0.3)
        assert receiver.attempts["duty"] == 2  # backoff doubled: not before 10 s
        clock.advance(seconds=1)
        await eventually(lambda: receiver.bodies("duty"), "no delivery after recovery")
        # a target that hangs and one that stays down held up nobody
        assert receiver.attempts.get("hang") is None
        receiver.holds["hang"].set()
        await eventually(lambda: receiver.messages("hang"), "the held target never completed")
        for _ in range(6):
            clock.advance(minutes=1)
            await settle(service)
        assert len(receiver.bodies("duty")) == 1
        assert receiver.attempts["duty"] == 3
    duty = [r for r in await records(bus, cfg) if "/duty" in r.target]
    assert [(r.attempt, r.outcome) for r in duty] == [
        (1, DeliveryOutcome.FAILED), (2, DeliveryOutcome.FAILED), (3, DeliveryOutcome.SENT)
    ]
    down = [r.outcome for r in await records(bus, cfg) if "/down" in r.target]
    assert down[-1] is DeliveryOutcome.GAVE_UP
    assert len(down) == 5


async def test_ack_link_and_cli_against_the_running_service(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    cfg = configure(tmp_path, settings, receiver, mailbox, unique)
    clock = ManualClock(T0)
    async with running(cfg, bus, clock) as service:
        await publish(bus, cfg, spill(0, multiple=2.0), spill(1, event="evt-tp", parameter="TP", multiple=1.2))
        await eventually(lambda: len(service.book.incidents()) == 2, "two incidents expected")
        await settle(service)
        nh3n = next(i for i in service.book.incidents() if i.pollutant == "NH3N")
        port = service.api.port if service.api else 0
        link = f"http://127.0.0.1:{port}/ack/{nh3n.incident_id}?k={service.capability(nh3n.incident_id)}"
        status, page = await http("GET", link, token=None)
        assert status == 200
        assert "确认接警" in page
        status, _ = await http("GET", link.replace("?k=", "?k=0"), token=None)
        assert status == 401
        status, page = await http("POST", link, token=None, form="by=%E6%9D%8E%E5%9B%9B")
        assert "已确认" in page
        assert service.book.get(nh3n.incident_id).acknowledged_by == "李四"

        env = {"RIVERGUARD_ALERTS__API_TOKEN": TOKEN}
        url = f"http://127.0.0.1:{port}"
        runner = CliRunner()
        listed = await asyncio.to_thread(runner.invoke, app, ["incidents", "list", "--url", url, "--json"], env=env)
        assert listed.exit_code == 0, listed.output
        listed_ids = {i["incident_id"] for i in json.loads(listed.stdout)}
        assert listed_ids == {i.incident_id for i in service.book.incidents()}
        tp = next(i for i in service.book.incidents() if i.pollutant == "TP")
        resolved = await asyncio.to_thread(
            runner.invoke, app, ["incidents", "resolve", tp.incident_id, "--by", "王五", "--url", url], env=env
        )
        assert resolved.exit_code == 0, resolved.output
        assert service.book.get(tp.incident_id).status is IncidentStatus.RESOLVED
        missing = await asyncio.to_thread(
            runner.invoke, app, ["incidents", "ack", "RG-00000000", "--by", "x", "--url", url], env=env
        )
        assert missing.exit_code == 1
        assert "no incident 'RG-00000000'" in missing.output
    assert "POST /ack/" in caplog.text
    assert TOKEN not in caplog.text
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("alerts", "riverguard")))
    assert service.capability(nh3n.incident_id) not in ours  # (Apprise itself logs bodies at DEBUG)


async def test_an_edited_routing_file_applies_a_maintenance_window_without_restart(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = configure(tmp_path, settings, receiver, mailbox, unique)
    assert cfg.alerts.routing_file is not None
    clock = ManualClock(T0)
    async with running(cfg, bus, clock, reload_s=0.05) as service:
        window = ("silences:\n  - {kind: maintenance, station: tuo-jiaoxiancun, until: '2024-06-01T12:00:00+08:00',"
                  " reason: 更换氨氮分析仪}\n")
        cfg.alerts.routing_file.write_text(ROUTING + window, encoding="utf-8")
        await eventually(lambda: service.book.routing.silences, "the edited routing file was not picked up")
        await publish(bus, cfg, spill(0, multiple=3.0))
        await eventually(service.book.incidents, "no incident")
        await settle(service)
        incident = service.book.incidents()[0]
        assert incident.route.value == "maintenance"  # the window turned pollution readings into maintenance
        assert "更换氨氮分析仪" in incident.silenced_by  # and mutes it: planned work pages nobody
        assert receiver.bodies("duty") == []
        assert receiver.messages("ops") == []
        cfg.alerts.routing_file.write_text("routes: [oops\n", encoding="utf-8")
        await eventually(lambda: "keeping the routing loaded before" in caplog.text, "a bad edit was not reported")
        assert service.book.routing.silences  # the bad edit changed nothing
    suppressed = [r for r in await records(bus, cfg) if r.outcome is DeliveryOutcome.SUPPRESSED]
    assert ["更换氨氮分析仪" in r.error for r in suppressed] == [True]


async def test_in_process_demo_target_writes_a_file(tmp_path: Path, settings: Settings, unique: str,
                                                    bus: MemoryBus) -> None:
    out = tmp_path / "alerts.jsonl"
    apprise = tmp_path / "apprise.yaml"
    apprise.write_text(f"urls:\n  - rgfile://{out}:\n      - tag: console\n", encoding="utf-8")
    topics = TopicSettings(**{name: f"{value}-{unique}" for name, value in TopicSettings().model_dump().items()})
    cfg = settings.model_copy(update={"topics": topics, "alerts": AlertSettings(apprise_config=apprise, http_port=0,
                                                                                language="en")})
    await bus.create_topics(topic_specs(cfg))
    async with running(cfg, bus, ManualClock(T0)) as service:
        await publish(bus, cfg, spill(0, multiple=4.0))
        await eventually(out.exists, "the file target was never written")
        await settle(service)
    line = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert line["title"].startswith("[ORANGE alert] Tuo River")
    assert "Why orange" in line["body"]


@pytest.mark.slow
async def test_restarting_mid_incident_on_kafka_sends_no_duplicate(
    tmp_path: Path, kafka_settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str
) -> None:
    cfg = configure(tmp_path, kafka_settings, receiver, mailbox, unique)
    cfg = cfg.model_copy(update={"kafka": cfg.kafka.model_copy(update={"partitions": 2})})
    bus = KafkaBus(cfg.kafka)
    clock = ManualClock(T0)
    group = f"alerts-{unique}"
    async with running(cfg, bus, clock, group_id=group) as service:
        await publish(bus, cfg, spill(0, multiple=2.0))
        await eventually(lambda: receiver.bodies("duty"), "no first SMS")
        await settle(service)
        incident_id = service.book.incidents()[0].incident_id
    # while the service is down: the same detection again (a replay) and an update of the event
    await publish(bus, cfg, spill(0, multiple=2.0), spill(1, multiple=2.5, phase=DetectionPhase.UPDATE))
    clock.advance(minutes=5)
    async with running(cfg, bus, clock, group_id=group) as service:
        await eventually(lambda: service.book.incidents() and service.book.get(incident_id).detection_count == 3,
                         "the restarted service did not restore the incident and take the new detections")
        await settle(service)
        assert len(service.book.incidents()) == 1
        assert len(receiver.bodies("duty")) == 1
        clock.advance(minutes=10)  # 15 min after opening: escalation resumes on schedule after the restart
        await eventually(lambda: receiver.messages("chief"), "no escalation after the restart")
        await settle(service)
    async with running(cfg, bus, clock, group_id=group) as service:
        await eventually(service.book.incidents, "nothing restored on the third start")
        await settle(service)
        assert service.book.get(incident_id).escalation_stage == 1
    assert len(receiver.bodies("duty")) == 1
    assert len(receiver.messages("chief")) == 1
    sent = [r.record_id for r in await records(bus, cfg) if r.outcome is DeliveryOutcome.SENT]
    assert len(sent) == len(set(sent)) == 2
    # with the service down, `incidents list` reads the compacted topic instead
    env = {"RIVERGUARD_TOPICS__INCIDENTS": cfg.topics.incidents}
    listed = await asyncio.to_thread(
        CliRunner().invoke, app, ["incidents", "list", "--status", "all", "--json", "--url", "http://127.0.0.1:9"],
        env=env,
    )
    assert listed.exit_code == 0, listed.output
    assert incident_id in listed.stdout
    assert f"reading {cfg.topics.incidents} from Kafka instead" in listed.stderr


async def test_a_gateway_refusal_for_good_is_not_retried_a_passing_one_is(
    tmp_path: Path, settings: Settings, receiver: Receiver, mailbox: Mailbox, unique: str, bus: MemoryBus
) -> None:
    """Tencent Cloud SMS answering like the real one: an unapproved template ends the delivery at
    once (one attempt, ``gave_up``); a frequency limit is retried until it passes."""
    answers = [  # first delivery: refused for good; second: throttled once, then accepted
        "FailedOperation.TemplateIncorrectOrUnapproved", "LimitExceeded.PhoneNumberThirtySecondLimit", "Ok",
    ]
    asked: list[dict[str, Any]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(request)
            code = answers.pop(0) if answers else "Ok"
            status = {"PhoneNumber": request["PhoneNumberSet"][0], "Code": code, "Message": code}
            body = json.dumps({"Response": {"SendStatusSet": [status], "RequestId": "r"}}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    url = (f"  - tencentsms://AKIDTEST:secret@127.0.0.1:{server.server_address[1]}/13800000000"
           "?sign=河长办&template=2140001&app=1400006666&https=no:\n      - tag: duty\n")
    cfg = configure(tmp_path, settings, receiver, mailbox, unique, extra_urls=url)
    clock = ManualClock(T0)
    try:
        async with running(cfg, bus, clock) as service:
            await publish(bus, cfg, spill(0, multiple=1.5))
            await eventually(lambda: len(asked) == 1, "the gateway was not asked")
            await settle(service)
            await publish(bus, cfg, spill(1, event="evt-tp", parameter="TP", multiple=1.5))
            await eventually(lambda: len(asked) == 2, "the second alert did not reach the gateway")
            await settle(service)
            clock.advance(seconds=6)  # past the retry delay (base_s: 5)
            await eventually(lambda: len(asked) == 3, "the throttled SMS was not retried")
            await settle(service)
    finally:
        server.shutdown()
        server.server_close()
    gateway = [r for r in await records(bus, cfg) if r.channel.value == "sms_template"]
    by_alert: dict[str, list[tuple[str, int]]] = {}
    for r in gateway:
        by_alert.setdefault(r.notification_id, []).append((r.outcome.value, r.attempt))
    assert sorted(by_alert.values()) == [[("failed", 1), ("sent", 2)], [("gave_up", 1)]]
    refused = next(r for r in gateway if r.outcome is DeliveryOutcome.GAVE_UP)
    assert refused.error == "tencent: +861380000****: FailedOperation.TemplateIncorrectOrUnapproved"
    assert asked[0]["TemplateParamSet"][0] == "黄色预警"
    assert all("secret" not in r.target for r in gateway)
