"""An isolated pipeline of real processes for one test: its own topics, groups, MQTT session,
InfluxDB database and Apprise targets; stopped afterwards, its logs printed if the test failed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from pipeline.harness import Pipeline, Receiver, close_bridge_session, influx_statement, isolated
from riverguard.settings import Settings
from tests.support.services import call_failed


@asynccontextmanager
async def isolated_pipeline(request: pytest.FixtureRequest, base: Settings, unique: str, receiver: Receiver,
                            tmp_path: Path, *, identities: Mapping[str, Settings] | None = None,
                            ) -> AsyncIterator[Pipeline]:
    """The four services with this test's topics, groups, MQTT session and InfluxDB database (not
    started: the test starts them). ``identities``: the principal each service runs as
    (``Pipeline``); their InfluxDB users get on the test's database what deploy/stack.sh gives them
    on ``riverguard``."""
    database = f"rg_e2e_{unique}"
    influx_statement(base.influx, f'CREATE DATABASE "{database}"')
    if identities:  # the grants deploy/stack.sh gives on ``riverguard``: the sink writes, the console reads
        influx_statement(base.influx, f'GRANT WRITE ON "{database}" TO "riverguard-sink"')
        influx_statement(base.influx, f'GRANT READ ON "{database}" TO "riverguard-reader"')
    config = isolated(base, unique, bucket=database, receiver=receiver, config_dir=tmp_path)
    running = Pipeline(config, tmp_path, unique, identities=identities)
    try:
        await running.prepare()  # the topics are created with ``base``'s (the admin's) credentials
        yield running
    finally:
        codes = running.stop()
        close_bridge_session(config)
        influx_statement(base.influx, f'DROP DATABASE "{database}"')
        if call_failed(request):
            print(f"\nservice exit codes: {codes}, unplanned exits: {running.crashes()}")
            print(running.logs())
