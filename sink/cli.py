"""Commands of the sink package: ``riverguard history``."""

from __future__ import annotations

import json
from datetime import UTC
from typing import TYPE_CHECKING, Annotated

import typer

from riverguard.cli import ConfigOption, settings_or_exit
from riverguard.errors import RiverguardError

if TYPE_CHECKING:
    from sink.history import HistoryPoint


def register(app: typer.Typer) -> None:
    app.command("history")(history)


def history(
    station: Annotated[str, typer.Option("--station", "-s", help="Station id, e.g. tuo-sanhuangmiao.")],
    parameter: Annotated[str, typer.Option("--parameter", "-p", help="Canonical parameter name, e.g. NH3N.")],
    since: Annotated[str, typer.Option("--since", help="How far back (24h, 90m, 7d, 1h30m) or an ISO time.")] = "24h",
    as_json: Annotated[bool, typer.Option("--json", help="JSON array of {time, value, flag}, not a table.")] = False,
    config: ConfigOption = None,
) -> None:
    """Print the stored values of one parameter at one station, oldest first."""
    from sink.history import history_query, parse_since, recent_history

    settings = settings_or_exit(config)
    try:
        start = parse_since(since)
        history_query(settings.influx.bucket, station, parameter, start)  # rejects bad names before any I/O
    except RiverguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        points = recent_history(settings, station, parameter, start)
    except RiverguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        rows = [{"time": p.time.isoformat(), "value": p.value, "flag": p.flag} for p in points]
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not points:
        typer.echo(f"no {parameter} values at {station} since {since} (bucket {settings.influx.bucket})")
        return
    _print_table(station, parameter, points)


def _print_table(station: str, parameter: str, points: list[HistoryPoint]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{station} · {parameter}", title_justify="left")
    table.add_column("time (UTC)")
    table.add_column("value", justify="right")
    table.add_column("flag")
    for moment, value, flag in points:
        table.add_row(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), f"{value:g}", flag)
    Console(soft_wrap=True).print(table)
