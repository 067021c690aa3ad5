"""Each service's Kafka principal may do what its stage needs, and the broker refuses the rest
(deploy/kafka/acls.txt): SASL/SCRAM over TLS, StandardAuthorizer, nothing allowed by default.

The topics are this test's own (the default names with a suffix, covered by the prefixed ACLs),
created by the admin, as in a deployment where the services do not create topics themselves.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from riverguard.bus.base import TopicPartition, TopicSpec
from riverguard.bus.kafka import KafkaBus, connection_options
from riverguard.bus.topics import topic_specs
from riverguard.errors import BusError
from riverguard.settings import Settings, TopicSettings

pytestmark = [pytest.mark.integration]

#: (identity, topic field, consumer group prefix or None for a group-less read)
READS: dict[str, list[tuple[str, str | None]]] = {
    "detect": [("readings", "riverguard-detect"), ("detector_state", None)],
    "alert": [("detections", "riverguard-alerts"), ("incidents", None)],
    "sink": [("readings", "riverguard-sink"), ("detections", "riverguard-sink"), ("incidents", "riverguard-sink"),
             ("notifications", "riverguard-sink")],
}
WRITES: dict[str, list[str]] = {
    "ingest": ["readings", "dlq"],
    "detect": ["detections", "detector_state", "dlq"],
    "alert": ["incidents", "notifications", "dlq"],
    "sink": ["dlq"],
}
REFUSED_WRITES: dict[str, list[str]] = {
    "ingest": ["detections", "incidents", "notifications", "detector_state"],
    "detect": ["readings", "incidents", "notifications"],
    "alert": ["readings", "detections", "detector_state"],
    "sink": ["readings", "detections", "incidents", "notifications", "detector_state"],
}
#: A topic the identity may not read (read by assigning its partition: a subscription would
#: only log the refusal and stay empty), and a group it may not use on a topic it may read.
REFUSED_READS: dict[str, list[tuple[str, str | None]]] = {
    "ingest": [("readings", None), ("dlq", None)],
    "detect": [("notifications", None), ("readings", "riverguard-sink")],
    "alert": [("readings", None), ("detections", "riverguard-detect")],
    "sink": [("detector_state", None), ("dlq", None), ("readings", "riverguard-alerts")],
}


@pytest.fixture
async def topics(identities: dict[str, Settings], unique: str) -> AsyncIterator[TopicSettings]:
    admin = identities["admin"]
    names = TopicSettings(**{name: f"{value}-{unique}" for name, value in TopicSettings().model_dump().items()})
    scoped = admin.model_copy(update={"topics": names,
                                      "kafka": admin.kafka.model_copy(update={"partitions": 1})})
    bus = KafkaBus(admin.kafka)
    await bus.create_topics(topic_specs(scoped))
    async with bus.producer() as producer:  # one record in each, for the reads
        for topic in names.model_dump().values():
            await producer.send_and_wait(topic, b"{}", key=b"k")
    yield names
    await bus.delete_topics(list(names.model_dump().values()))


async def write(settings: Settings, topic: str) -> None:
    async with KafkaBus(settings.kafka).producer() as producer:
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"k"), 30)


async def read(settings: Settings, topic: str, group: str | None, unique: str) -> int:
    """Records read from ``topic`` (as a member of ``group``-<unique>, or by assigning its partition)."""
    bus = KafkaBus(settings.kafka)
    if group is None:
        return len(await asyncio.wait_for(bus.read_partition(TopicPartition(topic, 0)), 30))
    async with bus.consumer([topic], group_id=f"{group}-{unique}") as consumer:
        for _ in range(50):
            if records := await consumer.getmany(timeout_ms=200):
                await consumer.commit({TopicPartition(topic, 0): records[-1].offset + 1})
                return len(records)
    return 0


async def visible(settings: Settings, topic: str) -> bool:
    """Whether the broker answers ``settings``' principal with the topic's metadata (DESCRIBE);
    False when it answers TOPIC_AUTHORIZATION_FAILED."""
    admin = AIOKafkaAdminClient(**connection_options(settings.kafka))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert described["error_code"] in (0, 29), described
    return bool(described["error_code"] == 0)


@pytest.mark.parametrize("who", ["ingest", "detect", "alert", "sink"])
async def test_each_service_reads_and_writes_what_its_stage_needs(
    identities: dict[str, Settings], topics: TopicSettings, unique: str, who: str
) -> None:
    me = identities[who]
    assert me.kafka.sasl_username == f"riverguard-{who}{'s' if who == 'alert' else ''}"
    for field in WRITES[who]:
        await write(me, getattr(topics, field))
    for field, group in READS.get(who, []):
        assert await read(me, getattr(topics, field), group, unique) >= 1, (who, field, group)


@pytest.mark.parametrize("who", ["ingest", "detect", "alert", "sink"])
async def test_the_broker_refuses_a_service_writing_or_reading_where_it_must_not(
    identities: dict[str, Settings], topics: TopicSettings, unique: str, who: str
) -> None:
    me = identities[who]
    for field in REFUSED_WRITES[who]:
        with pytest.raises(BusError, match="TopicAuthorizationFailed"):
            await write(me, getattr(topics, field))
    for field, group in REFUSED_READS[who]:
        topic = getattr(topics, field)
        if group is None and await visible(me, topic) is False:
            continue  # the broker does not even tell it the topic's partitions
        with pytest.raises(BusError, match="AuthorizationFailed"):
            await read(me, topic, group, unique)


async def test_only_the_admin_creates_topics(identities: dict[str, Settings], unique: str) -> None:
    spec = TopicSpec(f"telemetry.readings-{unique}-new", 1)
    for who in ("ingest", "detect", "alert", "sink"):
        with pytest.raises(BusError, match="error 29"):  # TOPIC_AUTHORIZATION_FAILED
            await KafkaBus(identities[who].kafka).create_topics([spec])
    admin = KafkaBus(identities["admin"].kafka)
    await admin.create_topics([spec])
    name = spec.name
    assert await admin.partitions(name) >= 1
    await admin.delete_topics([name])


async def test_a_wrong_password_or_no_tls_is_refused(identities: dict[str, Settings]) -> None:
    ingest = identities["ingest"].kafka
    with pytest.raises(BusError, match="cannot connect"):
        await write(identities["ingest"].model_copy(update={
            "kafka": ingest.model_copy(update={"sasl_password": SecretStr("not-the-password")})}), "telemetry.readings")
    # the same login without TLS: the listener speaks TLS only, the client gets no Kafka answer
    plaintext = {**connection_options(ingest), "security_protocol": "SASL_PLAINTEXT"}
    plaintext.pop("ssl_context")
    producer = AIOKafkaProducer(request_timeout_ms=5000, **plaintext)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()
    # TLS to a server whose certificate the system's CAs do not vouch for: the client refuses it
    untrusted = {**connection_options(ingest), "ssl_context": ssl.create_default_context()}
    producer = AIOKafkaProducer(request_timeout_ms=5000, **untrusted)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()
