"""The live list: who is watching, and which incidents changed since the last look.

The book is the truth; the feed looks at it every ``period_s`` and hands each changed incident to
every subscriber's queue, which a server-sent-events response drains. A change is a new object:
the book's incidents are frozen and every change puts a new one in its place, so an identity
check per incident (microseconds for hundreds) sees each change — also one made within the same
clock reading, such as a tick in the second an incident opened, which ``updated_at`` would miss.
A subscriber that stops reading loses the oldest changes first, never blocks the book, and
catches up with a reload; closing the feed hands every subscriber the end (``None``), so a
stopping service does not wait for open streams.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Final

from riverguard.incidents import Incident

QUEUE_LIMIT: Final = 200


class IncidentFeed:
    def __init__(self, incidents: Callable[[], list[Incident]], period_s: float = 0.5) -> None:
        self._incidents = incidents
        self.period_s = period_s
        self._seen: dict[str, Incident] = {}
        self._queues: set[asyncio.Queue[Incident | None]] = set()
        self.closed = asyncio.Event()
        self.on_change: list[Callable[[Incident], None]] = []

    def subscribe(self) -> asyncio.Queue[Incident | None]:
        queue: asyncio.Queue[Incident | None] = asyncio.Queue(QUEUE_LIMIT)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Incident | None]) -> None:
        self._queues.discard(queue)

    def close(self) -> None:
        """Stop looking and end every subscriber's stream: each queue gets ``None`` (the end)."""
        self.closed.set()
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    def look(self) -> list[Incident]:
        """Changed incidents since the last look, handed to every subscriber (also returned)."""
        changed = [i for i in self._incidents() if self._seen.get(i.incident_id) is not i]
        for incident in changed:
            self._seen[incident.incident_id] = incident
            for hook in self.on_change:
                hook(incident)
            for queue in self._queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(incident)
        return changed

    async def run(self) -> None:
        self._seen = {i.incident_id: i for i in self._incidents()}
        while not self.closed.is_set():
            self.look()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), self.period_s)
