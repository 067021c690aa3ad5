#!/usr/bin/env python3
"""Is there a usable Kafka broker at HOST:PORT?  (stdlib only; used by deploy/stack.sh)

A real client round trip, much faster than starting a JVM for BrokerApiVersionsCommand:
  1. ApiVersions v0 - every broker answers it; tells which Metadata versions it speaks;
  2. Metadata (no topics) - the broker list holds only registered, unfenced brokers, so
     a non-empty list means producers and consumers can use the cluster.

Exit 0 and print the brokers when healthy, exit 1 with the reason otherwise.
Usage: healthcheck.py HOST:PORT [timeout-seconds]
"""

from __future__ import annotations

import socket
import struct
import sys

API_METADATA = 3
API_VERSIONS = 18


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        n = self.take("h")
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s


def _call(sock: socket.socket, api_key: int, version: int, correlation_id: int, body: bytes) -> _Reader:
    client_id = b"riverguard-stack-health"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv(sock, 4))[0]
    reader = _Reader(_recv(sock, size))
    if reader.take("i") != correlation_id:
        raise RuntimeError("correlation id mismatch")
    return reader


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by broker")
        buf += chunk
    return buf


def check(host: str, port: int, timeout: float) -> list[tuple[int, str, int]]:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        r = _call(sock, API_VERSIONS, 0, 1, b"")
        error = r.take("h")
        if error:
            raise RuntimeError(f"ApiVersions error code {error}")
        ranges = {}
        for _ in range(r.take("i")):
            key, lo, hi = r.take("h"), r.take("h"), r.take("h")
            ranges[key] = (lo, hi)
        lo, hi = ranges.get(API_METADATA, (0, -1))
        usable = [v for v in range(1, 9) if lo <= v <= hi]  # non-flexible encodings only
        if not usable:
            raise RuntimeError(f"broker speaks Metadata v{lo}-v{hi}, none of v1-v8")
        version = usable[0]
        body = struct.pack(">i", 0)  # empty topic list: brokers only
        if version >= 4:
            body += b"\x00"  # allow_auto_topic_creation = false
        if version >= 8:
            body += b"\x00\x00"  # include_*_authorized_operations = false
        r = _call(sock, API_METADATA, version, 2, body)
        if version >= 3:
            r.take("i")  # throttle_time_ms
        brokers = []
        for _ in range(r.take("i")):
            node_id = r.take("i")
            broker_host = r.string() or "?"
            broker_port = r.take("i")
            r.string()  # rack
            brokers.append((node_id, broker_host, broker_port))
        return brokers


def main() -> int:
    if len(sys.argv) < 2 or ":" not in sys.argv[1]:
        print(__doc__, file=sys.stderr)
        return 2
    host, _, port = sys.argv[1].rpartition(":")
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    try:
        brokers = check(host, int(port), timeout)
    except (OSError, RuntimeError, struct.error) as exc:
        print(f"kafka at {host}:{port} not healthy: {exc}", file=sys.stderr)
        return 1
    if not brokers:
        print(f"kafka at {host}:{port} answers but lists no unfenced broker yet", file=sys.stderr)
        return 1
    print(" ".join(f"broker {n} at {h}:{p}" for n, h, p in brokers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
