"""paho-mqtt 2.x clients configured from ``settings.mqtt`` (the I/O edge, shared by the bridge,
the simulator's publisher and the benchmark)."""

from __future__ import annotations

from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from riverguard.settings import MqttSettings

#: MQTT 5 session expiry: keep the bridge's queue for a week while it is away (0 would end the
#: session at disconnect, losing what arrives meanwhile).
SESSION_EXPIRY_S: Final = 7 * 24 * 3600
#: MQTT 5 receive maximum: how many unacknowledged QoS 1 messages the broker may have in flight
#: to us; acks wait for Kafka, so a wide window keeps the pipeline full (and lets the bridge read
#: many packets per wake-up). Mosquitto's ``max_inflight_messages`` matches it (deploy/mosquitto).
RECEIVE_MAXIMUM: Final = 10_000


def make_client(
    settings: MqttSettings,
    *,
    client_id: str,
    username: str | None,
    password: str | None,
    persistent: bool,
    manual_ack: bool = False,
) -> paho.Client:
    """A client not yet connected. ``persistent``: clean_session/clean_start False, so the broker
    keeps subscriptions and QoS 1 messages for ``client_id`` across disconnects."""
    v5 = settings.protocol == "5"
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    if username is not None:
        client.username_pw_set(username, password)
    if (context := settings.ssl_context()) is not None:
        client.tls_set_context(context)  # verifies the broker; presents mqtt.certfile if set
    client.max_inflight_messages_set(RECEIVE_MAXIMUM)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(1, 30)
    return client


def connect_options(settings: MqttSettings, *, persistent: bool) -> dict[str, Any]:
    """Keyword arguments for ``client.connect`` / ``connect_async``."""
    options: dict[str, Any] = {"host": settings.host, "port": settings.port, "keepalive": settings.keepalive_s}
    if settings.protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        if persistent:
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        options["clean_start"] = not persistent
        options["properties"] = properties
    return options


def failure(reason_code: Any) -> bool:
    """paho 2 passes ``ReasonCode`` objects for both protocol versions."""
    return bool(getattr(reason_code, "is_failure", False))
