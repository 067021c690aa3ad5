"""Service-bound tests fail — not skip — when a service of the local stack is unreachable, so a
green run always means the real services were used."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.harness.processes import ServiceProcess


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if not _reachable(host, port):
        pytest.fail(
            f"{name} is not reachable at {host}:{port}; start the local stack with `make up` "
            f"(or set the RIVERGUARD_* address variables to a running {name})",
            pytrace=False,
        )


@asynccontextmanager
async def running(
    run: Callable[[asyncio.Event], Coroutine[Any, Any, None]], ready: asyncio.Event
) -> AsyncIterator[None]:
    """Run a service (``run(stop)``) for the block, from when it is ``ready``; a service that
    fails before that raises here, and one that fails later raises when the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    readiness = asyncio.create_task(ready.wait())
    await asyncio.wait([task, readiness], return_when=asyncio.FIRST_COMPLETED)
    readiness.cancel()
    if task.done():
        task.result()
    try:
        yield
    finally:
        stop.set()
        await task


@contextmanager
def service_processes(directory: Path) -> Iterator[Callable[[str, dict[str, str]], ServiceProcess]]:
    """Start ``riverguard run <name>`` subprocesses (logs in ``directory``); all are killed at the end."""
    started: list[ServiceProcess] = []

    def start(name: str, env: dict[str, str]) -> ServiceProcess:
        argv = [str(Path(sys.executable).parent / "riverguard"), "run", name]
        process = ServiceProcess(name, argv, env, directory / f"{name}-{len(started)}.log")
        process.start()
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop(signal.SIGKILL)
