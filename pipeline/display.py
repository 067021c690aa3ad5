"""The demo on a terminal: a live progress line while it runs, a summary when it is done.

Times are shown in Beijing time, as the duty officers read them.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.demo import DemoProgress
from pipeline.report import DemoReport
from riverguard.parameters import PARAMETERS

CHINA: Final = ZoneInfo("Asia/Shanghai")


def beijing(at: datetime) -> str:
    """``2024-07-03 08:25`` in Beijing time.

    >>> from datetime import UTC
    >>> beijing(datetime(2024, 7, 3, 0, 25, tzinfo=UTC))
    '2024-07-03 08:25'
    """
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def short(at: datetime) -> str:
    """``07-03 08:25`` in Beijing time (tables; the year is in the headings)."""
    return at.astimezone(CHINA).strftime("%m-%d %H:%M")


def span(delta: timedelta) -> str:
    """``1 h 05 min``, ``25 min``, ``-5 min``.

    >>> span(timedelta(minutes=65)), span(timedelta(minutes=25))
    ('1 h 05 min', '25 min')
    """
    minutes = round(delta.total_seconds() / 60)
    sign, minutes = ("-", -minutes) if minutes < 0 else ("", minutes)
    hours, rest = divmod(minutes, 60)
    return f"{sign}{hours} h {rest:02d} min" if hours else f"{sign}{rest} min"


class ProgressDisplay:
    """A rich progress bar over simulated time with the pipeline's counters (on stderr)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.fields[simulated]}"),
            BarColumn(),
            TextColumn("readings {task.fields[readings]:>6}"),
            TextColumn("detections {task.fields[detections]:>4}"),
            TextColumn("incidents {task.fields[incidents]:>3}"),
            TextColumn("notifications {task.fields[notifications]:>4}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def __call__(self, update: DemoProgress) -> None:
        fields: dict[str, Any] = {
            "simulated": beijing(update.simulated), "readings": update.readings, "detections": update.detections,
            "incidents": update.incidents, "notifications": update.notifications,
        }
        if self._task is None:
            self._task = self._progress.add_task("demo", total=update.steps, **fields)
        self._progress.update(self._task, completed=update.step, **fields)


def print_summary(report: DemoReport, console: Console) -> None:
    """What was injected, detected, raised, sent and written."""
    spill = report.spill
    name = PARAMETERS[spill.pollutant].name_zh if spill.pollutant in PARAMETERS else spill.pollutant
    console.print(
        f"\n[bold]Spill[/bold] {spill.pollutant} ({name}) ×{spill.peak_multiple:g} at {spill.station_id} on the "
        f"{spill.river}, {beijing(spill.start)} for {span(spill.duration)} (Beijing time)"
    )
    console.print(
        f"Simulated {beijing(report.simulated_from)} → {beijing(report.simulated_to)}: {report.readings} readings "
        f"({report.dead_letters} rejected by the ingest router) in {report.wall_seconds:.1f} s"
    )
    _detections(report, console)
    _incidents(report, console)
    _notifications(report, console)
    console.print("\n[bold]Playbooks[/bold] (一河一策一图)")
    for path in report.playbook_files:
        console.print(f"  {path}")
    if report.ok:
        console.print(f"\n[green]OK[/green]: spill detected at {', '.join(report.stations_detected)}; "
                      f"incident {', '.join(i.incident_id for i in report.spill_incidents)} raised with a playbook.")
    else:
        for problem in report.problems:
            console.print(f"[red]FAILED[/red]: {problem}")


def _detections(report: DemoReport, console: Console) -> None:
    table = Table(title="Detected (spill)", title_justify="left")
    for column in ("time", "station", "kind", "param", "plume came", "delay"):
        table.add_column(column)
    for line in report.spill_detections:
        arrived, delay = line.spill_arrival, line.delay
        table.add_row(short(line.time), f"{line.section} {line.station_id}", line.kind, ",".join(line.parameters),
                      short(arrived) if arrived else "", span(delay) if delay is not None else "")
    console.print(table)
    missed = [e.station_id for e in report.arrivals
              if e.start < report.simulated_to and e.station_id not in report.stations_detected]
    if missed:
        console.print(f"Plume reached but not detected: {', '.join(missed)}")
    if report.background:
        counts = ", ".join(f"{kind} {n}" for kind, n in report.background.items())
        console.print(f"Background (not the spill; simulated water near its limits, instruments): {counts}")


def _incidents(report: DemoReport, console: Console) -> None:
    for incident in report.spill_incidents:
        console.print(
            f"\n[bold]Incident {incident.incident_id}[/bold] {incident.level.label_zh}预警 ({incident.level.value}), "
            f"{incident.status.value}: {incident.river} {incident.pollutant}, stations {' → '.join(incident.stations)}"
        )
        for reason in incident.level_reasons:
            console.print(f"  why: {reason.zh} / {reason.en}")
        if incident.nearest_intake and incident.intake_arrival_at is not None:
            expected = beijing(incident.intake_arrival_at)
            console.print(f"  nearest intake: {incident.nearest_intake}, plume expected {expected}")
    if report.other_incidents:
        kinds = Counter(f"{i.route.value} {i.river} {i.pollutant}" for i in report.other_incidents)
        listed = ", ".join(f"{k} ×{n}" if n > 1 else k for k, n in kinds.items())
        console.print(f"Other incidents ({len(report.other_incidents)}): {listed}")


def _notifications(report: DemoReport, console: Console) -> None:
    spill_ids = {i.incident_id for i in report.spill_incidents}
    mine = [n for n in report.notifications if n.incident_id in spill_ids]
    per_target = Counter(n.target for n in mine if n.outcome == "sent")
    where = ", ".join(f"{count} → {target}" for target, count in per_target.items())
    console.print(f"\n[bold]Notifications for the spill[/bold] ({len(mine)} of {len(report.notifications)}; {where})")
    for n in mine:
        console.print(f"  {short(n.at)}  {n.channel:<5} {n.reason:<12} {n.outcome:<10} {n.first_line}", markup=False)
