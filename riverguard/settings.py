"""Settings: one frozen object from ``RIVERGUARD_*`` env vars and an optional YAML file.

Precedence (highest first): explicit keyword arguments, environment (``RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS``,
nested with ``__``), the YAML file (``--config FILE`` or ``RIVERGUARD_CONFIG``), defaults.
Unknown keys are errors, secrets are ``SecretStr`` and print as ``**********``.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from riverguard.errors import ConfigError, describe_validation_error
from riverguard.yamlfile import read_yaml_mapping

ENV_PREFIX = "RIVERGUARD_"
#: Variables with the prefix that belong to the scripts around the settings, not to them.
NON_SETTINGS_ENV = frozenset(
    {
        "RIVERGUARD_CONFIG",
        "RIVERGUARD_CACHE",
        "RIVERGUARD_STACK_DIR",
        "RIVERGUARD_MQTT_USERS_FILE",
        "RIVERGUARD_UPDATE_GOLDEN",
    }
)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "riverguard"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    partitions: int = Field(default=6, ge=1, le=1000)
    replication_factor: int = Field(default=1, ge=1, le=10)
    linger_ms: int = Field(default=5, ge=0, le=1000)


class TopicSettings(_Section):
    readings: str = "telemetry.readings"
    dlq: str = "telemetry.dlq"
    detections: str = "detections"
    incidents: str = "incidents"
    notifications: str = "notifications"
    detector_state: str = "detectors.state-changelog"
    #: Runtime silences set in the console (compacted: the latest record per silence id).
    silences: str = "silences"
    #: What resolved incidents turned out to be, per station (key = station id, partitioned like
    #: the readings), for the detect stage to learn from.
    verdicts: str = "verdicts"
    #: Commands for stations' data loggers (riverguard.commands.StationCommand) and their results.
    station_commands: str = "station.commands"
    command_results: str = "station.command-results"


class MqttSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = "riverguard-bridge"
    password: SecretStr | None = None
    #: 3.1.1 by default: the bridge uses nothing MQTT 5 adds that 3.1.1 lacks in effect (the
    #: in-flight window is the broker's ``max_inflight_messages``, a 3.1.1 persistent session does
    #: not expire), and paho parses an MQTT 5 PUBLISH's properties per message — about 15 % of the
    #: bridge's CPU per message (bench/ingest.py). Stations may use either version.
    protocol: Literal["5", "3.1.1"] = "3.1.1"
    tls: bool = False
    ca_file: Path | None = None
    client_id: str = "riverguard-ingest"
    #: Subscription filter and the pattern that says where river and station id sit in a topic.
    topic_filter: str = "stations/+/+/telemetry"
    topic_pattern: str = "stations/{river}/{station_id}/telemetry"
    qos: Literal[0, 1, 2] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    #: Processes that decode and produce for the bridge (0: the bridge does it itself). More than
    #: one core's worth of messages needs them; a station always goes to the same worker.
    routing_workers: int = Field(default=0, ge=0, le=32)


class Hj212Settings(_Section):
    """``riverguard run hj212-gateway``: data loggers (数采仪) connecting over TCP (ingest.gateway)."""

    host: str = "0.0.0.0"  # noqa: S104 - data loggers connect from outside; restrict with a firewall
    port: int = Field(default=9212, ge=0, le=65535)
    #: YAML mapping station id → HJ 212 PW (access password); a station without one is refused.
    passwords_file: Path | None = None
    #: The length field's 4 digits allow 9999 characters of data: 10011 bytes with ## + length + CRC + CRLF.
    max_frame_bytes: int = Field(default=10_011, ge=64, le=10_011)
    #: A connection without a byte for this long is closed (loggers send at least hourly data).
    idle_timeout_s: float = Field(default=1800.0, gt=0)
    #: A frame must arrive whole within this time of its first byte (slow-sender protection).
    frame_timeout_s: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=10_000, ge=1)
    #: Connections from one address (loggers behind a carrier's NAT share one).
    max_connections_per_peer: int = Field(default=500, ge=1)
    #: A peer whose frames are rejected this many times in a row is disconnected.
    max_bad_frames: int = Field(default=20, ge=1)
    #: Frames of a connection waiting for Kafka before the gateway stops reading from it.
    max_unsettled_frames: int = Field(default=200, ge=1)
    #: A station whose clock is off by more than this gets its clock set (CN=1012), at most every
    #: ``clock_set_interval_s``.
    clock_tolerance_s: float = Field(default=300.0, gt=0)
    clock_set_interval_s: float = Field(default=3600.0, ge=0)
    #: A command waits this long for its station to connect, then expires.
    command_ttl_s: float = Field(default=3600.0, gt=0)
    #: A sent command is unanswered when its execution result (9012) is not back after this long.
    command_answer_timeout_s: float = Field(default=120.0, gt=0)
    #: Send 超标留样 (CN=3015) to a station when a pollution incident opens there.
    retain_sample_on_incident: bool = True


class InfluxSettings(_Section):
    url: str = "http://127.0.0.1:8086"
    token: SecretStr = SecretStr("riverguard:riverguard")
    org: str = "-"
    bucket: str = "riverguard/autogen"
    #: The sink writes a batch when it holds this many points or the oldest is this old.
    batch_size: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_ms: int = Field(default=500, ge=0, le=60_000)
    #: Upper bound of the exponential backoff between write attempts while InfluxDB is down.
    max_retry_delay_s: float = Field(default=30.0, gt=0, le=3600)
    timeout_ms: int = Field(default=10_000, ge=100, le=600_000)


class AlertSettings(_Section):
    apprise_config: Path | None = None
    routing_file: Path | None = None
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8470, ge=0, le=65535)
    api_token: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8470"
    language: Literal["zh", "en"] = "zh"


class ObservabilitySettings(_Section):
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    #: Address the /metrics and /health endpoint binds to (0.0.0.0 for a Prometheus in Docker).
    metrics_host: str = "127.0.0.1"


class ConsoleSettings(_Section):
    """The duty-officer console, served by the alert service on its HTTP server (``alerts.http_host``,
    under /console): no address of its own, so the incident API's bind rules cover it."""

    #: The users file (``riverguard console-user add``); None: no console is served.
    users_file: Path | None = None
    audit_file: Path = Path("console-audit.jsonl")
    session_minutes: int = Field(default=480, ge=5, le=10_080)
    #: Mark cookies Secure: set it when the console is reached over HTTPS (a reverse proxy).
    secure_cookies: bool = False
    #: Failed sign-ins allowed per user name and per client address within the window.
    login_failures: int = Field(default=5, ge=1, le=100)
    login_window_min: int = Field(default=15, ge=1, le=1440)
    #: A station with no reading for this long stands out on the station board.
    silent_station_min: int = Field(default=60, ge=5, le=10_080)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(minutes=self.session_minutes)

    @property
    def login_window(self) -> timedelta:
        return timedelta(minutes=self.login_window_min)


