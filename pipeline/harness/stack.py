"""A private Mosquitto + Kafka + InfluxDB through ``deploy/stack.sh`` on other ports and in another
runtime dir, so a test can restart them without touching the shared stack other people use."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from riverguard.settings import Settings

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "deploy" / "stack.sh"


#: Port sets (MQTT, Kafka, InfluxDB) private stacks take in turn. From each base port a stack also
#: uses the next ones up (MQTT's certificate listener, Kafka's controller and inter-broker
#: listeners, InfluxDB's RPC; a Kafka cluster's nodes 3 ports apart), all below the next set's.
PRIVATE_PORTS = ((11883, 19092, 18086), (21883, 29092, 28086), (31883, 39092, 38086), (41883, 49092, 48086),
                 (51883, 59092, 58086))


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


@dataclass
class PrivateStack:
    """``deploy/stack.sh`` with its own ports and runtime dir; ``down`` stops only what it started.

    It uses the same dev CA and passwords as every stack of this user (``RIVERGUARD_SECRETS_DIR``),
    so the TLS and login settings of the stack the tests run against work for it too. With
    ``kafka_nodes=3`` Kafka is a cluster (``stack.sh up --cluster``): node i listens on the Kafka
    ports + 3*(i-1), topics get 3 replicas and acks=all needs 2 of them.
    """

    run_dir: Path
    mqtt_port: int = 11883
    kafka_port: int = 19092
    influx_port: int = 18086
    owner: str = "faulttest"
    kafka_nodes: int = 1

    @property
    def kafka_services(self) -> tuple[str, ...]:
        if self.kafka_nodes == 1:
            return ("kafka",)
        return tuple(f"kafka-{node}" for node in range(1, self.kafka_nodes + 1))

    @property
    def services(self) -> tuple[str, ...]:
        return ("mosquitto", *self.kafka_services, "influxdb")

    def kafka_client_port(self, service: str) -> int:
        return self.kafka_port + 3 * self.kafka_services.index(service)

    @property
    def ports(self) -> tuple[int, ...]:
        # MQTT's certificate listener is on port + 1; each Kafka node's controller and inter-broker
        # listeners on its port + 1 and + 2; InfluxDB's RPC on port + 2 (stack.sh defaults)
        kafka = [self.kafka_client_port(s) + k for s in self.kafka_services for k in range(3)]
        return (self.mqtt_port, self.mqtt_port + 1, *kafka, self.influx_port, self.influx_port + 2)

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
            "RIVERGUARD_KAFKA_NODES": str(self.kafka_nodes),
            "RIVERGUARD_INFLUX__URL": self.influx_url,
            # the brokers of a cluster share the machine with everything else: a smaller heap each
            "RIVERGUARD_KAFKA_HEAP_OPTS": "-Xms128m -Xmx512m" if self.kafka_nodes == 1 else "-Xms128m -Xmx384m",
        })
        return env

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influx_port}"

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{self.kafka_client_port(s)}" for s in self.kafka_services)

    def settings(self, base: Settings) -> Settings:
        return base.model_copy(update={
            "mqtt": base.mqtt.model_copy(update={"host": "127.0.0.1", "port": self.mqtt_port}),
            "kafka": base.kafka.model_copy(update={"bootstrap_servers": self.bootstrap_servers,
                                                   "replication_factor": min(3, self.kafka_nodes)}),
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
        self.kill(service)
        self.up()

    def kill(self, service: str) -> None:
        """SIGKILL the service and wait until it is gone (``up`` starts it again)."""
        pid = self.pid(service)
        os.kill(pid, signal.SIGKILL)
        # A JVM takes a moment to tear down its threads after SIGKILL; until its port is closed
        # `up` would take it for an external service that is still running.
        ports = {"mosquitto": self.mqtt_port, "influxdb": self.influx_port}
        port = ports[service] if service in ports else self.kafka_client_port(service)
        while (Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)) or port_open("127.0.0.1", port):
            time.sleep(0.05)

    def pids(self) -> Mapping[str, int]:
        return {s: self.pid(s) for s in self.services if (self.run_dir / "run" / f"{s}.pid").exists()}

    def logs(self, lines: int = 40) -> str:
        logs = self.run_dir / "logs"
        out = []
        for path in sorted(p for p in logs.rglob("*") if p.is_file()) if logs.exists() else []:
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"----- {path} -----\n" + "\n".join(text))
        return "\n".join(out)


@contextlib.contextmanager
def private_stack(run_dir: Path, *, owner: str = "faulttest", kafka_nodes: int = 1,
                  port_sets: tuple[tuple[int, int, int], ...] = PRIVATE_PORTS) -> Iterator[PrivateStack]:
    """A :class:`PrivateStack` up on the first port set that no other run holds and whose ports
    are free, brought down at the end. One lock file per set, held while the stack runs: test runs
    of several checkouts on one machine never pick the same set at the same time."""
    with contextlib.ExitStack() as held:
        for mqtt, kafka, influx in port_sets:
            lock = held.enter_context((Path(tempfile.gettempdir()) / f"riverguard-private-{mqtt}.lock").open("w"))
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            stack = PrivateStack(run_dir, mqtt_port=mqtt, kafka_port=kafka, influx_port=influx, owner=owner,
                                 kafka_nodes=kafka_nodes)
            if not stack.busy_ports():
                break
            fcntl.flock(lock, fcntl.LOCK_UN)
        else:
            raise RuntimeError(f"no free port set for a private stack among {port_sets}")
        try:
            stack.up()
            yield stack
        finally:
            stack.down()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"
