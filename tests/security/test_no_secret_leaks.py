"""The stack's generated passwords appear on no process's command line and in no log: not the
brokers', not the stack script's, not a service's logging at DEBUG while it connects."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.harness import settings_env
from riverguard.settings import Settings
from tests.support.identities import generated_secrets, leaks_in

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]


def test_no_password_on_any_command_line() -> None:
    secrets = generated_secrets()
    leaked = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue  # gone meanwhile
            if found := leaks_in(cmdline, secrets):
                leaked[proc.name] = found
    assert not leaked, f"processes with a password in their command line: {leaked}"


def test_no_password_in_the_stack_logs() -> None:
    secrets = generated_secrets()
    stack = Path(os.environ.get("RIVERGUARD_STACK_DIR", REPO / ".stack"))
    logs = [p for p in (stack / "logs").rglob("*") if p.is_file()]
    leaked = {str(p): found for p in logs if (found := leaks_in(p.read_text(errors="replace"), secrets))}
    assert not leaked, leaked


def test_a_service_connecting_at_debug_level_logs_no_password(settings: Settings, tmp_path: Path) -> None:
    secrets = generated_secrets()
    env = settings_env(settings) | {"RIVERGUARD_OBSERVABILITY__LOG_LEVEL": "DEBUG",
                                    "RIVERGUARD_TOPICS__READINGS": f"telemetry.readings-leak-{tmp_path.name}"}
    log = tmp_path / "detect.log"
    with log.open("wb") as out:
        service = subprocess.Popen([str(Path(sys.executable).parent / "riverguard"), "run", "detect",
                                    "--group", f"riverguard-detect-leak-{tmp_path.name}"],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"consuming" not in log.read_bytes() and service.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        service.send_signal(signal.SIGTERM)
        service.wait(30)
    text = log.read_text(errors="replace")
    assert "consuming" in text, text[-2000:]  # it did connect (SASL over TLS) and log at DEBUG meanwhile
    assert not leaks_in(text, secrets)
