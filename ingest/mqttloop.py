"""paho-mqtt's network I/O on the asyncio event loop (paho's external-loop API), without a thread.

Why: with ``loop_start()`` paho reads in its own thread, one ``select`` per packet, and every
message then crosses to the asyncio loop under the GIL; at thousands of messages/s that costs as
much as decoding them. Here the loop's selector watches paho's socket: readable → ``loop_read``
until the socket is drained (a batch of packets per wake-up), writable while paho has bytes
queued → ``loop_write``; :meth:`MqttLoop.run` calls ``loop_misc`` (keepalive) every second and
reconnects with exponential backoff after a lost connection, which paho only does by itself in
its own loops. The blocking part of a (re)connect — TCP connect and TLS handshake — runs in a
worker thread; the socket callbacks paho makes there are handed to the loop in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
import ssl
import threading
from typing import Any, Final

import paho.mqtt.client as paho

from riverguard.stage import stopped_within

log = logging.getLogger(__name__)

#: Packets read per readable event before yielding to other tasks (Kafka I/O, acks).
READ_BATCH: Final = 256
MISC_INTERVAL_S: Final = 1.0
DISCONNECT_TIMEOUT_S: Final = 2.0


class MqttLoop:
    """Drive ``client`` from the running asyncio loop; ``run`` until ``stop``, then disconnect.

    ``connect_async`` must have been called on ``client`` (it only records where to connect).
    """

    def __init__(self, client: paho.Client, *, min_delay_s: float = 1.0, max_delay_s: float = 30.0) -> None:
        self.client = client
        self.min_delay_s = min_delay_s
        self.max_delay_s = max_delay_s
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closed = asyncio.Event()
        client.on_socket_open = self._on_open
        client.on_socket_close = self._on_close
        client.on_socket_register_write = self._on_want_write
        client.on_socket_unregister_write = self._on_write_done

    async def run(self, stop: asyncio.Event) -> None:
        delay = self.min_delay_s
        while not stop.is_set():
            if self.client.socket() is None:
                try:
                    await asyncio.to_thread(self.client.reconnect)
                except (OSError, ssl.SSLError) as exc:
                    log.warning("cannot reach the MQTT broker (%s); next attempt in %.0f s", exc, delay)
                    await stopped_within(stop, delay)
                    delay = min(delay * 2, self.max_delay_s)
                    continue
                delay = self.min_delay_s
            self.client.loop_misc()
            await stopped_within(stop, MISC_INTERVAL_S)
        await self._disconnect()

    async def _disconnect(self) -> None:
        if self.client.socket() is None:
            return
        self._closed.clear()
        self.client.disconnect()  # queues DISCONNECT; paho closes the socket once it is written
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), DISCONNECT_TIMEOUT_S)

    # -- paho socket callbacks (on the loop thread, or in the reconnect worker) --------------

    def _on_loop(self, callback: Any, *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            callback(*args)
        else:
            self._loop.call_soon_threadsafe(callback, *args)

    def _on_open(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._on_loop(self._loop.add_reader, sock.fileno(), self._readable, sock)

    def _on_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        # The fd now: paho closes the socket right after this callback returns.
        self._on_loop(self._forget, sock.fileno())

    def _on_want_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._on_loop(self._loop.add_writer, sock.fileno(), self._writable)

    def _on_write_done(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._on_loop(self._loop.remove_writer, sock.fileno())

    def _forget(self, fd: int) -> None:
        self._loop.remove_reader(fd)
        self._loop.remove_writer(fd)
        self._closed.set()

    # -- selector events ------------------------------------------------------------------

    def _readable(self, sock: socket.socket) -> None:
        # loop_read handles one packet per call when nothing of ours is in flight, so drain the
        # socket here rather than paying a selector round trip per message.
        client = self.client
        for _ in range(READ_BATCH):
            client.loop_read()
            if client.socket() is not sock or not _has_data(sock):
                return

    def _writable(self) -> None:
        self.client.loop_write()


def _has_data(sock: socket.socket) -> bool:
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
