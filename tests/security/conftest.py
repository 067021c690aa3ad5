"""The identities of the stack (``deploy/stack.sh env <who>``, ``stack.sh cert <station>``) as
settings, for tests that check what each one may and may not do against the real services."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from riverguard.settings import InfluxSettings, KafkaSettings, MqttSettings, Settings

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "deploy" / "stack.sh"
SECTIONS = {"MQTT": MqttSettings, "KAFKA": KafkaSettings, "INFLUX": InfluxSettings}


def stack_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``deploy/stack.sh args...`` for the stack the test run uses (the RIVERGUARD_* addresses
    and runtime dir of the environment)."""
    return subprocess.run([str(STACK_SCRIPT), *args], env=env or dict(os.environ), cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)


def exported(text: str) -> dict[str, str]:
    """The ``export NAME=value`` lines of ``text`` (values quoted as bash's printf %q does)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            out[name] = shlex.split(value)[0] if value else ""
    return out


def sections(variables: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``RIVERGUARD_KAFKA__SASL_USERNAME=x`` → ``{"kafka": {"sasl_username": "x"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in variables.items():
        section, _, field = name.removeprefix("RIVERGUARD_").partition("__")
        out.setdefault(section.lower(), {})[field.lower()] = value
    return out


def as_identity(base: Settings, variables: dict[str, str]) -> Settings:
    """``base`` with the MQTT, Kafka and InfluxDB sections built from ``variables`` alone."""
    found = sections(variables)
    return base.model_copy(update={
        name.lower(): cls(**found[name.lower()]) for name, cls in SECTIONS.items() if name.lower() in found
    })


@pytest.fixture(scope="session")
def identities(settings: Settings) -> dict[str, Settings]:
    """Settings of each identity ``stack.sh env`` knows (admin, ingest, detect, alert, sink, reader)."""
    out = {}
    for who in ("admin", "ingest", "detect", "alert", "sink", "reader"):
        result = stack_script("env", who)
        assert result.returncode == 0, result.stderr
        out[who] = as_identity(settings, exported(result.stdout))
    return out
