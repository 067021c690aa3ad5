"""Secrets from files (the *_FILE convention), never shown; TLS settings that cannot silently fall
back to plaintext; and no HTTP endpoint on a non-loopback address without a token."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from riverguard.errors import ConfigError
from riverguard.settings import ENV_PREFIX, load_settings

SECRET = "s3cret-Value-7c1f"


@pytest.fixture(autouse=True)
def _no_riverguard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")  # a trailing newline, as `echo` and most secret stores write one
    return path


@pytest.mark.parametrize(("variable", "section", "field"), [
    ("RIVERGUARD_KAFKA__SASL_PASSWORD_FILE", "kafka", "sasl_password"),
    ("RIVERGUARD_MQTT__PASSWORD_FILE", "mqtt", "password"),
    ("RIVERGUARD_INFLUX__TOKEN_FILE", "influx", "token"),
    ("RIVERGUARD_ALERTS__API_TOKEN_FILE", "alerts", "api_token"),
    ("RIVERGUARD_OBSERVABILITY__METRICS_TOKEN_FILE", "observability", "metrics_token"),
])
def test_every_secret_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, secret_file: Path, variable: str,
                                           section: str, field: str) -> None:
    monkeypatch.setenv(variable, str(secret_file))
    settings = load_settings()
    value = getattr(getattr(settings, section), field)
    assert value.get_secret_value() == SECRET
    assert getattr(getattr(settings, section), f"{field}_file") is None  # read once, not kept as a second source
    assert SECRET not in repr(settings)
    shown = CliRunner().invoke(app, ["config", "show"])
    assert shown.exit_code == 0
    assert SECRET not in shown.output


def test_a_secret_file_in_yaml(tmp_path: Path, secret_file: Path) -> None:
    config = tmp_path / "riverguard.yaml"
    config.write_text(f"kafka:\n  security_protocol: SASL_SSL\n  sasl_mechanism: SCRAM-SHA-512\n"
                      f"  sasl_username: riverguard-ingest\n  sasl_password_file: {secret_file}\n")
    password = load_settings(config).kafka.sasl_password
    assert password is not None
    assert password.get_secret_value() == SECRET


def test_a_secret_given_twice_is_an_error_that_does_not_show_it(monkeypatch: pytest.MonkeyPatch,
                                                                 secret_file: Path) -> None:
    monkeypatch.setenv("RIVERGUARD_MQTT__PASSWORD", SECRET)
    monkeypatch.setenv("RIVERGUARD_MQTT__PASSWORD_FILE", str(secret_file))
    with pytest.raises(ConfigError, match="password and password_file are both set") as error:
        load_settings()
    assert SECRET not in str(error.value)


def test_an_unreadable_or_empty_secret_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RIVERGUARD_INFLUX__TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"influx\.token_file=.*cannot read the secret file .*/missing: No such file"):
        load_settings()
    (tmp_path / "empty").write_text("\n")
    monkeypatch.setenv("RIVERGUARD_INFLUX__TOKEN_FILE", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="is empty"):
        load_settings()


def test_a_section_level_error_does_not_show_the_section_with_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # SASL without a mechanism: the error is about the whole kafka section, which holds the password
    monkeypatch.setenv("RIVERGUARD_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("RIVERGUARD_KAFKA__SASL_PASSWORD", SECRET)
    monkeypatch.setenv("RIVERGUARD_KAFKA__SASL_USERNAME", "riverguard-ingest")
    with pytest.raises(ConfigError, match=r"SASL_SSL needs kafka\.sasl_mechanism") as error:
        load_settings()
    assert SECRET not in str(error.value)


def test_tls_files_without_tls_or_missing_are_errors(monkeypatch: pytest.MonkeyPatch, secret_file: Path) -> None:
    assert load_settings().mqtt.tls  # MQTT is over TLS unless said otherwise
    monkeypatch.setenv("RIVERGUARD_MQTT__CA_FILE", str(secret_file))
    monkeypatch.setenv("RIVERGUARD_MQTT__TLS", "false")
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file set but tls is false"):
        load_settings()
    monkeypatch.setenv("RIVERGUARD_MQTT__TLS", "true")
    monkeypatch.setenv("RIVERGUARD_MQTT__KEYFILE", str(secret_file))
    with pytest.raises(ConfigError, match="keyfile is set without certfile"):
        load_settings()
    monkeypatch.delenv("RIVERGUARD_MQTT__KEYFILE")
    monkeypatch.setenv("RIVERGUARD_KAFKA__SSL_CA_FILE", "/nonexistent/ca.pem")
    with pytest.raises(ConfigError, match=r"kafka\.ssl_ca_file=.*no such file"):
        load_settings()
    monkeypatch.setenv("RIVERGUARD_KAFKA__SSL_CA_FILE", str(secret_file))
    with pytest.raises(ConfigError, match="ssl_ca_file is set but security_protocol is PLAINTEXT"):
        load_settings()


@pytest.mark.parametrize(("host", "refused"), [("0.0.0.0", True), ("192.168.1.20", True), ("::", True),
                                               ("duty.example.org", True), ("127.0.0.1", False),
                                               ("127.0.0.2", False), ("::1", False), ("localhost", False)])
def test_the_incident_api_off_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch, host: str,
                                                     refused: bool) -> None:
    monkeypatch.setenv("RIVERGUARD_ALERTS__HTTP_HOST", host)
    if refused:
        with pytest.raises(ConfigError, match=r"alerts\.http_host=.* but alerts\.api_token is not set"):
            load_settings()
        monkeypatch.setenv("RIVERGUARD_ALERTS__API_TOKEN", SECRET)
    assert load_settings().alerts.http_host == host


def test_the_metrics_endpoint_off_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERGUARD_OBSERVABILITY__METRICS_HOST", "0.0.0.0")
    assert load_settings().observability.metrics_port is None  # not served: nothing to protect
    monkeypatch.setenv("RIVERGUARD_OBSERVABILITY__METRICS_PORT", "9464")
    with pytest.raises(ConfigError, match=r"observability\.metrics_token is not set"):
        load_settings()
    monkeypatch.setenv("RIVERGUARD_OBSERVABILITY__METRICS_TOKEN", SECRET)
    assert load_settings().observability.metrics_port == 9464


@pytest.mark.parametrize(("service", "variables"), [
    ("alert", {"RIVERGUARD_ALERTS__HTTP_HOST": "0.0.0.0"}),
    ("detect", {"RIVERGUARD_OBSERVABILITY__METRICS_HOST": "0.0.0.0", "RIVERGUARD_OBSERVABILITY__METRICS_PORT": "0"}),
])
def test_a_service_refuses_to_start_serving_off_loopback_without_a_token(service: str,
                                                                         variables: dict[str, str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)} | variables
    result = subprocess.run([str(Path(sys.executable).parent / "riverguard"), "run", service], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr  # bad settings: nothing was started
    assert "is reachable from other machines" in result.stderr
