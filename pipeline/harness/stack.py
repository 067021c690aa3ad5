"""A private Mosquitto + Kafka + InfluxDB through ``deploy/stack.sh`` on other ports and in another
runtime dir, so a test can restart them without touching the shared stack other people use."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from riverguard.settings import Settings

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "deploy" / "stack.sh"


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
    """``deploy/stack.sh`` with its own ports and runtime dir; ``down`` stops only what it started."""

    run_dir: Path
    mqtt_port: int = 11883
    kafka_port: int = 19092
    influx_port: int = 18086
    owner: str = "faulttest"
    SERVICES: ClassVar[tuple[str, ...]] = ("mosquitto", "kafka", "influxdb")

    @property
    def ports(self) -> tuple[int, ...]:
        # Kafka's controller listens on port + 1, InfluxDB's RPC on port + 2 (stack.sh defaults)
        return self.mqtt_port, self.kafka_port, self.kafka_port + 1, self.influx_port, self.influx_port + 2

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")}
        if "RIVERGUARD_CACHE" in os.environ:
            env["RIVERGUARD_CACHE"] = os.environ["RIVERGUARD_CACHE"]
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
