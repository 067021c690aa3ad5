"""The whole pipeline as real processes: what the end-to-end tests, the fault tests and
``bench/e2e.py`` share (no pytest in here, so the benchmark can use it too).

- :class:`Pipeline`: the four services (``riverguard run ingest|detect|alert|sink``) as
  subprocesses with their own topics, consumer groups, MQTT session and InfluxDB database, their
  output in one log file each; optionally supervised (restarted when one exits by itself, the
  way systemd or Kubernetes would).
- :class:`Receiver`: the HTTP endpoint Apprise's ``json://`` posts to, recording every delivery
  with its arrival time.
- :class:`PrivateStack`: Mosquitto, Kafka and InfluxDB of our own through ``deploy/stack.sh`` on
  other ports and in another runtime dir, so a test can restart them without touching the
  shared stack other people use.
- :class:`StationFeed`: an MQTT publisher that behaves like a station data logger: QoS 1, keeps
  unacknowledged messages across broker restarts and sends them again (paho does this).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import paho.mqtt.client as paho
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, SecretStr

from riverguard.bus.base import Record, TopicPartition
from riverguard.bus.kafka import KafkaBus, connection_options
from riverguard.bus.topics import topic_specs
from riverguard.settings import AlertSettings, InfluxSettings, MqttSettings, Settings, TopicSettings

REPO = Path(__file__).resolve().parents[2]
RIVERGUARD = Path(sys.executable).parent / "riverguard"
STACK_SCRIPT = REPO / "deploy" / "stack.sh"
SERVICES = ("ingest", "detect", "alert", "sink")


def dev_password(user: str) -> str:
    """The dev-only MQTT password of ``user`` (deploy/mosquitto/dev-users.txt)."""
    for line in (REPO / "deploy/mosquitto/dev-users.txt").read_text().splitlines():
        name, _, password = line.partition(":")
        if name == user and not line.startswith("#"):
            return password
    raise LookupError(user)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# -- the HTTP receiver Apprise delivers to -----------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    path: str
    title: str
    body: str
    at: float  # time.time() when it arrived


@dataclass
class Receiver:
    """``json://127.0.0.1:<port>/<name>`` targets: every POST is a delivery to ``name``."""

    port: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.time()
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with state.lock:
                    state.deliveries.append(Delivery(self.path.strip("/").split("?")[0], payload.get("title", ""),
                                                     payload.get("message", ""), arrived))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def to(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == path]

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}/{path}"


# -- settings → environment of a service --------------------------------------------------------


def settings_env(settings: Settings) -> dict[str, str]:
    """``RIVERGUARD_*`` variables that make a subprocess load exactly ``settings``.

    The parent's own ``RIVERGUARD_*`` variables are dropped: the child gets these and nothing else.
    Only values that differ from the defaults are passed (a literal like ``mqtt.qos`` would not
    parse back from its string form).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")}
    for section_name in Settings.model_fields:
        section = getattr(settings, section_name)
        if not isinstance(section, BaseModel):
            if section is not None:
                env[f"RIVERGUARD_{section_name.upper()}"] = str(section)
            continue
        defaults = type(section)()
        for name in type(section).model_fields:
            value = getattr(section, name)
            if value is None or value == getattr(defaults, name):
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"RIVERGUARD_{section_name.upper()}__{name.upper()}"] = str(value)
    return env


def isolated(base: Settings, unique: str, *, bucket: str, receiver: Receiver, config_dir: Path,
             partitions: int = 3, routing: str | None = None) -> Settings:
    """``base`` (addresses) with this run's own topics, MQTT session and topics, database and
    Apprise targets (``/duty`` for pollution, ``/ops`` for maintenance)."""
    apprise = config_dir / "apprise.yaml"
    apprise.write_text(
        "version: 1\nurls:\n"
        f"  - {receiver.url('duty')}:\n      - tag: duty\n"
        f"  - {receiver.url('ops')}:\n      - tag: ops\n",
        encoding="utf-8",
    )
    routing_file = config_dir / "routing.yaml"
    routing_file.write_text(routing or ROUTING, encoding="utf-8")
    suffix = f"e2e-{unique}"
    return base.model_copy(update={
        "kafka": base.kafka.model_copy(update={"partitions": partitions}),
        "topics": TopicSettings(**{name: f"{value}-{unique}" for name, value in TopicSettings().model_dump().items()}),
        "mqtt": base.mqtt.model_copy(update={
            "client_id": f"ingest-{suffix}",
            "password": base.mqtt.password or SecretStr(dev_password("riverguard-bridge")),
            "topic_filter": f"stations/+/+/{suffix}",
            "topic_pattern": "stations/{river}/{station_id}/" + suffix,
        }),
        "influx": base.influx.model_copy(update={"bucket": f"{bucket}/autogen", "flush_interval_ms": 200,
                                                 "max_retry_delay_s": 2.0}),
        "alerts": AlertSettings(apprise_config=apprise, routing_file=routing_file, http_port=0),
    })


#: Everything polluting pages the duty officer, instrument trouble goes to ops; no escalation
#: within a test's minutes, and rate limits wide enough that nothing is held back.
ROUTING = """\
routes:
  - {name: duty, match: {route: pollution}, notify: [duty]}
  - {name: ops, match: {route: maintenance}, notify: [ops]}
