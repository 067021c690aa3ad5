#!/usr/bin/env python3
"""Is there a usable Kafka broker at HOST:PORT?  (stdlib only; used by deploy/stack.sh)

A real client round trip, much faster than starting a JVM for BrokerApiVersionsCommand:
  0. with --ca: TLS, the broker's certificate verified against that CA (and host name), with
     --cert our own certificate and key (PEM, one file) for a listener that wants one;
     with --user: SASL/SCRAM-SHA-512 authentication (RFC 5802) as that user, the password read
     from --password-file (never from the command line);
  1. ApiVersions v0 - every broker answers it; tells which Metadata versions it speaks;
  2. Metadata (no topics) - the broker list holds only registered, unfenced brokers, so
     a list of at least --brokers entries means producers and consumers can use the cluster.

Exit 0 and print the brokers when healthy, exit 1 with the reason otherwise; exit 3 when the
broker answers in plaintext although --ca was given (a broker without TLS).
Usage: healthcheck.py HOST:PORT [timeout-seconds] [--ca FILE [--cert FILE]]
                      [--user NAME --password-file FILE] [--brokers N]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import secrets
import socket
import ssl
import struct
import sys
from pathlib import Path

API_METADATA = 3
API_SASL_HANDSHAKE = 17
API_VERSIONS = 18
API_SASL_AUTHENTICATE = 36


class PlaintextBrokerError(Exception):
    """The broker answered a TLS handshake with Kafka protocol bytes."""


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


def _bytes(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _scram_authenticate(sock: socket.socket, user: str, password: str) -> None:
    """SASL/SCRAM-SHA-512 (RFC 5802, RFC 7677) over SaslHandshake v1 + SaslAuthenticate v1."""
    r = _call(sock, API_SASL_HANDSHAKE, 1, 10, _string("SCRAM-SHA-512"))
    error = r.take("h")
    mechanisms = [r.string() for _ in range(r.take("i"))]
    if error:
        raise RuntimeError(f"broker does not offer SCRAM-SHA-512 (error {error}; it offers {mechanisms})")
    name = user.replace("=", "=3D").replace(",", "=2C")
    client_nonce = secrets.token_urlsafe(24)
    first_bare = f"n={name},r={client_nonce}"
    server_first = _sasl_step(sock, 11, ("n,," + first_bare).encode()).decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    nonce, salt, iterations = fields["r"], base64.b64decode(fields["s"]), int(fields["i"])
    if not nonce.startswith(client_nonce):
        raise RuntimeError("SCRAM: the server's nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha512")
    final_bare = f"c=biws,r={nonce}"
    auth_message = f"{first_bare},{server_first},{final_bare}".encode()
    signature = hmac.digest(hashlib.sha512(client_key).digest(), auth_message, "sha512")
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
    server_final = _sasl_step(sock, 12, f"{final_bare},p={proof}".encode()).decode()
    server_key = hmac.digest(salted, b"Server Key", "sha512")
    expected = base64.b64encode(hmac.digest(server_key, auth_message, "sha512")).decode()
    if not hmac.compare_digest(server_final, f"v={expected}"):
        raise RuntimeError("SCRAM: the broker's signature is wrong (not the broker we set up?)")


def _sasl_step(sock: socket.socket, correlation_id: int, message: bytes) -> bytes:
    r = _call(sock, API_SASL_AUTHENTICATE, 1, correlation_id, _bytes(message))
    error = r.take("h")
    text = r.string()
    if error:
        raise RuntimeError(f"SASL authentication failed (error {error}): {text}")
    n = r.take("i")
    return r.data[r.pos : r.pos + n]


def _connect(host: str, port: int, timeout: float, ca: str | None, cert: str | None) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    if ca is None:
        return sock
    context = ssl.create_default_context(cafile=ca)
    if cert is not None:
        context.load_cert_chain(cert)
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, ConnectionError) as exc:
        sock.close()
        if _speaks_plaintext(host, port, timeout):
            raise PlaintextBrokerError(f"{host}:{port} answers Kafka requests without TLS") from exc
        raise


def _speaks_plaintext(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            _call(sock, API_VERSIONS, 0, 1, b"")
            return True
    except (OSError, RuntimeError, struct.error):
        return False


def check(host: str, port: int, timeout: float, *, ca: str | None = None, cert: str | None = None,
          user: str | None = None, password: str | None = None) -> list[tuple[int, str, int]]:
    with _connect(host, port, timeout, ca, cert) as sock:
        if user is not None:
            _scram_authenticate(sock, user, password or "")
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
    parser = argparse.ArgumentParser(usage=__doc__)
    parser.add_argument("address")
    parser.add_argument("timeout", nargs="?", type=float, default=5.0)
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--user")
    parser.add_argument("--password-file")
    parser.add_argument("--brokers", type=int, default=1)
    args = parser.parse_args()
    if ":" not in args.address:
        print(__doc__, file=sys.stderr)
        return 2
    host, _, port = args.address.rpartition(":")
    try:
        password = None
        if args.password_file:
            with Path(args.password_file).open(encoding="utf-8") as f:
                password = f.readline().rstrip("\n")
        brokers = check(host, int(port), args.timeout, ca=args.ca, cert=args.cert, user=args.user,
                        password=password)
    except PlaintextBrokerError as exc:
        print(f"kafka at {host}:{port}: {exc}", file=sys.stderr)
        return 3
    except (OSError, RuntimeError, struct.error, KeyError, ValueError) as exc:
        print(f"kafka at {host}:{port} not healthy: {exc}", file=sys.stderr)
        return 1
    if len(brokers) < args.brokers:
        print(f"kafka at {host}:{port} answers but lists {len(brokers)} of {args.brokers} unfenced brokers",
              file=sys.stderr)
        return 1
    print(" ".join(f"broker {n} at {h}:{p}" for n, h, p in brokers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
