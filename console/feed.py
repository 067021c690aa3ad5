"""The live list: who is watching, and which incidents changed since the last look.

The book is the truth; the feed looks at it every ``period_s`` (``updated_at`` per incident, a
few microseconds for hundreds of incidents) and hands each changed incident to every subscriber's
queue, which a server-sent-events response drains. A subscriber that stops reading loses the
oldest changes first, never blocks the book, and catches up with a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Final

from riverguard.incidents import Incident

QUEUE_LIMIT: Final = 200


class IncidentFeed:
    def __init__(self, incidents: Callable[[], list[Incident]], period_s: float = 0.5) -> None:
        self._incidents = incidents
        self.period_s = period_s
        self._seen: dict[str, datetime] = {}
        self._queues: set[asyncio.Queue[Incident]] = set()
        self.closed = asyncio.Event()
        self.on_change: list[Callable[[Incident], None]] = []

    def subscribe(self) -> asyncio.Queue[Incident]:
        queue: asyncio.Queue[Incident] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Incident]) -> None:
        self._queues.discard(queue)

    def look(self) -> list[Incident]:
        """Changed incidents since the last look, handed to every subscriber (also returned)."""
        changed = [i for i in self._incidents() if self._seen.get(i.incident_id) != i.updated_at]
        for incident in changed:
            self._seen[incident.incident_id] = incident.updated_at
            for hook in self.on_change:
                hook(incident)
            for queue in self._queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(incident)
        return changed

    async def run(self) -> None:
        self._seen = {i.incident_id: i.updated_at for i in self._incidents()}
        while not self.closed.is_set():
            self.look()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), self.period_s)
