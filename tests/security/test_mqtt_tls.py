"""MQTT only over TLS: stations log in with a password or with a client certificate whose CN is
their station id (Mosquitto ``use_identity_as_username``), and the per-station ACL holds for
both. A client without TLS, a station without a certificate, or with one the dev CA did not sign,
is refused; a client that cannot verify the broker refuses it.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest.codecs import encode_json
from ingest.publisher import Pace, publish_readings
from pipeline.harness import dev_password, mqtt5_client
from riverguard.models import Measurement, Reading, SourceFormat
from riverguard.settings import MqttSettings, Settings
from riverguard.stations import load_registry
from tests.support.identities import station_certificate
from tests.support.services import require_service

pytestmark = [pytest.mark.integration]

REGISTRY = load_registry()
STATION = "tuo-sanhuangmiao"
OTHER = "tuo-tuojiangdaqiao"


@pytest.fixture
def mqtt(settings: Settings, unique: str) -> MqttSettings:
    require_service("Mosquitto", settings.mqtt.host, settings.mqtt.port)
    assert settings.mqtt.tls, "the stack's MQTT settings must use TLS (eval \"$(deploy/stack.sh env)\")"
    return settings.mqtt.model_copy(update={"topic_pattern": "stations/{river}/{station_id}/tls-" + unique,
                                            "topic_filter": f"stations/+/+/tls-{unique}"})


class Bridge:
    """What the ingest bridge would receive: a subscriber as riverguard-bridge (password, TLS)."""

    def __init__(self, mqtt: MqttSettings) -> None:
        self.received: list[str] = []
        self.got = threading.Condition()
        self.client = mqtt5_client(mqtt, "")
        self.client.username_pw_set("riverguard-bridge", dev_password("riverguard-bridge"))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(mqtt.host, mqtt.port)
        self.client.subscribe(mqtt.topic_filter, qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "the bridge's subscription was not acknowledged"

    def _on_message(self, _c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        with self.got:
            self.received.append(message.topic)
            self.got.notify_all()

    def wait_for(self, topic: str) -> bool:
        with self.got:
            return self.got.wait_for(lambda: topic in self.received, timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def bridge(mqtt: MqttSettings) -> Iterator[Bridge]:
    subscriber = Bridge(mqtt)
    yield subscriber
    subscriber.close()


def topic(mqtt: MqttSettings, station_id: str) -> str:
    return mqtt.topic_pattern.format(river=REGISTRY.by_id[station_id].river, station_id=station_id)


def reading(station_id: str) -> Reading:
    return Reading(station_id=station_id, river=REGISTRY.by_id[station_id].river,
                   time=datetime.now(UTC).replace(microsecond=0), values={"pH": Measurement(value=7.4)},
                   source_format=SourceFormat.JSON)


def login(mqtt: MqttSettings, *, host_port: tuple[str, int] | None = None, tls: ssl.SSLContext | None = None,
          user: str | None = None) -> str:
    """Connect and say what happened: "accepted", or why not."""
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    if tls is not None:
        client.tls_set_context(tls)
    if user is not None:
        client.username_pw_set(user, dev_password(user))
    answered = threading.Event()
    outcome: list[str] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        outcome.append("accepted" if not reason_code.is_failure else f"refused: {reason_code}")
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = lambda *_: answered.set()
    try:
        client.connect(*(host_port or (mqtt.host, mqtt.port)))
    except (OSError, ssl.SSLError) as exc:
        return f"no connection: {exc}"
    client.loop_start()
    try:
        answered.wait(10)
        return outcome[0] if outcome else "no answer"
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_password_login_works_over_tls_only(mqtt: MqttSettings) -> None:
    context = mqtt.ssl_context()
    assert context is not None
    assert login(mqtt, tls=context, user=STATION) == "accepted"
    assert login(mqtt, tls=None, user=STATION) != "accepted"  # plain MQTT on the TLS port
    # a client that does not trust the dev CA (the system's CAs only) does not talk to the broker
    refused = login(mqtt, tls=ssl.create_default_context(), user=STATION)
    assert "CERTIFICATE_VERIFY_FAILED" in refused, refused


def test_a_station_with_its_certificate_publishes_without_a_password(mqtt: MqttSettings, bridge: Bridge) -> None:
    cert = station_certificate(STATION).model_copy(update={"topic_pattern": mqtt.topic_pattern})
    assert cert.port != mqtt.port
    assert cert.certfile is not None
    stats = publish_readings([reading(STATION)], REGISTRY, cert, username=STATION, password=None,
                             client_id=f"cert-{STATION}", pace=Pace())
    assert stats.published == 1
    assert bridge.wait_for(topic(mqtt, STATION))


def test_a_station_certificate_does_not_let_it_publish_as_another_station(mqtt: MqttSettings,
                                                                          bridge: Bridge) -> None:
    cert = station_certificate(STATION)
    client = mqtt5_client(cert, f"cert-{STATION}-spoof")
    acks: dict[int, Any] = {}
    client.on_publish = lambda _c, _u, mid, reason_code, _p: acks.__setitem__(mid, reason_code)
    client.connect(cert.host, cert.port)
    client.loop_start()
    try:
        spoofed = client.publish(topic(mqtt, OTHER), encode_json(reading(OTHER), REGISTRY.by_id[OTHER]), qos=1)
        own = client.publish(topic(mqtt, STATION), encode_json(reading(STATION), REGISTRY.by_id[STATION]), qos=1)
        spoofed.wait_for_publish(10)
        own.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    assert bridge.wait_for(topic(mqtt, STATION))
    assert bridge.received == [topic(mqtt, STATION)], "the broker passed on a message the station may not send"
    assert acks[spoofed.mid].value == 135  # MQTT 5 "Not authorized": the CN is the username the ACL checks


def test_a_station_without_a_certificate_or_with_a_foreign_one_is_refused(
    mqtt: MqttSettings, bridge: Bridge, tmp_path: Path
) -> None:
    cert = station_certificate(STATION)
    address = (cert.host, cert.port)
    no_certificate = MqttSettings(tls=True, ca_file=cert.ca_file).ssl_context()
    assert login(mqtt, host_port=address, tls=no_certificate) != "accepted"
    assert login(mqtt, host_port=address, tls=no_certificate, user=STATION) != "accepted"  # a password does not help

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for args in (  # a CA of its own, and a certificate with the right CN signed by it
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
         "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=not the riverguard CA"],
        ["req", "-x509", "-CA", "ca.pem", "-CAkey", "ca.key", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-keyout", "station.key", "-out", "station.pem", "-subj", f"/CN={STATION}",
         "-addext", "extendedKeyUsage=clientAuth"],
    ):
        subprocess.run(["openssl", *args], cwd=foreign, check=True, capture_output=True)
    forged = cert.model_copy(update={"certfile": foreign / "station.pem", "keyfile": foreign / "station.key"})
    assert login(mqtt, host_port=address, tls=forged.ssl_context()) != "accepted"
    # the genuine certificate on the same listener is accepted: the refusals above are about the certificate
    assert login(mqtt, host_port=address, tls=cert.ssl_context()) == "accepted"
    assert bridge.received == []
