"""Publish readings over MQTT as the stations would (the I/O shell of ``riverguard simulate``).

Each reading goes out in its station's ``payload_format`` (JSON or an HJ 212 frame, values in
the station's units) on the station's topic (``settings.mqtt.topic_pattern``), QoS 1. Pacing is
by message rate (load generator) or by simulated-time speed-up (demo); both stop after
``duration_s`` of wall time or ``count`` messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import paho.mqtt.client as paho

from ingest.codecs import TopicPattern, encode_hj212, encode_json
from ingest.mqtt import connect_options, failure, make_client
from riverguard.errors import BusError
from riverguard.models import Reading
from riverguard.settings import MqttSettings
from riverguard.stations import StationRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pace:
    rate: float | None = None  # messages per second
    speedup: float | None = None  # simulated seconds per wall second
    duration_s: float | None = None
    count: int | None = None

    def finished(self, elapsed_s: float, published: int) -> bool:
        return (self.duration_s is not None and elapsed_s >= self.duration_s) or (
            self.count is not None and published >= self.count
        )

    def due(self, published: int, simulated: timedelta) -> float | None:
        """Wall seconds after the start at which the next message is due (None: now)."""
        if self.rate:
            return published / self.rate
        if self.speedup:
            return simulated.total_seconds() / self.speedup
        return None


@dataclass(frozen=True, slots=True)
class PublishStats:
    published: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.published / self.seconds if self.seconds > 0 else 0.0


def payload_for(reading: Reading, registry: StationRegistry) -> bytes:
    station = registry.by_id[reading.station_id]
    return encode_hj212(reading, station) if station.payload_format == "hj212" else encode_json(reading, station)


def publish_readings(
    readings: Iterable[Reading],
    registry: StationRegistry,
    mqtt: MqttSettings,
    *,
    username: str,
    password: str | None,
    client_id: str,
    pace: Pace,
) -> PublishStats:
    client = make_client(mqtt, client_id=client_id, username=username, password=password, persistent=False)
    answered = threading.Event()
    refused: list[object] = []

    def on_connect(_client: object, _userdata: object, _flags: object, reason_code: object, _props: object) -> None:
        if failure(reason_code):
            refused.append(reason_code)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(**connect_options(mqtt, persistent=False))
    except OSError as exc:
        raise BusError(f"cannot reach the MQTT broker at {mqtt.host}:{mqtt.port}: {exc}") from exc
    client.loop_start()
    if not answered.wait(15) or refused:
        client.loop_stop()
        why = refused[0] if refused else "no answer in 15 s"
        raise BusError(f"MQTT broker at {mqtt.host}:{mqtt.port} did not accept {username!r}: {why}")
    topics = TopicPattern(mqtt.topic_pattern)
    infos: list[paho.MQTTMessageInfo] = []
    started = time.monotonic()
    first_time = None
    published = 0
    try:
        for reading in readings:
            now = time.monotonic() - started
            if pace.finished(now, published):
                break
            first_time = first_time or reading.time
            due = pace.due(published, reading.time - first_time)
            if due is not None and due > now:
                time.sleep(due - now)
            topic = topics.format(reading.river, reading.station_id)
            info = client.publish(topic, payload_for(reading, registry), qos=mqtt.qos)
            if info.rc != 0:
                raise BusError(f"cannot publish to the MQTT broker at {mqtt.host}:{mqtt.port}: rc={info.rc}")
            infos.append(info)
            published += 1
            if len(infos) >= 1000:
                _wait(infos, mqtt)
        _wait(infos, mqtt)
    finally:
        client.disconnect()
        client.loop_stop()
    return PublishStats(published, time.monotonic() - started)


def _wait(infos: list[paho.MQTTMessageInfo], mqtt: MqttSettings) -> None:
    for info in infos:
        try:
            info.wait_for_publish(timeout=30)
        except RuntimeError as exc:
            raise BusError(f"MQTT broker at {mqtt.host}:{mqtt.port} did not take a message: {exc}") from exc
        if not info.is_published():
            raise BusError(f"MQTT broker at {mqtt.host}:{mqtt.port} did not acknowledge a message within 30 s")
    infos.clear()