escalation: {stages: [], reminder_every_min: null}
rate_limits:
  default: {burst: 100000, per_hour: 1000000}
retry: {base_s: 1, max_s: 5, max_attempts: 20}
"""


# -- the services -------------------------------------------------------------------------------


@dataclass
class Service:
    """One ``riverguard run <name>`` subprocess; its stdout and stderr go to ``log``."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    #: Exit codes of runs that ended without being asked to (a supervisor restarted them).
    crashes: list[int] = field(default_factory=list)
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.starts + 1}: {' '.join(self.argv)} =====\n".encode())
            out.flush()
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> int | None:
        """Send ``sig`` and wait for the exit (SIGKILL after ``timeout_s``); the exit code."""
        process = self.process
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(sig)
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory in MB."""
        return process_rss_mb(self.pid)


def process_rss_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    after = stat.rsplit(")", 1)[1].split()
    return (int(after[11]) + int(after[12])) / os.sysconf("SC_CLK_TCK")


class Pipeline:
    """The four services for one isolated :class:`Settings`, with their consumer groups."""

    def __init__(self, settings: Settings, log_dir: Path, unique: str,
                 prefix: Sequence[str] = ()) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.groups = {name: f"{name}-e2e-{unique}" for name in ("detect", "alert", "sink")}
        env = settings_env(settings)
        run = [*prefix, str(RIVERGUARD), "run"]
        self.services = {
            "ingest": Service("ingest", [*run, "ingest"], env, log_dir / "ingest.log"),
            # checkpoints (and offset commits) every 2 s rather than 30: a test waits for commits
            "detect": Service("detect", [*run, "detect", "--group", self.groups["detect"], "--checkpoint-seconds", "2"],
                              env, log_dir / "detect.log"),
            "alert": Service("alert", [*run, "alert", "--group", self.groups["alert"]], env, log_dir / "alert.log"),
            "sink": Service("sink", [*run, "sink", "--group", self.groups["sink"]], env, log_dir / "sink.log"),
        }
        self._stopping: set[str] = set()
        self._watch: threading.Thread | None = None
        self._closed = threading.Event()

    async def prepare(self) -> None:
        """Topics, and the bridge's persistent MQTT session, before anything is published:
        from here on the broker queues the stations' messages for the bridge."""
        await KafkaBus(self.settings.kafka).create_topics(topic_specs(self.settings))
        await asyncio.to_thread(open_bridge_session, self.settings)

    def start(self, *names: str, supervise: bool = False) -> None:
        for name in names or SERVICES:
            self.services[name].start()
        if supervise and self._watch is None:
            self._watch = threading.Thread(target=self._supervise, daemon=True)
            self._watch.start()

    def restart(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Stop ``name`` with ``sig`` (SIGKILL: a crash) and start it again; its exit code."""
        service = self.services[name]
        self._stopping.add(name)
        try:
            code = service.stop(sig)
            service.start()
        finally:
            self._stopping.discard(name)
        return code

    def _supervise(self) -> None:
        while not self._closed.wait(0.5):
            for name, service in self.services.items():
                process = service.process
                if name in self._stopping or process is None or process.poll() is None:
                    continue
                service.crashes.append(process.returncode)
                service.start()

    def stop(self) -> dict[str, int | None]:
        self._closed.set()
        if self._watch is not None:
            self._watch.join()
        # downstream first, so nothing upstream keeps feeding a stage that is gone
        return {name: self.services[name].stop() for name in reversed(SERVICES)}

    def logs(self, lines: int = 60) -> str:
        return "\n".join(f"----- {name} ({s.log}) -----\n{s.tail(lines)}" for name, s in self.services.items())

    def crashes(self) -> dict[str, list[int]]:
        return {name: s.crashes for name, s in self.services.items() if s.crashes}


# -- MQTT ---------------------------------------------------------------------------------------


def _connect(settings: Settings, client: paho.Client, *, clean_start: bool, expiry_s: int) -> None:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = expiry_s
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(settings.mqtt.host, settings.mqtt.port, clean_start=clean_start, properties=properties)
    client.loop_start()
    if not connected.wait(15):
        raise RuntimeError(f"no CONNACK from MQTT {settings.mqtt.host}:{settings.mqtt.port}")


def mqtt5_client(mqtt: MqttSettings, client_id: str) -> paho.Client:
    """A paho MQTT 5 client for ``mqtt``'s broker, with its TLS settings (not yet connected)."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    if (context := mqtt.ssl_context()) is not None:
        client.tls_set_context(context)
    return client


def _bridge_client(settings: Settings) -> paho.Client:
    mqtt = settings.mqtt
    client = mqtt5_client(mqtt, mqtt.client_id)
    client.username_pw_set(mqtt.username, mqtt.password.get_secret_value() if mqtt.password else None)
    return client


def open_bridge_session(settings: Settings) -> None:
    """Create the bridge's persistent session and subscription (what ``run ingest`` resumes)."""
    client = _bridge_client(settings)
    _connect(settings, client, clean_start=False, expiry_s=7 * 24 * 3600)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe(settings.mqtt.topic_filter, qos=1)
    try:
        if not subscribed.wait(15):
            raise RuntimeError("no SUBACK for the bridge's subscription")
    finally:
        client.disconnect()
        client.loop_stop()


def close_bridge_session(settings: Settings) -> None:
    """End the bridge's session on the broker (a clean start with expiry 0 discards it)."""
    client = _bridge_client(settings)
    try:
        _connect(settings, client, clean_start=True, expiry_s=0)
    except (OSError, RuntimeError):
        return
    client.disconnect()
    client.loop_stop()


class StationFeed:
    """Publishes (topic, payload) messages QoS 1 as ``riverguard-sim``, optionally paced.

    Broker restarts are survived the way a data logger survives them: paho reconnects and sends
    every message the broker has not acknowledged again (possibly twice: at least once).
    ``sent_at[i]`` is the wall time message ``i`` was handed to the client.
    """

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.client = mqtt5_client(settings.mqtt, client_id)
        self.client.username_pw_set("riverguard-sim", dev_password("riverguard-sim"))
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.sent_at: list[float] = []
        self.published = 0
        self._acked = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish

    def _on_publish(self, *_: object) -> None:
        # once per message, when the broker acknowledged it (paho counts a resend as the same message)
        with self._lock:
            self._acked += 1

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return self._acked

    def __enter__(self) -> StationFeed:
        _connect(self.settings, self.client, clean_start=True, expiry_s=0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, messages: Iterable[tuple[str, bytes]], *, rate: float | None = None,
                stop: threading.Event | None = None) -> int:
        started = time.monotonic()
        count = 0
        for topic, payload in messages:
            if stop is not None and stop.is_set():
                break
            if rate is not None and (wait := started + count / rate - time.monotonic()) > 0:
                time.sleep(wait)
            self.sent_at.append(time.time())
            # while the broker is away this returns "not connected", but paho keeps the message
            # and sends it after reconnecting
            self.client.publish(topic, payload, qos=1)
            count += 1
        self.published += count
        return count

    def wait_acknowledged(self, limit_s: float = 120.0) -> None:
        """Until the broker acknowledged every message (across reconnects)."""
        deadline = time.monotonic() + limit_s
        while self.acknowledged < self.published:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker acknowledged {self.acknowledged} of {self.published} messages "
                                   f"in {limit_s:g} s")
            time.sleep(0.05)


