"""Service-bound tests fail — not skip — when a service of the local stack is unreachable, so a
green run always means the real services were used."""

from __future__ import annotations

import socket

import pytest


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
