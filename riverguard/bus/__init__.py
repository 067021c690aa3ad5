"""The message bus seam (Kafka in production, in-memory for the demo and unit tests)."""

from riverguard.bus.base import (
    Bus,
    Consumer,
    Delivery,
    PartitionsCallback,
    Producer,
    Record,
    TopicPartition,
    TopicSpec,
    next_offsets,
)
from riverguard.bus.memory import MemoryBus
from riverguard.bus.topics import topic_specs

__all__ = [
    "Bus",
    "Consumer",
    "Delivery",
    "MemoryBus",
    "PartitionsCallback",
    "Producer",
    "Record",
    "TopicPartition",
    "TopicSpec",
    "next_offsets",
    "topic_specs",
]