# -- Kafka and InfluxDB -------------------------------------------------------------------------


async def read_topic(bus: KafkaBus, topic: str) -> list[Record]:
    records: list[Record] = []
    for partition in range(await bus.partitions(topic)):
        records += await bus.read_partition(TopicPartition(topic, partition))
    return records


class KafkaProbe:
    """One metadata consumer and one admin client for polling sizes and consumer-group lag
    (cheap enough to poll several times a second)."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = AIOKafkaConsumer(**connection_options(settings.kafka))
        self._admin = AIOKafkaAdminClient(**connection_options(settings.kafka))
        self._known: dict[str, list[int]] = {}

    async def __aenter__(self) -> KafkaProbe:
        await self._consumer.start()
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def _partitions(self, topics: Sequence[str]) -> list[KafkaTopicPartition]:
        missing = [t for t in topics if t not in self._known]
        if missing:
            for topic in await self._admin.describe_topics(missing):
                if topic["error_code"] == 0 and topic["partitions"]:
                    self._known[topic["topic"]] = sorted(p["partition"] for p in topic["partitions"])
        return [KafkaTopicPartition(t, p) for t in topics for p in self._known.get(t, ())]

    async def size(self, *topics: str) -> int:
        """Records ever written to ``topics`` (sum of the end offsets)."""
        tps = await self._partitions(topics)
        return sum((await self._consumer.end_offsets(tps)).values()) if tps else 0

    async def lag(self, group: str, *topics: str) -> int:
        """Records of ``topics`` the group has not committed yet (its whole backlog)."""
        tps = await self._partitions(topics)
        ends = await self._consumer.end_offsets(tps) if tps else {}
        committed = await self._admin.list_consumer_group_offsets(group)
        return sum(end - max(committed[tp].offset if tp in committed else 0, 0) for tp, end in ends.items())


def influx_statement(influx: InfluxSettings, statement: str) -> None:
    """Run an InfluxQL statement as ``influx.token``'s user (1.8 takes "<user>:<password>" as a token)."""
    body = urllib.parse.urlencode({"q": statement}).encode()
    request = urllib.request.Request(f"{influx.url}/query", data=body,
                                     headers={"Authorization": f"Token {influx.token.get_secret_value()}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    if "error" in json.dumps(answer):
        raise RuntimeError(f"InfluxDB {influx.url}: {statement}: {answer}")


def flux_counts(settings: Settings, flux: str) -> dict[str, int]:
    """Run a Flux query whose tables end in ``count()``, keyed by the ``station`` column."""
    from influxdb_client.client.influxdb_client import InfluxDBClient

    with InfluxDBClient(url=settings.influx.url, token=settings.influx.token.get_secret_value(),
                        org=settings.influx.org, timeout=30_000) as client:
        tables = client.query_api().query(flux)
    return {str(r.values["station"]): int(r.get_value()) for table in tables for r in table.records}


def reading_counts(settings: Settings, parameter: str, start: str, stop: str) -> dict[str, int]:
    """Points of ``parameter`` per station in the bucket (one per stored reading)."""
    return flux_counts(settings, f"""
from(bucket: "{settings.influx.bucket}")
  |> range(start: {start}, stop: {stop})
  |> filter(fn: (r) => r._measurement == "reading" and r.parameter == "{parameter}" and r._field == "value")
  |> group(columns: ["station"])
  |> count()
""")


# -- a private Mosquitto + Kafka + InfluxDB -----------------------------------------------------


@dataclass
class PrivateStack:
    """``deploy/stack.sh`` with its own ports and runtime dir; ``down`` stops only what it started."""

    run_dir: Path
    mqtt_port: int = 11883
    kafka_port: int = 19092
    influx_port: int = 18086
    owner: str = "faulttest"
    SERVICES: ClassVar[tuple[str, ...]] = ("mosquitto", "kafka", "influxdb")

    @property
    def ports(self) -> tuple[int, ...]:
        # MQTT's certificate listener is on port + 1, Kafka's controller and inter-broker listeners
        # on port + 1 and + 2, InfluxDB's RPC on port + 2 (stack.sh defaults)
        return (self.mqtt_port, self.mqtt_port + 1, self.kafka_port, self.kafka_port + 1, self.kafka_port + 2,
                self.influx_port, self.influx_port + 2)

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")}
        for shared in ("RIVERGUARD_CACHE", "RIVERGUARD_SECRETS_DIR"):  # the dev CA and passwords too
            if shared in os.environ:
                env[shared] = os.environ[shared]
        env.update({
            "RIVERGUARD_STACK_DIR": str(self.run_dir),
            "RIVERGUARD_STACK_OWNER": self.owner,
            "RIVERGUARD_MQTT__PORT": str(self.mqtt_port),
            "RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{self.kafka_port}",
            "RIVERGUARD_INFLUX__URL": self.influx_url,
            "RIVERGUARD_KAFKA_HEAP_OPTS": "-Xms128m -Xmx512m",
        })
        return env

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influx_port}"

    def settings(self, base: Settings) -> Settings:
        return base.model_copy(update={
            "mqtt": base.mqtt.model_copy(update={"host": "127.0.0.1", "port": self.mqtt_port}),
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{self.kafka_port}"}),
            "influx": base.influx.model_copy(update={"url": self.influx_url}),
        })

    def busy_ports(self) -> list[int]:
        return [p for p in self.ports if port_open("127.0.0.1", p)]

    def _script(self, *args: str, timeout_s: float = 300) -> None:
        result = subprocess.run([str(STACK_SCRIPT), *args], env=self.env, cwd=REPO, capture_output=True,
                                text=True, timeout=timeout_s, check=False)
        with (self.run_dir / "stack-script.log").open("a") as log:
            log.write(f"$ stack.sh {' '.join(args)} -> {result.returncode}\n{result.stderr}{result.stdout}\n")
        if result.returncode != 0:
            raise RuntimeError(f"deploy/stack.sh {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")

    def up(self) -> None:
        """Start what is not running (all of it the first time) and wait until healthy."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._script("up")

    def down(self, *services: str) -> None:
        self._script("down", "--owner", self.owner, *services)

    def pid(self, service: str) -> int:
        return int((self.run_dir / "run" / f"{service}.pid").read_text().strip())

    def restart(self, service: str) -> None:
        """Graceful stop (SIGTERM, as ``stack.sh down <service>`` does) and start again."""
        self.down(service)
        self.up()

    def crash(self, service: str) -> None:
        """SIGKILL the service (no shutdown at all) and start it again."""
        pid = self.pid(service)
        os.kill(pid, signal.SIGKILL)
        # A JVM takes a moment to tear down its threads after SIGKILL; until its port is closed
        # `up` would take it for an external service that is still running.
        port = {"mosquitto": self.mqtt_port, "kafka": self.kafka_port, "influxdb": self.influx_port}[service]
        while (Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)) or port_open("127.0.0.1", port):
            time.sleep(0.05)
        self.up()

    def pids(self) -> Mapping[str, int]:
        return {s: self.pid(s) for s in self.SERVICES if (self.run_dir / "run" / f"{s}.pid").exists()}

    def logs(self, lines: int = 40) -> str:
        logs = self.run_dir / "logs"
        out = []
        for path in sorted(p for p in logs.rglob("*") if p.is_file()) if logs.exists() else []:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {path} -----\n" + "\n".join(text))
        return "\n".join(out)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"
