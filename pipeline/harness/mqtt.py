"""MQTT as the stations and the bridge use it: the bridge's persistent session, and a publisher
that behaves like a station data logger (QoS 1, keeps unacknowledged messages across broker
restarts and sends them again — paho does this)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from riverguard.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def dev_password(user: str) -> str:
    """The dev-only MQTT password of ``user`` (deploy/mosquitto/dev-users.txt)."""
    for line in (REPO / "deploy/mosquitto/dev-users.txt").read_text().splitlines():
        name, _, password = line.partition(":")
        if name == user and not line.startswith("#"):
            return password
    raise LookupError(user)


def _connect(settings: Settings, client: paho.Client, *, clean_start: bool, expiry_s: int) -> None:
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = expiry_s
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    client.connect(settings.mqtt.host, settings.mqtt.port, clean_start=clean_start, properties=properties)
    client.loop_start()
    if not connected.wait(15):
        raise RuntimeError(f"no CONNACK from MQTT {settings.mqtt.host}:{settings.mqtt.port}")


def _bridge_client(settings: Settings) -> paho.Client:
    mqtt = settings.mqtt
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=mqtt.client_id,
                         protocol=paho.MQTTv5)
    client.username_pw_set(mqtt.username, mqtt.password.get_secret_value() if mqtt.password else None)
    return client


def open_bridge_session(settings: Settings) -> None:
    """Create the bridge's persistent session and subscription (what ``run ingest`` resumes)."""
    client = _bridge_client(settings)
    _connect(settings, client, clean_start=False, expiry_s=7 * 24 * 3600)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    client.subscribe(settings.mqtt.topic_filter, qos=1)
    try:
        if not subscribed.wait(15):
            raise RuntimeError("no SUBACK for the bridge's subscription")
    finally:
        client.disconnect()
        client.loop_stop()


def close_bridge_session(settings: Settings) -> None:
    """End the bridge's session on the broker (a clean start with expiry 0 discards it)."""
    client = _bridge_client(settings)
    try:
        _connect(settings, client, clean_start=True, expiry_s=0)
    except (OSError, RuntimeError):
        return
    client.disconnect()
    client.loop_stop()


class StationFeed:
    """Publishes (topic, payload) messages QoS 1 as ``riverguard-sim``, optionally paced.

    Broker restarts are survived the way a data logger survives them: paho reconnects and sends
    every message the broker has not acknowledged again (possibly twice: at least once).
    ``sent_at[i]`` is the wall time message ``i`` was handed to the client.
    """

    def __init__(self, settings: Settings, client_id: str) -> None:
        self.settings = settings
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5)
        self.client.username_pw_set("riverguard-sim", dev_password("riverguard-sim"))
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 2)
        self.sent_at: list[float] = []
        self.published = 0
        self._acked = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish

    def _on_publish(self, *_: object) -> None:
        # once per message, when the broker acknowledged it (paho counts a resend as the same message)
        with self._lock:
            self._acked += 1

    @property
    def acknowledged(self) -> int:
        with self._lock:
            return self._acked

    def __enter__(self) -> StationFeed:
        _connect(self.settings, self.client, clean_start=True, expiry_s=0)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, messages: Iterable[tuple[str, bytes]], *, rate: float | None = None,
                stop: threading.Event | None = None) -> int:
        started = time.monotonic()
        count = 0
        for topic, payload in messages:
            if stop is not None and stop.is_set():
                break
            if rate is not None and (wait := started + count / rate - time.monotonic()) > 0:
                time.sleep(wait)
            self.sent_at.append(time.time())
            # while the broker is away this returns "not connected", but paho keeps the message
            # and sends it after reconnecting
            self.client.publish(topic, payload, qos=1)
            count += 1
        self.published += count
        return count

    def wait_acknowledged(self, limit_s: float = 120.0) -> None:
        """Until the broker acknowledged every message (across reconnects)."""
        deadline = time.monotonic() + limit_s
        while self.acknowledged < self.published:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker acknowledged {self.acknowledged} of {self.published} messages "
                                   f"in {limit_s:g} s")
            time.sleep(0.05)
