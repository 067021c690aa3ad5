"""``riverguard demo --serve``: after its report the demo's alert stage keeps running on the
in-memory bus with the console on it, signed into with the user made for the run.

Cost: one short demo (3 h of warm-up, 1.5 h after the spill), about 10 s on the 2-core box.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from alerts.service import AlertService
from console.demo import ServedConsole, serve_console
from pipeline.demo import DemoOptions, run_demo
from pipeline.report import DemoReport
from riverguard.bus.memory import MemoryBus
from riverguard.settings import Settings
from riverguard.stations import load_registry
from tests.console.conftest import eventually

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


async def test_the_demo_leaves_its_alert_stage_and_the_console_running_on_its_result(tmp_path: Path) -> None:
    registry = load_registry()
    seen: dict[str, str] = {}

    async def hold(report: DemoReport, alerts: AlertService, bus: MemoryBus) -> None:
        served: list[ServedConsole] = []
        stop = asyncio.Event()
        task = asyncio.create_task(serve_console(alerts, bus, registry, tmp_path, port=0, announce=served.append,
                                                 stop=stop))
        await eventually(lambda: served or task.done(), "the console did not start")
        (console,) = served
        (incident,) = report.spill_incidents
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(f"{console.url}login") as page:
                csrf = re.findall(r'name="csrf" value="([^"]+)"', await page.text())[0]
            async with http.post(f"{console.url}login", data={"user": console.user, "password": console.password,
                                                              "csrf": csrf}) as signed:
                seen["list"] = await signed.text()
            async with http.get(f"{console.url}incidents/{incident.incident_id}") as page:
                seen["incident"] = await page.text()
            async with http.get(f"{console.url}stations") as page:
                seen["stations"] = await page.text()
        await asyncio.sleep(0.2)
        seen["clock"] = "runs on" if alerts.clock() > report.simulated_to else "stopped"
        seen["password"] = console.password
        stop.set()
        await task

    report = await run_demo(DemoOptions(out=tmp_path, warmup=timedelta(hours=3), after=timedelta(hours=1.5)),
                            Settings(), registry, None, hold)
    assert report.ok, report.problems
    (incident,) = report.spill_incidents
    assert "演示值班员 (demo)" in seen["list"]
    assert f'id="row-{incident.incident_id}"' in seen["list"]
    assert 'id="receptors"' in seen["incident"]  # with its playbook
    assert 'id="resolve-form"' in seen["incident"]  # the demo user is a duty officer
    station = seen["stations"].split(f'id="station-{report.spill.station_id}"', 1)[1].split("</tr>", 1)[0]
    assert "<polyline" in station  # sparklines from the demo's own readings, no InfluxDB
    assert 'class="silent"' not in seen["stations"]
    assert seen["clock"] == "runs on"
    users = (tmp_path / "console-users.yaml")
    assert users.stat().st_mode & 0o077 == 0
    assert seen["password"] not in users.read_text(encoding="utf-8")
