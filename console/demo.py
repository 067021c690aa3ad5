"""``riverguard demo --serve``: the duty-officer console on the demo's result, until Ctrl-C.

After its report the demo keeps its alert stage running on the in-memory bus (its clock going on
from the simulated end at the wall clock's pace, so countdowns run and reminders fall due); this
serves that stage's incident API with the console on it. A duty officer ``demo`` is made for the
run with a random password that is printed once and kept nowhere but as an argon2 hash in the
users file in the demo's output folder (with the audit log). The station board shows the readings
of the demo's bus, as there is no InfluxDB.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from alerts.api import CONSOLE_PREFIX, IncidentApi
from alerts.playbook_source import RiverPlaybooks
from alerts.service import AlertService
from console.app import Console
from console.stationboard import StationBoard
from console.users import Role, UserBook, save_users
from riverguard.bus.base import Bus
from riverguard.models import Reading, decode
from riverguard.stations import StationRegistry

USER: Final = "demo"
DISPLAY: Final = "演示值班员"


@dataclass(frozen=True, slots=True)
class ServedConsole:
    url: str
    user: str
    password: str


async def serve_console(
    alerts: AlertService,
    bus: Bus,
    registry: StationRegistry,
    out: Path,
    *,
    port: int,
    announce: Callable[[ServedConsole], None],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the console on ``alerts`` until ``stop`` is set (None: until SIGINT or SIGTERM)."""
    password = secrets.token_urlsafe(12)
    users = out / "console-users.yaml"
    save_users(UserBook().with_user(USER, password, Role.DUTY, DISPLAY), users)
    settings = alerts.settings
    console_settings = settings.console.model_copy(
        update={"users_file": users, "audit_file": out / "console-audit.jsonl"})
    board = StationBoard(registry, None, silent_after=timedelta(minutes=console_settings.silent_station_min),
                         recorded=await _readings(bus, settings.topics.readings))
    networks = alerts.playbooks.networks if isinstance(alerts.playbooks, RiverPlaybooks) else {}
    console = Console(alerts, console_settings, networks=networks, board=board)
    api = IncidentApi(alerts, settings.alerts.model_copy(update={"http_port": port}),
                      console=console.application())
    waiting = stop or _on_signals()
    await api.start()
    try:
        announce(ServedConsole(f"http://{settings.alerts.http_host}:{api.port}{CONSOLE_PREFIX}/", USER, password))
        await waiting.wait()
    finally:
        await api.stop()
        if stop is None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().remove_signal_handler(sig)


def _on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    return stop


async def _readings(bus: Bus, topic: str) -> list[Reading]:
    return [decode(record.value, Reading).payload
            for records in (await bus.read_topics([topic])).values() for record in records if record.value is not None]
