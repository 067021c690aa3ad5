"""The console against a real alert service built as ``riverguard run alert`` builds it (its book,
its API with the console mounted from the ``console`` settings), Apprise writing to local files, a
manual clock; and real headless Chromium browsers.

Browsers: Debian's ``chromium`` driven through Debian's ``chromium-driver`` by Selenium with the
driver path set explicitly (Selenium Manager never runs, nothing is downloaded). Every Selenium
call blocks, so the tests make them in a thread while the service keeps running on the loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from alerts.playbook_source import RiverPlaybooks
from alerts.service import AlertService
from console.users import Role, UserBook, save_users
from pipeline.stages import alert_stage
from playbooks import RiverNetwork, load_networks
from riverguard.bus.base import Bus
from riverguard.bus.memory import MemoryBus
from riverguard.models import Detection, DetectionKind, DetectionPhase, Finding, encode
from riverguard.settings import AlertSettings, ConsoleSettings, Settings, TopicSettings
from riverguard.stations import load_registry
from tests.support.clock import ManualClock

T0: Final = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
#: What a live page does under a test's feet: parts of it are replaced when the incident changes.
LIVE: Final = (NoSuchElementException, StaleElementReferenceException)
CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMEDRIVER: Final = Path("/usr/bin/chromedriver")
SCREENSHOTS: Final = Path(__file__).resolve().parents[2] / "out" / "console-screenshots"
USERS: Final = {"zhangsan": ("duty-password-1", Role.DUTY, "张三"), "lisi": ("viewer-password-1", Role.VIEWER, "李四"),
                "wangwu": ("duty-password-2", Role.DUTY, "王五")}
ROUTING: Final = """\
routes:
  - {name: duty, match: {route: pollution}, notify: [duty]}
  - {name: maintenance, match: {route: maintenance}, notify: [ops]}
escalation:
  min_level: yellow
  stages:
    - {after_min: 15, notify: [chief]}
  reminder_every_min: 10
  max_reminders: 3
rate_limits:
  default: {burst: 50, per_hour: 600}
silences:
  - {station: min-yuelai, until: "2030-01-01T00:00:00+08:00", reason: 断面迁移}
"""


@dataclass
class ConsoleStack:
    url: str  # the console's root, http://127.0.0.1:port/console
    service: AlertService
    bus: Bus
    settings: Settings
    clock: ManualClock
    outbox: Path  # where Apprise writes: one JSON line per message, a file per tag
    audit: Path

    def messages(self, tag: str) -> list[dict[str, Any]]:
        path = self.outbox / f"{tag}.jsonl"
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    async def publish(self, *detections: Detection) -> None:
        async with self.bus.producer() as producer:
            for d in detections:
                await producer.send_and_wait(self.settings.topics.detections, encode(d), key=d.station_id.encode())


def spill(n: int, *, station: str = "tuo-jiaoxiancun", event: str = "evt-nh3n", parameter: str = "NH3N",
          multiple: float = 2.0, river: str = "tuo", kind: DetectionKind = DetectionKind.LIMIT_EXCEEDANCE) -> Detection:
    finding = Finding(parameter=parameter, value=1.0 * (1 + multiple), limit=1.0, multiple=multiple, unit="mg/L")
    return Detection(detection_id=f"{event}-{n}", event_id=event, station_id=station, river=river,
                     time=T0 + timedelta(minutes=n), kind=kind, phase=DetectionPhase.ONSET,
                     findings=(finding,) if kind.is_pollution else (), detector="test")


async def eventually(condition: Callable[[], object], what: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.05)


def write_users(path: Path) -> None:
    book = UserBook()
    for name, (password, role, display) in USERS.items():
        book = book.with_user(name, password, role, display)
    save_users(book, path)


def console_settings(tmp_path: Path, settings: Settings, unique: str) -> Settings:
    """Settings of an alert service with the console: Apprise to files under ``tmp_path/sent``
    (a file per tag), the test routing, topics of its own, any free port, the test users."""
    outbox = tmp_path / "sent"
    outbox.mkdir(exist_ok=True)
    apprise = tmp_path / "apprise.yaml"
    apprise.write_text("version: 1\nurls:\n" + "".join(
        f"  - rgfile://{outbox / tag}.jsonl:\n      - tag: {tag}\n" for tag in ("duty", "chief", "ops")),
        encoding="utf-8")
    routing = tmp_path / "routing.yaml"
    routing.write_text(ROUTING, encoding="utf-8")
    users = tmp_path / "users.yaml"
    write_users(users)
    topics = TopicSettings(**{name: f"{value}-{unique}" for name, value in TopicSettings().model_dump().items()})
    alerts = AlertSettings(apprise_config=apprise, routing_file=routing, http_port=0, api_token="console-test-token")
    console = ConsoleSettings(users_file=users, audit_file=tmp_path / "audit.jsonl", login_failures=3)
    return settings.model_copy(update={"topics": topics, "alerts": alerts, "console": console})


@functools.cache
def shipped_networks() -> dict[str, RiverNetwork]:
    """Read once per test run: parsing the network files is most of an alert stage's start."""
    return load_networks()


