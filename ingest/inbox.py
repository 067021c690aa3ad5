"""What a transport received and its pump has not taken yet (one event loop, no locks)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """Items put by callbacks on the loop (paho's, a TCP protocol's), taken in batches by a pump."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        self._items.append(item)
        self._ready.set()

    async def take(self, wait_s: float, limit: int) -> list[T]:
        """Up to ``limit`` items, oldest first; waits up to ``wait_s`` for the first."""
        if not self._items:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait_s)
        items, self._items = self._items[:limit], self._items[limit:]
        if not self._items:
            self._ready.clear()
        return items
