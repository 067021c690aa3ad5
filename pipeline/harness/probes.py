"""Looking at Kafka and InfluxDB from outside the pipeline: topic sizes, consumer-group lag, counts."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from riverguard.bus.base import Record
from riverguard.bus.kafka import KafkaBus, connection_options
from riverguard.settings import InfluxSettings, Settings


async def read_topic(bus: KafkaBus, topic: str) -> list[Record]:
    """Every record of ``topic``, partition by partition."""
    return [record for records in (await bus.read_topics([topic])).values() for record in records]


class KafkaProbe:
    """One metadata consumer and one admin client for polling sizes and consumer-group lag
    (cheap enough to poll several times a second)."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = AIOKafkaConsumer(**connection_options(settings.kafka))
        self._admin = AIOKafkaAdminClient(**connection_options(settings.kafka))
        self._known: dict[str, list[int]] = {}

    async def __aenter__(self) -> KafkaProbe:
        await self._consumer.start()
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def _partitions(self, topics: Sequence[str]) -> list[KafkaTopicPartition]:
        missing = [t for t in topics if t not in self._known]
        if missing:
            for topic in await self._admin.describe_topics(missing):
                if topic["error_code"] == 0 and topic["partitions"]:
                    self._known[topic["topic"]] = sorted(p["partition"] for p in topic["partitions"])
        return [KafkaTopicPartition(t, p) for t in topics for p in self._known.get(t, ())]

    async def size(self, *topics: str) -> int:
        """Records ever written to ``topics`` (sum of the end offsets)."""
        tps = await self._partitions(topics)
        return sum((await self._consumer.end_offsets(tps)).values()) if tps else 0

    async def lag(self, group: str, *topics: str) -> int:
        """Records of ``topics`` the group has not committed yet (its whole backlog)."""
        tps = await self._partitions(topics)
        ends = await self._consumer.end_offsets(tps) if tps else {}
        committed = await self._admin.list_consumer_group_offsets(group)
        return sum(end - max(committed[tp].offset if tp in committed else 0, 0) for tp, end in ends.items())

    async def stable(self, group: str) -> bool:
        """Whether ``group`` has members and they hold their partitions (the group is Stable)."""
        [response] = await self._admin.describe_consumer_groups([group])
        # each described group is a raw DescribeGroups tuple: its 3rd field is the state, the 6th the members
        return any(described[2] == "Stable" and described[5] for described in response.groups)


def influx_statement(influx: InfluxSettings, statement: str) -> None:
    """Run an InfluxQL statement as ``influx.token``'s user (1.8 takes "<user>:<password>" as a token)."""
    url = influx.url
    body = urllib.parse.urlencode({"q": statement}).encode()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"InfluxDB url {url!r} is not http(s)")
    request = urllib.request.Request(f"{url}/query", data=body,  # noqa: S310 - checked above
                                     headers={"Authorization": f"Token {influx.token.get_secret_value()}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - checked above
        answer = json.loads(response.read())
    if "error" in json.dumps(answer):
        raise RuntimeError(f"InfluxDB {url}: {statement}: {answer}")


def flux_counts(settings: Settings, flux: str) -> dict[str, int]:
    """Run a Flux query whose tables end in ``count()``, keyed by the ``station`` column."""
    from influxdb_client.client.influxdb_client import InfluxDBClient

    with InfluxDBClient(url=settings.influx.url, token=settings.influx.token.get_secret_value(),
                        org=settings.influx.org, timeout=30_000) as client:
        tables = client.query_api().query(flux)
    return {str(r.values["station"]): int(r.get_value()) for table in tables for r in table.records}


def reading_counts(settings: Settings, parameter: str, start: str, stop: str) -> dict[str, int]:
    """Points of ``parameter`` per station in the bucket (one per stored reading)."""
    return flux_counts(settings, f"""
from(bucket: "{settings.influx.bucket}")
  |> range(start: {start}, stop: {stop})
  |> filter(fn: (r) => r._measurement == "reading" and r.parameter == "{parameter}" and r._field == "value")
  |> group(columns: ["station"])
  |> count()
""")
