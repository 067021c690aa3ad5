"""The supervisor of ``run all``: a failing stage stops the others and is reported by name."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.errors import PipelineError, StageError
from pipeline.runall import _supervise


async def _until_stopped(stop: asyncio.Event, stopped: list[str], name: str) -> None:
    await stop.wait()
    stopped.append(name)


async def _failing() -> None:
    await asyncio.sleep(0.01)
    raise RuntimeError("broker gone")


async def test_a_failing_stage_stops_the_others_and_is_named() -> None:
    stop = asyncio.Event()
    stopped: list[str] = []
    tasks = {
        "detect": asyncio.create_task(_until_stopped(stop, stopped, "detect")),
        "sink": asyncio.create_task(_failing()),
    }
    with pytest.raises(StageError, match="stage sink failed: RuntimeError: broker gone"):
        await _supervise(tasks, stop)
    assert stopped == ["detect"]


async def test_stop_signal_stops_every_stage_cleanly() -> None:
    stop = asyncio.Event()
    stopped: list[str] = []
    tasks = {n: asyncio.create_task(_until_stopped(stop, stopped, n)) for n in ("ingest", "alerts")}
    asyncio.get_running_loop().call_later(0.01, stop.set)
    await _supervise(tasks, stop)
    assert sorted(stopped) == ["alerts", "ingest"]


async def test_a_stage_that_returns_unasked_is_an_error() -> None:
    stop = asyncio.Event()

    async def done() -> None:
        return None

    with pytest.raises(PipelineError, match="ingest ended without being asked to"):
        await _supervise({"ingest": asyncio.create_task(done())}, stop)