@asynccontextmanager
async def running(cfg: Settings, bus: Bus, clock: ManualClock, group_id: str) -> AsyncIterator[AlertService]:
    """The alert stage as ``riverguard run alert`` builds it (API and console served), until the block ends."""
    runtime, service = alert_stage(cfg, load_registry(cfg.stations_file), bus, group_id=group_id, clock=clock,
                                   tick_s=0.05, playbooks=RiverPlaybooks(shipped_networks()))
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await eventually(lambda: service.ready.is_set() or task.done(), "the alert service did not start")
        if task.done():
            task.result()
        yield service
    finally:
        stop.set()
        await task


@pytest.fixture
async def stack(tmp_path: Path, settings: Settings, unique: str) -> AsyncIterator[ConsoleStack]:
    cfg = console_settings(tmp_path, settings, unique)
    bus = MemoryBus(default_partitions=2)
    clock = ManualClock(T0)
    try:
        async with running(cfg, bus, clock, f"console-{unique}") as service:
            assert service.api is not None
            assert cfg.console.users_file is not None
            yield ConsoleStack(f"http://127.0.0.1:{service.api.port}/console", service, bus, cfg, clock,
                               tmp_path / "sent", cfg.console.audit_file)
    finally:
        await bus.close()


# -- browsers -------------------------------------------------------------------------------


@dataclass
class Browser:
    """One signed-in person: a headless Chromium, driven from a thread."""

    driver: WebDriver
    base: str
    name: str
    timings: dict[str, float] = field(default_factory=dict)

    async def run(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(call, *args)

    async def open(self, path: str) -> None:
        await self.run(self.driver.get, self.base + path)

    async def sign_in(self, user: str, password: str | None = None) -> None:
        await self.open("/login")
        await self.type("#user", user)
        await self.type("#password", password or USERS[user][0])
        await self.click("#sign-in")
        await self.wait_for("#who", f"({user})")  # signed in: the next page is not the sign-in form again

    async def type(self, css: str, text: str) -> None:
        element = await self.run(self.driver.find_element, By.CSS_SELECTOR, css)
        await self.run(element.clear)
        await self.run(element.send_keys, text)

    async def click(self, css: str) -> None:
        """Click the element, finding it again if a live update replaced it in between."""
        def clicked(driver: WebDriver) -> bool:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return True

        await self.run(WebDriverWait(self.driver, 10, poll_frequency=0.1, ignored_exceptions=LIVE).until, clicked)

    async def present(self, css: str) -> bool:
        return bool(await self.run(self.driver.find_elements, By.CSS_SELECTOR, css))

    async def text(self, css: str) -> str:
        return await self.wait_for(css)

    async def wait_for(self, css: str, contains: str = "", timeout_s: float = 15.0) -> str:
        """The element's text once it exists (and holds ``contains``); fails naming what never came."""
        def found(driver: WebDriver) -> str | bool:
            elements = driver.find_elements(By.CSS_SELECTOR, css)
            return elements[0].text if elements and contains in elements[0].text else False

        wait = WebDriverWait(self.driver, timeout_s, poll_frequency=0.1, ignored_exceptions=LIVE)
        try:
            return str(await self.run(wait.until, found))
        except TimeoutException as exc:
            raise AssertionError(f"{self.name}: {css!r} with {contains!r} did not appear in {timeout_s} s "
                                 f"on {self.driver.current_url}") from exc

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.run(self.driver.save_screenshot, str(SCREENSHOTS / f"{name}.png"))

    async def navigation_ms(self) -> dict[str, float]:
        """The current page's Navigation Timing: ``load`` (start → load event end, images included),
        ``html`` (start → response end) and the slowest resource (``slowest`` and its name)."""
        script = ("const n = performance.getEntriesByType('navigation')[0];"
                  "const r = performance.getEntriesByType('resource').sort((a, b) => b.duration - a.duration)[0];"
                  "return [n.loadEventEnd - n.startTime, n.responseEnd - n.startTime, r ? r.duration : 0,"
                  " r ? r.name : ''];")
        load, html, slowest, name = await self.run(self.driver.execute_script, script)
        print(f"\n{self.name}: {self.driver.current_url}: load {load:.0f} ms, html {html:.0f} ms, "
              f"slowest resource {slowest:.0f} ms {name}")
        return {"load": float(load), "html": float(html), "slowest": float(slowest)}


def chromium(profile: Path) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1000", "--lang=zh-CN"):
        options.add_argument(flag)
    # the driver's path is given, so Selenium Manager (which would download a driver) never runs
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.fixture
async def browsers(stack: ConsoleStack) -> AsyncIterator[Callable[[str], Any]]:
    """``await browsers(name)``: a new browser on the console; all of them quit after the test."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are not installed: run deploy/system-deps.sh (make test does)",
                    pytrace=False)
    opened: list[tuple[Browser, str]] = []

    async def open_browser(name: str) -> Browser:
        profile = tempfile.mkdtemp(prefix="riverguard-chromium-")
        driver = await asyncio.to_thread(chromium, Path(profile))
        browser = Browser(driver, stack.url, name)
        opened.append((browser, profile))
        return browser

    yield open_browser
    for browser, profile in opened:
        await asyncio.to_thread(browser.driver.quit)
        shutil.rmtree(profile, ignore_errors=True)
