"""deploy/stack.sh around the secured stack: its settings carry secrets as file paths only, and a
stack started by an older stack.sh (no TLS, no authentication) is reported, never mixed in."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.harness import free_port
from tests.support.identities import WHO, exported, generated_secrets, leaks_in, stack_script

pytestmark = [pytest.mark.integration]


def test_env_gives_each_identity_its_own_secret_files_and_no_secret(tmp_path: Path) -> None:
    secrets = generated_secrets()
    files = {}
    for who in WHO:
        result = stack_script("env", who)
        assert result.returncode == 0, result.stderr
        assert not leaks_in(result.stdout, secrets)
        variables = exported(result.stdout)
        files[who] = {k: v for k, v in variables.items() if k.endswith("_FILE") and not k.endswith("CA_FILE")}
        assert all(Path(path).is_file() for path in files[who].values())
        [unset] = [line.split()[1:] for line in result.stdout.splitlines() if line.startswith("unset ")]
        assert {"RIVERGUARD_KAFKA__SASL_PASSWORD", "RIVERGUARD_INFLUX__TOKEN_FILE"} <= set(unset)  # identities switch
    assert files["detect"].keys() == {"RIVERGUARD_KAFKA__SASL_PASSWORD_FILE"}
    assert files["reader"].keys() == {"RIVERGUARD_INFLUX__TOKEN_FILE"}
    assert files["sink"]["RIVERGUARD_INFLUX__TOKEN_FILE"].endswith("/riverguard-sink")
    assert files["alert"]["RIVERGUARD_INFLUX__TOKEN_FILE"].endswith("/riverguard-reader")  # the console reads
    assert stack_script("env", "root").returncode != 0


@pytest.fixture
def old_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A runtime dir whose pid file points at a running "mosquitto" that an older stack.sh
    started: no format stamp beside it (a stand-in process, so nothing real is disturbed)."""
    run = tmp_path / "run"
    run.mkdir()
    stand_in = subprocess.Popen(["bash", "-c", "exec -a mosquitto sleep 120"])
    (run / "mosquitto.pid").write_text(f"{stand_in.pid}\n")
    (run / "mosquitto.owner").write_text("manual\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")} | {
        "RIVERGUARD_STACK_DIR": str(tmp_path),
        "RIVERGUARD_MQTT__PORT": str(free_port()),
        "RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "RIVERGUARD_INFLUX__URL": f"http://127.0.0.1:{free_port()}",
    }
    for shared in ("RIVERGUARD_CACHE", "RIVERGUARD_SECRETS_DIR"):
        if shared in os.environ:
            env[shared] = os.environ[shared]
    yield env
    stand_in.kill()
    stand_in.wait()


def test_a_stack_started_by_an_older_stack_script_is_reported_with_what_to_do(old_stack: dict[str, str]) -> None:
    up = stack_script("up", env=old_stack)
    assert up.returncode != 0
    assert "started by an older deploy/stack.sh, without TLS and authentication" in up.stderr
    assert "down" in up.stderr
    assert "started (pid" not in up.stderr  # nothing was started beside it
    status = stack_script("status", env=old_stack)
    assert status.stdout.splitlines()[1].split()[:2] == ["mosquitto", "old"]
    env = stack_script("env", env=old_stack)
    assert env.returncode == 0  # eval "$(stack.sh env)" still works; the warning is on stderr
    assert "WARNING" in env.stderr
    assert "RIVERGUARD_MQTT__TLS" in env.stdout
