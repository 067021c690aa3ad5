"""``riverguard demo``: the whole pipeline in one process, in simulated time, with no services.

What runs is what production runs, minus the brokers: the station simulator's readings are
encoded as their stations send them and routed by the ingest router (:mod:`pipeline.feed`) onto
a :class:`~riverguard.bus.MemoryBus`; the detect stage and the alert stage consume and produce
on that bus as their own consumer groups; the alert stage builds playbooks from the shipped river
networks and delivers through the real Apprise library to local files (``rgfile://``).

Time: the simulator runs in simulated time (fast-forwarded) and the alert stage's clock is the
simulated clock. The feed advances one simulated step only after the detect and alert stages
committed everything before it, so the alert stage sees the time each reading was taken —
incident times, escalation and auto-resolution are as they would be live, however fast the run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from alerts import AlertService, RiverPlaybooks
from ingest import Router, Simulator, Spill
from pipeline.errors import PipelineError, StageError
from pipeline.feed import StationFeed
from pipeline.report import (
    DemoReport,
    background_counts,
    detection_lines,
    notification_lines,
    spill_arrivals,
    split_incidents,
)
from pipeline.stages import alert_stage, detect_stage
from pipeline.watermark import Watermark
from playbooks import FORMATS, RiverNetwork, load_networks, write_playbook
from riverguard.bus import MemoryBus, Record, topic_specs
from riverguard.incidents import Incident, NotificationRecord
from riverguard.models import Detection, decode
from riverguard.settings import Settings
from riverguard.stage import produce_all
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)

DEFAULT_START: Final = datetime(2024, 7, 1, 0, 0, tzinfo=UTC)  # 08:00 Beijing time
ALERT_GROUP: Final = "riverguard-demo-alerts"
DETECT_GROUP: Final = "riverguard-demo-detect"
OBSERVER_GROUP: Final = "riverguard-demo-observer"
#: Files the demo writes into --out (and deletes from it before a run, so a run shows only itself).
NOTIFICATION_FILES: Final = {"duty-sms": "notifications-sms.jsonl", "duty-im": "notifications-im.jsonl",
                             "ops": "notifications-ops.jsonl"}
#: ``--single-target``: a small bureau where one duty phone gets every route (issue 16's storm)
SINGLE_TARGET_FILE: Final = "notifications-desk.jsonl"
#: Rate limits act on the simulated clock, where a day's faults spread over hours; the one duty
#: phone gets a budget it can bear (2 at once, 2 an hour) so the storm's hold-backs and summaries show.
SINGLE_TARGET_LIMITS: Final = {"default": {"burst": 2, "per_hour": 2}}
_SETTLE_TIMEOUT_S: Final = 60.0
_DELIVERY_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What to simulate. ``station`` None: the river's first station that measures ``pollutant``;
    ``after`` None: until the plume has passed the next station downstream (plus an hour)."""

    out: Path = Path("out/demo")
    river: str = "tuo"
    station: str | None = None
    pollutant: str = "NH3N"
    peak_multiple: float = 10.0
    spill_duration: timedelta = timedelta(hours=2)
    start: datetime = DEFAULT_START
    warmup: timedelta = timedelta(days=2)
    after: timedelta | None = None
    step: timedelta = timedelta(minutes=5)
    seed: int = 7
    faults: bool = False
    language: Literal["zh", "en"] = "zh"
    single_target: bool = False  # every route to one target (its file: SINGLE_TARGET_FILE)


@dataclass(frozen=True, slots=True)
class DemoProgress:
    simulated: datetime
    step: int
    steps: int
    readings: int
    detections: int
    incidents: int
    notifications: int


ProgressCallback = Callable[[DemoProgress], None]


