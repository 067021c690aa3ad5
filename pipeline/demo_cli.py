"""``riverguard demo``: the whole pipeline in one process, in simulated time, with no services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from riverguard.cli import ConfigOption, settings_and_registry_or_exit
from riverguard.errors import RiverguardError
from riverguard.timekeeping import parse_duration

if TYPE_CHECKING:
    from alerts.service import AlertService
    from pipeline.demo import Hold
    from pipeline.report import DemoReport
    from riverguard.bus.memory import MemoryBus
    from riverguard.stations import StationRegistry


def duration_option(text: str, option: str) -> timedelta:
    """``text`` as a duration (:func:`riverguard.timekeeping.parse_duration`); BadParameter naming the option.

    >>> duration_option("1h30m", "--after")
    datetime.timedelta(seconds=5400)
    """
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the playbooks and the notification files.")] = Path("out/demo"),
    river: Annotated[str, typer.Option(help="River of the spill: min, tuo or jialing.")] = "tuo",
    station: Annotated[
        str | None, typer.Option(help="Station where the spill enters (default: the river's first that measures it).")
    ] = None,
    pollutant: Annotated[str, typer.Option(help="Spilled parameter (canonical name, e.g. NH3N, TP, Cd).")] = "NH3N",
    peak: Annotated[float, typer.Option(help="Peak at the spill station as a multiple of its typical value.")] = 10.0,
    spill_duration: Annotated[str, typer.Option("--spill-duration", help="How long the release lasts.")] = "2h",
    start: Annotated[
        str | None, typer.Option(help="Simulated start (ISO with zone; default 2024-07-01T08:00+08:00).")
    ] = None,
    warmup: Annotated[str, typer.Option(help="Simulated time before the spill (detectors learn normal).")] = "2d",
    after: Annotated[
        str | None, typer.Option(help="Simulated time after the spill (default: until it passed the next station).")
    ] = None,
    step: Annotated[str, typer.Option(help="Simulated time between a station's readings.")] = "5m",
    seed: Annotated[int, typer.Option(help="Simulator seed: the same seed gives the same water.")] = 7,
    faults: Annotated[bool, typer.Option(help="Also simulate instrument faults and maintenance windows.")] = False,
    single_target: Annotated[
        bool, typer.Option("--single-target", help="Every route to one target (one duty phone).")
    ] = False,
    lang: Annotated[Literal["zh", "en"], typer.Option(help="Language of the alerts and playbooks.")] = "zh",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then keep the alert stage and the duty console running on the result "
                                          "(prints the console's address and a duty user) until Ctrl-C.")
    ] = False,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="--serve: the console's port (default alerts.http_port).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the whole pipeline in one process in simulated time: stations → detectors → incident → playbook.

    No services needed: an in-memory bus, the station simulator on the Min, Tuo and Jialing with a
    spill injected, the real detectors, alert stage and playbooks, and Apprise writing to local files.
    Exit status 0 when the spill was detected and an incident was raised with a playbook.
    """
    from rich.console import Console

    from pipeline.demo import DEFAULT_START, DemoOptions, run_demo
    from pipeline.display import ProgressDisplay, print_summary
    from pipeline.errors import PipelineError
    from riverguard.observability import setup_logging

    settings, registry = settings_and_registry_or_exit(config)
    setup_logging(settings.observability.model_copy(update={"log_level": "WARNING"}), service="demo")
    try:
        begin = datetime.fromisoformat(start) if start else DEFAULT_START
        if begin.tzinfo is None:
            raise typer.BadParameter(f"{start!r} needs a time zone, e.g. +08:00", param_hint="--start")
        options = DemoOptions(
            out=out, river=river, station=station, pollutant=pollutant, peak_multiple=peak,
            spill_duration=duration_option(spill_duration, "--spill-duration"), start=begin,
            warmup=duration_option(warmup, "--warmup"), after=duration_option(after, "--after") if after else None,
            step=duration_option(step, "--step"), seed=seed, faults=faults, language=lang, single_target=single_target,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    stderr = Console(stderr=True)

    def show(report: DemoReport) -> None:
        if as_json:
            typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        else:
            console = Console(soft_wrap=True)
            if not console.is_terminal:
                console = Console(soft_wrap=True, width=120)  # piped: rich would assume 80 columns
            print_summary(report, console)

    try:
        with ExitStack() as display_open:
            display = None if as_json else display_open.enter_context(ProgressDisplay(stderr))
            hold = None
            if serve:
                hold = serving(show, display_open.close, registry, options.out,
                               settings.alerts.http_port if port is None else port, err=as_json)
            report = asyncio.run(run_demo(options, settings, registry, display, hold))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (PipelineError, RiverguardError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if not serve:
        show(report)
    if not report.ok:
        for problem in report.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)


def serving(show: Callable[[DemoReport], None], end_progress: Callable[[], None], registry: StationRegistry,
            out: Path, port: int, *, err: bool) -> Hold:
    """``--serve``: after the run, end the progress display, print the report, then serve the
    console on the alert stage (:mod:`console.demo`) until Ctrl-C; ``err``: say where on stderr
    (stdout holds the JSON summary)."""
    from console.demo import ServedConsole, serve_console

    folder = out.resolve()

    def announce(served: ServedConsole) -> None:
        typer.echo(f"\nduty console: {served.url}\n  user {served.user}, password {served.password} "
                   "(made for this run, shown once)\n  Ctrl-C stops it.", err=err)

    async def hold(report: DemoReport, alerts: AlertService, bus: MemoryBus) -> None:
        end_progress()
        show(report)
        await serve_console(alerts, bus, registry, folder, port=port, announce=announce)

    return hold
