from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from riverguard.errors import ConfigError
from riverguard.settings import ENV_PREFIX, load_settings


@pytest.fixture(autouse=True)
def _no_riverguard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # `make test` exports the stack's addresses; these tests define their own environment.
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def test_yaml_file_and_environment_combine_with_environment_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "riverguard.yaml"
    config.write_text("kafka:\n  bootstrap_servers: file:9092\n  partitions: 12\nmqtt:\n  port: 1884\n")
    monkeypatch.setenv("RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS", "env:9092")
    settings = load_settings(config)
    assert settings.kafka.bootstrap_servers == "env:9092"
    assert settings.kafka.partitions == 12
    assert settings.mqtt.port == 1884


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("kafka:\n  bootstrap_server: x:1\n")
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap_server='x:1': Extra inputs are not permitted"):
        load_settings(config)


def test_bad_value_is_named_with_the_value(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("mqtt:\n  port: 70000\n")
    with pytest.raises(ConfigError, match=r"mqtt\.port=70000"):
        load_settings(config)


def test_misspelt_environment_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERGUARD_KAFKA__BOOTSTRAP", "x:1")
    with pytest.raises(ConfigError, match="RIVERGUARD_KAFKA__BOOTSTRAP"):
        load_settings()


def test_deploy_script_variables_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERGUARD_KAFKA_VERSION", "4.1.1")
    monkeypatch.setenv("RIVERGUARD_STACK_DIR", "/tmp/x")
    assert load_settings().kafka.partitions >= 1


def test_secrets_are_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVERGUARD_MQTT__PASSWORD", "s3cret-value")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert "s3cret-value" not in result.output
    assert "**********" in result.output
    assert load_settings().mqtt.password is not None
    assert "s3cret-value" not in repr(load_settings())


def test_config_check_exits_non_zero_naming_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("influx:\n  url: [1, 2]\n")
    result = CliRunner().invoke(app, ["config", "check", "--config", str(config)])
    assert result.exit_code == 2
    assert "influx.url" in result.output


def test_version_flag() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("riverguard ")