class SimulatedClock:
    """The alert stage's clock: the simulated time of the step being processed; after
    :meth:`run_on`, that time going on at the wall clock's pace (``--serve``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._running_since: float | None = None

    def __call__(self) -> datetime:
        if self._running_since is None:
            return self.now
        return self.now + timedelta(seconds=time.monotonic() - self._running_since)

    def run_on(self) -> None:
        self._running_since = time.monotonic()


#: ``--serve``: what runs after the report while the alert stage keeps going on the demo's bus.
Hold = Callable[[DemoReport, AlertService, MemoryBus], Coroutine[Any, Any, None]]


@dataclass
class _Observed:
    """What came out of the stages, read from their topics like any other consumer would."""

    detections: list[Detection] = field(default_factory=list)
    incidents: dict[str, Incident] = field(default_factory=dict)
    notifications: dict[str, NotificationRecord] = field(default_factory=dict)

    def add(self, record: Record, settings: Settings) -> None:
        if record.value is None:
            return
        topics = settings.topics
        if record.topic == topics.detections:
            self.detections.append(decode(record.value, Detection).payload)
        elif record.topic == topics.incidents:
            incident = decode(record.value, Incident).payload
            self.incidents[incident.incident_id] = incident
        elif record.topic == topics.notifications:
            notification = decode(record.value, NotificationRecord).payload
            self.notifications[notification.record_id] = notification

    @property
    def sent(self) -> int:
        return sum(1 for n in self.notifications.values() if n.outcome.value == "sent")


@dataclass
class _Stages:
    alerts: AlertService
    tasks: dict[str, asyncio.Task[None]]
    detected: Watermark = field(default_factory=Watermark)  # readings the detect stage handled
    alerted: Watermark = field(default_factory=Watermark)  # detections the alert stage handled

    def raise_failed(self) -> None:
        for name, task in self.tasks.items():
            if task.done():
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    raise StageError(name, error) from error
                raise PipelineError(f"stage {name} stopped before the demo finished")

    async def race(self, awaitable: Coroutine[Any, Any, Any]) -> None:
        """Await ``awaitable`` unless a stage stops first (then raise why)."""
        waiter = asyncio.ensure_future(awaitable)
        await asyncio.wait([waiter, *self.tasks.values()], return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            waiter.cancel()
            self.raise_failed()


def resolve_spill(options: DemoOptions, registry: StationRegistry) -> Spill:
    """The spill the options describe; ValueError naming the flag when they do not fit."""
    on_river = registry.on_river(options.river)
    if not on_river:
        rivers = sorted({s.river for s in registry.stations})
        raise ValueError(f"--river {options.river!r}: no stations on it (rivers: {', '.join(rivers)})")
    measuring = [s for s in on_river if options.pollutant in s.parameters]
    if not measuring:
        raise ValueError(f"--pollutant {options.pollutant!r}: no station on the {options.river} measures it")
    if options.station is None:
        station = measuring[0].station_id
    elif options.station not in {s.station_id for s in on_river}:
        ids = ", ".join(s.station_id for s in on_river)
        raise ValueError(f"--station {options.station!r} is not on the {options.river} (stations: {ids})")
    elif options.station not in {s.station_id for s in measuring}:
        raise ValueError(f"--station {options.station!r} does not measure {options.pollutant}")
    else:
        station = options.station
    if options.peak_multiple <= 1:
        raise ValueError(f"--peak must be above 1 (a multiple of the typical value), got {options.peak_multiple}")
    return Spill(river=options.river, station_id=station, pollutant=options.pollutant,
                 start=options.start + options.warmup, duration=options.spill_duration,
                 peak_multiple=options.peak_multiple)


def simulated_end(options: DemoOptions, spill: Spill, arrivals: Sequence[Any]) -> datetime:
    """Until the plume has passed the next station downstream (plus an hour), unless ``after`` says."""
    if options.after is not None:
        return spill.start + options.after
    downstream = [e for e in arrivals if e.station_id != spill.station_id]
    passed = downstream[0].end if downstream else spill.start + spill.duration
    return passed + timedelta(hours=1)


class Demo:
    def __init__(
        self,
        options: DemoOptions,
        settings: Settings,
        registry: StationRegistry,
        networks: dict[str, RiverNetwork] | None = None,
    ) -> None:
        self.options = options
        self.registry = registry
        self.networks = networks if networks is not None else load_networks(
            sorted(settings.network_dir.glob("*.yaml")) if settings.network_dir else []
        )
        self.out = options.out.resolve()
        self.settings = settings.model_copy(
            update={
                "alerts": settings.alerts.model_copy(
                    update={"apprise_config": self.out / "apprise.yaml",
                            "routing_file": self.out / "routing.yaml" if options.single_target else _routing_file(),
                            "language": options.language}
                ),
                "observability": settings.observability.model_copy(update={"metrics_port": None}),
            }
        )
        self.spill = resolve_spill(options, registry)
        self.simulator = Simulator(registry, seed=options.seed, start=options.start, step=options.step,
                                   spills=[self.spill], faults=options.faults)
        self.arrivals = spill_arrivals(self.simulator.events, self.spill)
        self.end = simulated_end(options, self.spill, self.arrivals)
        self.clock = SimulatedClock(options.start)
        self.bus = MemoryBus(default_partitions=settings.kafka.partitions)
        self.observed = _Observed()

    @property
    def steps(self) -> int:
        return max(1, -(-(self.end - self.options.start) // self.options.step))

    async def run(self, progress: ProgressCallback | None = None, hold: Hold | None = None) -> DemoReport:
        """Run the simulated span and report; with ``hold``, then keep the alert stage running on
        the result, its clock going on from the simulated end, until ``hold`` returns."""
        started = time.perf_counter()
        self._prepare_out()
        settings = self.settings
        await self.bus.create_topics(topic_specs(settings))
        router = Router[int](self.registry, readings_topic=settings.topics.readings, dlq_topic=settings.topics.dlq,
                             topic_pattern=settings.mqtt.topic_pattern)
        feed = StationFeed(self.registry, router, settings.mqtt.topic_pattern)
        detected, alerted = Watermark(), Watermark()
        alert_runtime, alerts = alert_stage(
            settings, self.registry, self.bus, group_id=ALERT_GROUP, playbooks=RiverPlaybooks(self.networks),
            clock=self.clock, tick_s=0.05, serve_api=False, observers=[alerted],
        )
        detect = detect_stage(settings, self.registry, self.bus, group_id=DETECT_GROUP, observers=[detected])
        stop = asyncio.Event()
        stages = _Stages(alerts, {"detect": asyncio.create_task(detect.run(stop)),
                                  "alerts": asyncio.create_task(alert_runtime.run(stop))}, detected, alerted)
        try:
            await self._until(stages.race(alerts.ready.wait()), "the alert stage to start")
            await self._feed(feed, stages, progress)
            report = self._report(feed, alerts)
            report.wall_seconds = time.perf_counter() - started
            if hold is not None:
                self.clock.run_on()
                await stages.race(hold(report, alerts, self.bus))
        finally:
            stop.set()
            results = await asyncio.gather(*stages.tasks.values(), return_exceptions=True)
        for name, result in zip(stages.tasks, results, strict=True):
            if isinstance(result, BaseException):
                raise StageError(name, result) from result
        return report

    # -- running ---------------------------------------------------------------------------

    async def _feed(self, feed: StationFeed, stages: _Stages, progress: ProgressCallback | None) -> None:
        settings = self.settings
        readings = self.simulator.readings(until=self.end)
        per_step = len(self.registry.stations)  # the simulator yields every station per step
        async with (
            self.bus.producer(client_id="riverguard-demo-feed") as producer,
            self.bus.consumer(
                [settings.topics.detections, settings.topics.incidents, settings.topics.notifications],
                group_id=OBSERVER_GROUP,
            ) as observer,
        ):
            for step in range(self.steps):
                batch = list(itertools.islice(readings, per_step))
                if not batch:
                    break
                self.clock.now = batch[0].time
                await produce_all(producer, feed.route(batch))
                await self._settled(stages)
                for record in await observer.getmany(timeout_ms=0, max_records=100_000):
                    self.observed.add(record, settings)
                if progress is not None:
                    progress(self._progress(step + 1, feed))
            self.clock.now = self.end
            await self._deliveries(stages)
            for record in await observer.getmany(timeout_ms=0, max_records=100_000):
                self.observed.add(record, settings)
            if progress is not None:
                progress(self._progress(self.steps, feed))

    async def _settled(self, stages: _Stages) -> None:
        """Wait until the detect stage handled every reading and the alert stage every detection."""
        topics = self.settings.topics
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while not (
            await stages.detected.covers(self.bus, topics.readings)
            and await stages.alerted.covers(self.bus, topics.detections)
        ):
            stages.raise_failed()
            if time.monotonic() > deadline:
                raise PipelineError(f"the stages did not catch up within {_SETTLE_TIMEOUT_S:g} s")
            await asyncio.sleep(0.001)

    async def _deliveries(self, stages: _Stages) -> None:
        """Wait until the alert stage has sent everything due by now (sends run concurrently)."""
        deadline = time.monotonic() + _DELIVERY_TIMEOUT_S
        while stages.alerts.owes(self.clock()):
            stages.raise_failed()
            if time.monotonic() > deadline:
                log.warning("notifications still pending after %g s; summarising without them", _DELIVERY_TIMEOUT_S)
                return
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the records of the last sends are produced right after the book changed

    @staticmethod
    async def _until(awaitable: Coroutine[Any, Any, None], what: str, timeout_s: float = 60.0) -> None:
        try:
            await asyncio.wait_for(awaitable, timeout_s)
        except TimeoutError as exc:
            raise PipelineError(f"gave up waiting for {what} after {timeout_s:g} s") from exc

    def _progress(self, step: int, feed: StationFeed) -> DemoProgress:
        return DemoProgress(self.clock.now, step, self.steps, feed.messages, len(self.observed.detections),
                            len(self.observed.incidents), self.observed.sent)

    # -- files -----------------------------------------------------------------------------

    def _prepare_out(self) -> None:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
            for name in (*NOTIFICATION_FILES.values(), SINGLE_TARGET_FILE):
                (self.out / name).unlink(missing_ok=True)
            for old in self.out.glob("playbook-*"):
                old.unlink()
            if self.options.single_target:
                urls = [{f"rgfile://{self.out / SINGLE_TARGET_FILE}": [{"tag": ", ".join(NOTIFICATION_FILES)}]}]
                routing = yaml.safe_load(_routing_file().read_text(encoding="utf-8"))
                text = ("# Written by `riverguard demo --single-target`: the demo's routing with one duty phone's "
                        "rate limits.\n" + yaml.safe_dump({**routing, "rate_limits": SINGLE_TARGET_LIMITS},
                                                          allow_unicode=True))
                (self.out / "routing.yaml").write_text(text, encoding="utf-8")
            else:
                urls = [{f"rgfile://{self.out / name}": [{"tag": tag}]} for tag, name in NOTIFICATION_FILES.items()]
            text = ("# Written by `riverguard demo`: every target is a local file (rgfile://), nothing leaves "
                    "the machine.\n" + yaml.safe_dump({"version": 1, "urls": urls}, allow_unicode=True))
            (self.out / "apprise.yaml").write_text(text, encoding="utf-8")
        except OSError as exc:
            raise PipelineError(f"cannot prepare the output folder {self.out}: {exc}") from exc

    def _target_files(self, alerts: AlertService) -> dict[str, Path]:
        """Target id → the file it writes to."""
        if self.options.single_target:
            return {target.target_id: self.out / SINGLE_TARGET_FILE for target in alerts.directory.targets}
        return {
            target.target_id: self.out / name
            for target in alerts.directory.targets
            for tag, name in NOTIFICATION_FILES.items()
            if tag in target.tags
        }

    @staticmethod
    def _received(paths: dict[str, Path]) -> dict[str, list[tuple[str, str]]]:
        """Per target id, the (title, body) of each message its file received."""
        received: dict[str, list[tuple[str, str]]] = {}
        for target_id, path in paths.items():
            lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
            messages = [json.loads(line) for line in lines if line.strip()]
            received[target_id] = [(m.get("title", ""), m.get("body", "")) for m in messages]
        return received

    def _playbooks(self, incidents: Sequence[Incident], source: RiverPlaybooks) -> list[Path]:
        """The spill incident's playbook as the first station raised it and as the plume is now."""
        written: list[Path] = []
        by_id = {d.detection_id: d for d in self.observed.detections}
        for incident in incidents:
            network = self.networks.get(incident.river)
            if network is None:
                continue
            first = next(
                (d for d in self.observed.detections
                 if d.station_id == incident.first_station and d.kind.is_pollution
                 and any(f.parameter == incident.pollutant for f in d.findings)),
                None,
            )
            latest = incident.latest_detection
            wanted = [first, by_id.get(latest.detection_id, latest) if latest else None]
            unique = {d.detection_id: d for d in wanted if d is not None}
            for detection in unique.values():
                playbook = source.for_detection(detection)
                if playbook is not None:
                    written += write_playbook(playbook, network, self.out, FORMATS, self.options.language)
        return written

    def _report(self, feed: StationFeed, alerts: AlertService) -> DemoReport:
        sections = {s.station_id: s.section or s.station_id for s in self.registry.stations}
        lines = detection_lines(self.observed.detections, self.arrivals, sections)
        stations = list(dict.fromkeys(d.station_id for d in lines if d.spill_arrival is not None))
        mine, others = split_incidents(list(self.observed.incidents.values()), self.spill, stations)
        playbook_files = self._playbooks(mine, RiverPlaybooks(self.networks))
        files = self._target_files(alerts)
        return DemoReport(
            spill=self.spill,
            arrivals=self.arrivals,
            detections=lines,
            spill_incidents=mine,
            other_incidents=others,
            notifications=notification_lines(
                list(self.observed.notifications.values()), self._received(files), {t: p.name for t, p in files.items()}
            ),
            playbook_files=playbook_files,
            readings=feed.messages,
            dead_letters=feed.dead_letters,
            simulated_from=self.options.start,
            simulated_to=self.end,
            background=background_counts(self.observed.detections, lines),
        )


def _routing_file() -> Path:
    return Path(str(files("pipeline").joinpath("demo_routing.yaml")))


async def run_demo(
    options: DemoOptions,
    settings: Settings,
    registry: StationRegistry,
    progress: ProgressCallback | None = None,
    hold: Hold | None = None,
) -> DemoReport:
    """Run the demo; the report says what was detected and whether the demo showed what it should.
    ``hold``: see :meth:`Demo.run`."""
    return await Demo(options, settings, registry).run(progress, hold)
