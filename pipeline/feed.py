"""Simulated stations as the bridge sees them: payloads on MQTT topics, through the real router.

Each simulated reading is encoded the way its station sends it (``payload_format`` in the
registry: JSON or an HJ 212-2017 frame, values in the station's units) and routed by
:class:`ingest.Router` exactly as the MQTT bridge routes a received message — so the demo
exercises the codecs, unit conversion and CRC checks too, minus only the MQTT hop.

>>> from datetime import datetime, timedelta, UTC
>>> from ingest import Router, Simulator
>>> from riverguard.stations import load_registry
>>> registry = load_registry()
>>> sim = Simulator(registry, start=datetime(2024, 7, 1, tzinfo=UTC), faults=False)
>>> feed = StationFeed(registry, Router[int](registry, readings_topic="r", dlq_topic="dlq"))
>>> records = feed.route(sim.readings(until=datetime(2024, 7, 1, 0, 1, tzinfo=UTC)))
>>> len(records), {r.topic for r in records}, feed.formats["hj212"] > 0
(20, {'r'}, True)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ingest.codecs import DEFAULT_TOPIC_PATTERN, TopicPattern
from ingest.publisher import payload_for
from ingest.routing import Message, Router
from riverguard.models import Reading
from riverguard.stage import Outgoing
from riverguard.stations import StationRegistry


class StationFeed:
    """Turns readings into the records the bridge would produce; counts what it routed."""

    def __init__(self, registry: StationRegistry, router: Router[int], topic_pattern: str = DEFAULT_TOPIC_PATTERN):
        self.registry = registry
        self.router = router
        self._topics = TopicPattern(topic_pattern)
        self.messages = 0
        self.dead_letters = 0
        self.formats: Counter[str] = Counter()

    def route(self, readings: Iterable[Reading]) -> list[Outgoing]:
        """The records for ``readings``, each received at its own (simulated) time."""
        out: list[Outgoing] = []
        for reading in readings:
            self.messages += 1
            station = self.registry.by_id[reading.station_id]
            self.formats[station.payload_format] += 1
            topic = self._topics.format(reading.river, reading.station_id)
            message = Message(topic, payload_for(reading, self.registry), reading.time, self.messages)
            for routed in self.router.route(message):
                out.extend(routed.records)
                self.dead_letters += len(routed.reasons)
        return out
