"""Commands of the composition root: ``riverguard demo`` and ``riverguard run all``."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer

from riverguard.errors import RiverguardError
from riverguard.runner import ConfigOption, run_service, settings_and_registry_or_exit

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def register(app: typer.Typer, run_app: typer.Typer) -> None:
    app.command("demo")(demo)
    run_app.command("all")(run_all)


def parse_duration(text: str, option: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``2d``, ``1h30m``; BadParameter naming the option otherwise.

    >>> parse_duration("1h30m", "--after")
    datetime.timedelta(seconds=5400)
    """
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 30m, 2h, 2d or 1h30m", param_hint=option)
    return sum((timedelta(**{_UNITS[unit]: float(n)}) for n, unit in parts), timedelta())


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
    lang: Annotated[Literal["zh", "en"], typer.Option(help="Language of the alerts and playbooks.")] = "zh",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary instead of tables.")] = False,
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
            spill_duration=parse_duration(spill_duration, "--spill-duration"), start=begin,
            warmup=parse_duration(warmup, "--warmup"), after=parse_duration(after, "--after") if after else None,
            step=parse_duration(step, "--step"), seed=seed, faults=faults, language=lang,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    stderr = Console(stderr=True)
    try:
        if as_json:
            report = asyncio.run(run_demo(options, settings, registry))
        else:
            with ProgressDisplay(stderr) as display:
                report = asyncio.run(run_demo(options, settings, registry, display))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except (PipelineError, RiverguardError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        console = Console(soft_wrap=True)
        if not console.is_terminal:
            console = Console(soft_wrap=True, width=120)  # piped: rich would assume 80 columns
        print_summary(report, console)
    if not report.ok:
        for problem in report.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1)


def run_all(
    config: ConfigOption = None,
    skip: Annotated[
        list[str] | None, typer.Option(help="Leave a stage out (ingest, detect, alerts, sink; repeatable).")
    ] = None,
    group_prefix: Annotated[
        str, typer.Option(help="Consumer groups are <prefix>-detect, <prefix>-alerts, <prefix>-sink.")
    ] = "riverguard",
) -> None:
    """All services in one process against the real stack: ingest bridge, detect, alerts, sink.

    Each stage is its own consumer group, as when run alone (``riverguard run <stage>``), so a
    stage can later move to its own process. SIGINT/SIGTERM stop every stage gracefully.
    """
    from pipeline.runall import STAGES
    from pipeline.runall import run_all as run_stages
    unknown = sorted(set(skip or ()) - set(STAGES))
    if unknown:
        raise typer.BadParameter(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}",
                                 param_hint="--skip")
    settings, registry = settings_and_registry_or_exit(config)

    async def body(stop: asyncio.Event) -> None:
        await run_stages(settings, registry, stop, skip=skip or (), group_prefix=group_prefix)

    # run_stages serves the one /metrics + /health of the process with every stage's checks.
    run_service("all", settings, body, serve_observability=False)
