"""How far each stage of the embedded demo has got: offsets it has fully handled.

The demo advances simulated time only when the detect and alert stages have handled every
record before it. Committed offsets do not say that — the detect stage commits only together with
its checkpoints, every few seconds — so the demo runs the stages' own classes with one addition:
after ``handle`` returned (its outputs acknowledged by the bus), the batch's offsets are recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alerts import AlertService
from detectors.service import DetectorService
from riverguard.bus import Bus, Record, TopicPartition, next_offsets


class Watermark:
    """Per partition, the next offset a stage has not handled yet."""

    def __init__(self) -> None:
        self.offsets: dict[TopicPartition, int] = {}

    def advance(self, records: Sequence[Record]) -> None:
        for tp, offset in next_offsets(records).items():
            self.offsets[tp] = max(offset, self.offsets.get(tp, 0))

    async def covers(self, bus: Bus, topic: str) -> bool:
        """True when every record now in ``topic`` has been handled."""
        tps = [TopicPartition(topic, p) for p in range(await bus.partitions(topic))]
        ends = await bus.end_offsets(tps)
        return all(self.offsets.get(tp, 0) >= end for tp, end in ends.items())


class WatchedDetectorService(DetectorService):
    """The detect stage, recording what it handled in :attr:`handled`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled = Watermark()

    async def handle(self, records: Sequence[Record]) -> None:
        await super().handle(records)
        self.handled.advance(records)


class WatchedAlertService(AlertService):
    """The alert stage, recording what it handled in :attr:`handled`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled = Watermark()

    async def handle(self, records: Sequence[Record]) -> None:
        await super().handle(records)
        self.handled.advance(records)
