"""``riverguard incidents list|show|ack|resolve``.

The incident commands talk to the running alert service's HTTP API (``--url``, default
``http://alerts.http_host:alerts.http_port``, bearer ``alerts.api_token``). When the API cannot be
reached, ``list`` and ``show`` fall back to reading the compacted incidents topic from Kafka (the
state as last persisted, said so on stderr); ``ack`` and ``resolve`` need the service, which owns
the state — writing to the topic behind its back would race with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from riverguard.bus.kafka import KafkaBus
from riverguard.cli import ConfigOption, settings_or_exit
from riverguard.errors import RiverguardError
from riverguard.incidents import Incident
from riverguard.models import decode
from riverguard.settings import Settings

UrlOption = Annotated[str | None, typer.Option("--url", help="Alert service API (default from the settings).")]


class ApiUnreachableError(RiverguardError):
    pass


def _base_url(settings: Settings, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    host = settings.alerts.http_host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - a listen address, not a bind
    return f"http://{host}:{settings.alerts.http_port}"


def _call(settings: Settings, url: str | None, method: str, path: str, body: dict[str, str] | None = None) -> Any:
    base = _base_url(settings, url)
    if not base.startswith(("http://", "https://")):
        typer.echo(f"error: --url must be http(s)://..., got {base!r}", err=True)
        raise typer.Exit(2)
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        base + path, method=method, data=json.dumps(body).encode() if body is not None else None
    )
    request.add_header("Content-Type", "application/json")
    if settings.alerts.api_token is not None:
        request.add_header("Authorization", f"Bearer {settings.alerts.api_token.get_secret_value()}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own http(s) API
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail).get("error", detail)
        typer.echo(f"error: {method} {path}: HTTP {exc.code}: {detail}", err=True)
        raise typer.Exit(1) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ApiUnreachableError(f"the alert service API at {base} is not reachable ({exc})") from exc


async def _read_topic(settings: Settings) -> list[Incident]:
    bus = KafkaBus(settings.kafka)
    latest: dict[str, Incident] = {}
    for records in (await bus.read_topics([settings.topics.incidents])).values():
        for record in records:
            if record.value is not None:
                incident = decode(record.value, Incident).payload
                latest[incident.incident_id] = incident
    return sorted(latest.values(), key=lambda i: i.opened_at, reverse=True)


def _from_topic(settings: Settings, exc: ApiUnreachableError) -> list[Incident]:
    typer.echo(f"note: {exc}; reading {settings.topics.incidents} from Kafka instead", err=True)
    try:
        return asyncio.run(_read_topic(settings))
    except RiverguardError as kafka_exc:
        typer.echo(f"error: {kafka_exc}", err=True)
        raise typer.Exit(1) from kafka_exc


def _line(item: dict[str, Any]) -> str:
    multiple = item.get("peak_multiple")
    over = f"超标{multiple:.1f}倍" if isinstance(multiple, float) else ""
    stations = ",".join(item.get("stations") or [])
    return (f"{item['incident_id']}  {item['status']:<12} {item['level']:<6} {item['route']:<11} "
            f"{item['river']:<8} {item['pollutant']:<10} {over:<10} {stations}  opened {item['opened_at']}")


incidents = typer.Typer(help="List, show, acknowledge and resolve incidents.", no_args_is_help=True)

@incidents.command("list")
def list_incidents(
    config: ConfigOption = None,
    url: UrlOption = None,
    status: Annotated[str, typer.Option(help="all, active, open, acknowledged or resolved")] = "active",
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of one line per incident.")] = False,
) -> None:
    """Incidents, newest first."""
    settings = settings_or_exit(config)
    try:
        items: list[dict[str, Any]] = _call(settings, url, "GET", f"/incidents?status={status}")
    except ApiUnreachableError as exc:
        from alerts.api import summary  # the HTTP server's module: aiohttp only when it is needed

        found = _from_topic(settings, exc)
        if status == "active":
            found = [i for i in found if i.is_active]
        elif status != "all":
            found = [i for i in found if i.status.value == status]
        items = [summary(i) for i in found]
    if as_json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
    else:
        for item in items:
            typer.echo(_line(item))

@incidents.command("show")
def show(incident_id: str, config: ConfigOption = None, url: UrlOption = None) -> None:
    """One incident in full (JSON): history, outbox, level reasons."""
    settings = settings_or_exit(config)
    try:
        item = _call(settings, url, "GET", f"/incidents/{incident_id}")
    except ApiUnreachableError as exc:
        match = [i for i in _from_topic(settings, exc) if i.incident_id == incident_id]
        if not match:
            typer.echo(f"error: no incident {incident_id!r} in {settings.topics.incidents}", err=True)
            raise typer.Exit(1) from exc
        item = match[0].model_dump(mode="json")
    typer.echo(json.dumps(item, ensure_ascii=False, indent=2))

def _act(action: str, incident_id: str, by: str, note: str, config: Path | None, url: str | None) -> None:
    settings = settings_or_exit(config)
    try:
        item = _call(settings, url, "POST", f"/incidents/{incident_id}/{action}", {"by": by, "note": note})
    except ApiUnreachableError as exc:
        typer.echo(f"error: {exc}; {action} needs the running alert service (riverguard run alert)", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{item['incident_id']}: {item['status']} by {by}")

@incidents.command("ack")
def ack(
    incident_id: str,
    by: Annotated[str, typer.Option(help="Who acknowledges (name or duty post).")],
    note: Annotated[str, typer.Option(help="Free text kept in the history.")] = "",
    config: ConfigOption = None,
    url: UrlOption = None,
) -> None:
    """Acknowledge: stops escalation and reminders."""
    _act("ack", incident_id, by, note, config, url)

@incidents.command("resolve")
def resolve(
    incident_id: str,
    by: Annotated[str, typer.Option(help="Who resolves.")],
    note: Annotated[str, typer.Option(help="Free text kept in the history.")] = "",
    config: ConfigOption = None,
    url: UrlOption = None,
) -> None:
    """Resolve: everyone paged so far is told it is over."""
    _act("resolve", incident_id, by, note, config, url)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents, name="incidents")
