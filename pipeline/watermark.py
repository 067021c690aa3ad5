"""How far each stage of the embedded demo has got: offsets it has fully handled.

The demo advances simulated time only when the detect and alert stages have handled every
record before it. Committed offsets do not say that — the detect stage commits only together with
its checkpoints, every few seconds — so a :class:`Watermark` observes the stage runtime: each
batch whose outputs the bus acknowledged (:class:`~riverguard.stage.Handled`) advances it.
"""

from __future__ import annotations

from collections.abc import Sequence

from riverguard.bus import Bus, Record, TopicPartition, next_offsets
from riverguard.stage import Handled


class Watermark:
    """Per partition, the next offset a stage has not handled yet."""

    def __init__(self) -> None:
        self.offsets: dict[TopicPartition, int] = {}

    def __call__(self, handled: Handled) -> None:
        """The stage runtime's observer."""
        self.advance(handled.records)

    def advance(self, records: Sequence[Record]) -> None:
        for tp, offset in next_offsets(records).items():
            self.offsets[tp] = max(offset, self.offsets.get(tp, 0))

    async def covers(self, bus: Bus, topic: str) -> bool:
        """True when every record now in ``topic`` has been handled."""
        tps = [TopicPartition(topic, p) for p in range(await bus.partitions(topic))]
        ends = await bus.end_offsets(tps)
        return all(self.offsets.get(tp, 0) >= end for tp, end in ends.items())
