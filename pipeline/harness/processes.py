"""The four services (``riverguard run ingest|detect|alert|sink``) as subprocesses with their own
topics, consumer groups, MQTT session and InfluxDB database, their output in one log file each;
optionally supervised (restarted when one exits by itself, the way systemd or Kubernetes would)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, SecretStr

from pipeline.harness.mqtt import dev_password, open_bridge_session
from pipeline.harness.receiver import Receiver
from riverguard.bus.kafka import KafkaBus
from riverguard.bus.topics import topic_specs
from riverguard.settings import AlertSettings, Settings, TopicSettings

REPO = Path(__file__).resolve().parents[2]
RIVERGUARD = Path(sys.executable).parent / "riverguard"
SERVICES = ("ingest", "detect", "alert", "sink")


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


@dataclass
class ServiceProcess:
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
            "ingest": ServiceProcess("ingest", [*run, "ingest"], env, log_dir / "ingest.log"),
            # checkpoints (and offset commits) every 2 s rather than 30: a test waits for commits
            "detect": ServiceProcess(
                "detect", [*run, "detect", "--group", self.groups["detect"], "--checkpoint-seconds", "2"],
                env, log_dir / "detect.log"),
            "alert": ServiceProcess("alert", [*run, "alert", "--group", self.groups["alert"]], env,
                                    log_dir / "alert.log"),
            "sink": ServiceProcess("sink", [*run, "sink", "--group", self.groups["sink"]], env, log_dir / "sink.log"),
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