_yaml_file: ContextVar[Path | None] = ContextVar("riverguard_yaml_file", default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    mqtt: MqttSettings = MqttSettings()
    hj212: Hj212Settings = Hj212Settings()
    influx: InfluxSettings = InfluxSettings()
    alerts: AlertSettings = AlertSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    console: ConsoleSettings = ConsoleSettings()
    stations_file: Path | None = None
    network_dir: Path | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _yaml_file.get()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            values = read_yaml_mapping(path, "settings file", empty_ok=True)
            sources.append(InitSettingsSource(settings_cls, init_kwargs=values))
        return tuple(sources)

    def redacted(self) -> dict[str, Any]:
        """A JSON-able view for ``config show`` and logs: secrets masked."""
        return self.model_dump(mode="json")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; every problem becomes one ``ConfigError`` naming the key and value."""
    path = config_file or (Path(p) if (p := os.environ.get("RIVERGUARD_CONFIG")) else None)
    _reject_unknown_env()
    token = _yaml_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where = f" (from {path} and RIVERGUARD_* environment)" if path else " (from RIVERGUARD_* environment)"
        raise ConfigError(f"invalid settings{where}: {describe_validation_error(exc)}") from exc
    finally:
        _yaml_file.reset(token)


def _reject_unknown_env() -> None:
    """Fail on misspelt settings variables instead of silently using a default.

    Settings variables are a top-level field (``RIVERGUARD_STATIONS_FILE``) or a nested one with
    ``__`` (``RIVERGUARD_KAFKA__PARTITIONS``). Variables of the deploy scripts use single
    underscores after a section word (``RIVERGUARD_KAFKA_VERSION``, ``RIVERGUARD_STACK_DIR``).
    """
    fields = Settings.model_fields
    for name in os.environ:
        if not name.startswith(ENV_PREFIX) or name in NON_SETTINGS_ENV:
            continue
        key = name.removeprefix(ENV_PREFIX).lower()
        head, nested, rest = key.partition("__")
        if not nested:
            if key in fields or key.split("_")[0] in _SCRIPT_VARIABLE_WORDS:
                continue
            raise ConfigError(f"unknown setting {name} (no setting {key!r}; known: {', '.join(sorted(fields))})")
        field = fields.get(head)
        if field is None:
            raise ConfigError(f"unknown setting {name} (no setting {head!r}; known: {', '.join(sorted(fields))})")
        annotation = field.annotation
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and rest.split("__")[0] not in annotation.model_fields
        ):
            known = ", ".join(sorted(annotation.model_fields))
            raise ConfigError(f"unknown setting {name} ({head} has no {rest!r}; known: {known})")


_SCRIPT_VARIABLE_WORDS = frozenset({"kafka", "mqtt", "influx", "influxdb", "stack"})
