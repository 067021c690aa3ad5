"""InfluxDB with authentication: the sink's user writes and cannot read, the reader (`riverguard
history`, Grafana) reads and cannot write, neither administers, and a request without credentials
gets nothing. The test's database is its own; the admin grants the two users on it exactly what
deploy/stack.sh grants them on ``riverguard``."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.harness import influx_statement
from riverguard.settings import InfluxSettings, Settings
from sink.errors import HistoryError, InfluxUnavailable
from sink.history import recent_history
from sink.influx import InfluxWriter
from tests.support.services import require_service

pytestmark = [pytest.mark.integration]

STATION = "tuo-hongyuan"


@pytest.fixture
def database(identities: dict[str, Settings], unique: str) -> Iterator[str]:
    admin = identities["admin"].influx
    netloc = urllib.parse.urlsplit(admin.url).netloc
    host, _, port = netloc.rpartition(":")
    require_service("InfluxDB", host, int(port))
    name = f"rg_auth_{unique}"
    influx_statement(admin, f'CREATE DATABASE "{name}"')
    influx_statement(admin, f'GRANT WRITE ON "{name}" TO "riverguard-sink"')
    influx_statement(admin, f'GRANT READ ON "{name}" TO "riverguard-reader"')
    yield name
    influx_statement(admin, f'DROP DATABASE "{name}"')


def on(identity: Settings, database: str) -> Settings:
    return identity.model_copy(update={"influx": identity.influx.model_copy(update={"bucket": f"{database}/autogen"})})


def line(value: float, at: datetime) -> str:
    return (f"reading,river=tuo,station={STATION},section=x,parameter=NH3N value={value},flag=\"N\" "
            f"{int(at.timestamp() * 1e9)}")


async def test_the_sink_writes_and_the_reader_reads_and_neither_does_the_other(
    identities: dict[str, Settings], database: str
) -> None:
    sink, reader = on(identities["sink"], database), on(identities["reader"], database)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    writer = InfluxWriter(sink.influx)
    try:
        await writer.write([line(0.42, at)])
    finally:
        writer.close()
    [point] = recent_history(reader, STATION, "NH3N", "1h")
    assert (point.time, point.value) == (at, 0.42)

    with pytest.raises(HistoryError, match="requires READ"):  # 1.8 answers Flux with a 500 here
        recent_history(sink, STATION, "NH3N", "1h")
    writer = InfluxWriter(reader.influx)
    try:
        with pytest.raises(InfluxUnavailable, match="HTTP 403"):
            await writer.write([line(9.9, at)])
    finally:
        writer.close()
    assert [p.value for p in recent_history(reader, STATION, "NH3N", "1h")] == [0.42]


@pytest.mark.parametrize("who", ["sink", "reader"])
def test_only_the_admin_administers(identities: dict[str, Settings], who: str, unique: str) -> None:
    for statement in (f'CREATE DATABASE "rg_auth_{unique}_x"', f"CREATE USER \"x{unique}\" WITH PASSWORD 'x'",
                      'GRANT ALL PRIVILEGES TO "riverguard-sink"', "SHOW USERS"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            influx_statement(identities[who].influx, statement)
        assert refused.value.code == 403, statement


def test_no_credentials_no_data(identities: dict[str, Settings]) -> None:
    influx: InfluxSettings = identities["admin"].influx
    body = urllib.parse.urlencode({"q": "SHOW DATABASES"}).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{influx.url}/query", data=body, timeout=10)
    assert refused.value.code == 401
