"""The identities of the secured stack as tests see them: the settings ``deploy/stack.sh env <who>``
and ``stack.sh cert <station>`` print, and the dev passwords that must never leak."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

from riverguard.settings import InfluxSettings, KafkaSettings, MqttSettings, Settings

REPO = Path(__file__).resolve().parents[2]
STACK_SCRIPT = REPO / "deploy" / "stack.sh"
SECTIONS = {"mqtt": MqttSettings, "kafka": KafkaSettings, "influx": InfluxSettings}
#: ``stack.sh env`` identities: the admin, each service, and the read-only InfluxDB user.
WHO = ("admin", "ingest", "detect", "alert", "sink", "reader")


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


def identity(base: Settings, who: str) -> Settings:
    """``base`` with the MQTT, Kafka and InfluxDB sections of ``stack.sh env <who>`` alone."""
    result = stack_script("env", who)
    if result.returncode != 0:
        raise RuntimeError(f"deploy/stack.sh env {who} failed: {result.stderr}")
    found = sections(exported(result.stdout))
    return base.model_copy(update={name: cls(**found[name]) for name, cls in SECTIONS.items() if name in found})


def station_certificate(station_id: str) -> MqttSettings:
    """The MQTT settings ``stack.sh cert`` prints for a station that logs in with a certificate."""
    result = stack_script("cert", station_id)
    if result.returncode != 0:
        raise RuntimeError(f"deploy/stack.sh cert {station_id} failed: {result.stderr}")
    return MqttSettings(**sections(exported(result.stdout))["mqtt"])


def generated_secrets() -> dict[str, str]:
    """Every Kafka and InfluxDB password of the dev secrets (deploy/lib/pki.sh), by file."""
    cache = Path(os.environ.get("RIVERGUARD_CACHE", Path.home() / ".cache/riverguard"))
    secrets = Path(os.environ.get("RIVERGUARD_SECRETS_DIR", cache / "dev-secrets"))
    found = {}
    for path in [*secrets.glob("kafka/*"), *secrets.glob("influx/*")]:
        secret = path.read_text().splitlines()[0]
        found[str(path)] = secret.split(":", 1)[-1]  # an InfluxDB token is user:password
    if len(found) < 8:
        raise RuntimeError(f"no dev secrets in {secrets}: is the stack up?")
    return found


def leaks_in(text: str, secrets: dict[str, str]) -> list[str]:
    """The secret files whose secret is in ``text``."""
    return [name for name, secret in secrets.items() if secret in text]
