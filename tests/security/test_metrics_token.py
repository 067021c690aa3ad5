"""/metrics and /health with ``observability.metrics_token``: only a request with the bearer
token gets an answer (the settings require the token when the endpoint is bound off loopback)."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from riverguard.observability import start_observability
from riverguard.settings import ObservabilitySettings

TOKEN = "metrics-7f3a"


async def status(port: int, path: str, authorization: str | None) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    header = f"Authorization: {authorization}\r\n" if authorization is not None else ""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n{header}\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    return int(answer.split()[1])


async def test_the_endpoint_answers_only_with_the_token() -> None:
    settings = ObservabilitySettings(metrics_port=0, metrics_token=SecretStr(TOKEN))
    async with await start_observability(settings, service="test") as obs:
        assert obs.port
        for path in ("/metrics", "/health"):
            assert await status(obs.port, path, None) == 401
            assert await status(obs.port, path, "Bearer wrong") == 401
            assert await status(obs.port, path, TOKEN) == 401  # not a bearer credential
            assert await status(obs.port, path, f"Bearer {TOKEN}") == 200


async def test_without_a_token_it_stays_open_on_loopback() -> None:
    async with await start_observability(ObservabilitySettings(metrics_port=0), service="test") as obs:
        assert obs.port
        assert await status(obs.port, "/metrics", None) == 200
