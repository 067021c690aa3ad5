"""``riverguard playbook``, ``riverguard trace`` and ``riverguard playbook-network``: build playbooks,
trace a release back to its source, check network files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from playbooks.errors import PlaybookError
from playbooks.loader import load_network_file, load_networks
from playbooks.network import RiverNetwork
from riverguard.errors import describe_validation_error

network_app = typer.Typer(help="Check and list river network files (一河).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("playbook")(playbook_command)
    app.command("trace")(trace_command)
    app.add_typer(network_app, name="playbook-network")


def trace_command(
    river: Annotated[str, typer.Option("--river", "-r", help="min, tuo, jialing or a --network river.")],
    observations: Annotated[Path, typer.Option("--observations", help="OBS.json: what the stations saw.")],
    network: Annotated[
        list[Path] | None, typer.Option("--network", help="Extra network YAML file (repeatable).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="json or md.")] = "json",
) -> None:
    """Where, when and how much was released (溯源), and the registered sources ranked by probability."""
    if fmt not in ("json", "md"):
        _fail(f"--format {fmt!r}: choose json or md")
    # the model (numpy, scipy) loads with the command, not with every riverguard command line
    from playbooks.tracedoc import TraceRequest, trace_json, trace_markdown
    from playbooks.tracing import trace

    try:
        request = TraceRequest.model_validate_json(observations.read_bytes())
    except OSError as exc:
        _fail(f"cannot read {observations}: {exc.strerror}")
    except ValidationError as exc:
        _fail(f"{observations}: {describe_validation_error(exc)}")
    try:
        chosen = _network_for(load_networks(network or ()), river, "")
        result = trace(chosen, request.pollutant, request.observations, request.clean)
    except PlaybookError as exc:
        _fail(str(exc))
    if fmt == "md":
        typer.echo(trace_markdown(result, chosen, request.pollutant), nl=False)
    else:
        typer.echo(json.dumps(trace_json(result), ensure_ascii=False, indent=2))


def playbook_command(
    station: Annotated[str, typer.Option("--station", "-s", help="Alerting station id, e.g. tuo-sanhuangmiao.")],
    pollutant: Annotated[str, typer.Option("--pollutant", "-p", help="Parameter (NH3N, Cd, TP ...) or class.")],
    at: Annotated[str, typer.Option("--at", help="Alert time, ISO 8601 with offset, e.g. 2024-05-14T10:00+08:00.")],
    river: Annotated[str | None, typer.Option("--river", "-r", help="min, tuo, jialing or a --network river.")] = None,
    concentration: Annotated[float | None, typer.Option(help="Observed concentration (mg/L).")] = None,
    discharge: Annotated[float | None, typer.Option(help="Live discharge at the station (m3/s).")] = None,
    network: Annotated[
        list[Path] | None, typer.Option("--network", help="Extra network YAML file (repeatable).")
    ] = None,
    horizon: Annotated[float, typer.Option(help="Forecast horizon (hours).")] = 48.0,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="md, html, json or sms.")] = None,
    lang: Annotated[str, typer.Option(help="zh or en.")] = "zh",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write files (incl. map png/svg/geojson) here.")
    ] = None,
) -> None:
    """Build the 一河一策一图 playbook for an alert: JSON to stdout, or files with --out."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        _fail(f"--at {at!r} is not an ISO 8601 time (e.g. 2024-05-14T10:00+08:00)")
    if moment.tzinfo is None:
        _fail(f"--at {at!r} has no UTC offset; add one, e.g. {at}+08:00")
    if lang not in ("zh", "en"):
        _fail(f"--lang {lang!r}: choose zh or en")
    if fmt is not None and fmt not in ("md", "html", "json", "sms"):
        _fail(f"--format {fmt!r}: choose md, html, json or sms")
    # the model (numpy, scipy) loads with the command, not with every riverguard command line
    from playbooks.export import write_playbook
    from playbooks.playbook import build_playbook
    from playbooks.render import Lang, playbook_json, render_html, render_markdown, render_sms

    language: Lang = "zh" if lang == "zh" else "en"
    try:
        networks = load_networks(network or ())
        chosen = _network_for(networks, river, station)
        playbook = build_playbook(
            chosen,
            station_id=station,
            pollutant=pollutant,
            at=moment,
            concentration=concentration,
            discharge_m3s=discharge,
            horizon_h=horizon,
        )
        if out is not None:
            formats = (fmt,) if fmt else ("md", "html", "json")
            for path in write_playbook(playbook, chosen, out, (*formats, "sms", "png", "svg", "geojson"), language):
                typer.echo(str(path))
            return
    except (PlaybookError, ValueError) as exc:
        _fail(str(exc))
    if fmt == "md":
        typer.echo(render_markdown(playbook, language), nl=False)
    elif fmt == "html":
        typer.echo(render_html(playbook, language), nl=False)
    elif fmt == "sms":
        typer.echo(render_sms(playbook, language))
    else:
        typer.echo(json.dumps(playbook_json(playbook), ensure_ascii=False, indent=2))


@network_app.command("check")
def network_check(files: Annotated[list[Path], typer.Argument(help="Network YAML files.")]) -> None:
    """Validate network files; exit 2 naming the file, the item and the problem."""
    failed = False
    for path in files:
        try:
            loaded = load_network_file(path)
        except PlaybookError as exc:
            typer.echo(f"error: {exc}", err=True)
            failed = True
            continue
        typer.echo(
            f"{path}: OK — {loaded.river} {loaded.name_zh}, {len(loaded.chain)} reaches, "
            f"{len(loaded.stations)} stations, {len(loaded.intakes)} intakes, {len(loaded.outfalls)} outfalls"
        )
    if failed:
        raise typer.Exit(2)


@network_app.command("list")
def network_list(
    network: Annotated[list[Path] | None, typer.Option("--network", help="Extra network YAML file.")] = None,
) -> None:
    """List the known rivers and their stations (upstream → downstream)."""
    try:
        networks = load_networks(network or ())
    except PlaybookError as exc:
        _fail(str(exc))
    for river, net in networks.items():
        stations = ", ".join(f"{s.station_id} (km {s.river_km:g})" for s in net.stations)
        typer.echo(f"{river} {net.name_zh} km {net.start_km:g}–{net.end_km:g}: {stations}")


def _network_for(networks: dict[str, RiverNetwork], river: str | None, station: str) -> RiverNetwork:
    if river is not None:
        if river not in networks:
            raise PlaybookError(f"unknown river {river!r}; known: {', '.join(networks)} (add one with --network FILE)")
        return networks[river]
    for candidate in networks.values():
        if any(s.station_id == station for s in candidate.stations):
            return candidate
    raise PlaybookError(f"station {station!r} is on none of the networks {', '.join(networks)}; pass --river/--network")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


__all__ = ["register"]
