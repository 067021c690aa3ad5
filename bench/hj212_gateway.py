"""HJ 212 gateway throughput: 2,000 data loggers connected at once, frames/s through the gateway
into Kafka (each frame answered with 9014 only after Kafka acknowledged its reading) against, in the
same run, a raw asyncio TCP server that only reads the same frames and answers each one, and a relay
that also sends each frame as it came to Kafka (acks=all) before answering; and the gateway's
memory per connection.

Both servers run as their own processes (``riverguard run hj212-gateway`` with a registry of
synthetic stations; the raw server and the relay are this file with ``--raw-server`` and
``--relay-server``); this process is the 2,000
loggers, with every frame built before the clock starts. Each logger sends its frames one after
another without waiting (asking for the 9014 answer), and the clock runs from the first byte to the
last answer. Memory: the gateway's RSS after start, with every logger connected (idle), and after
the traffic. CPU: the server process's user+system time per frame.

    .venv/bin/python bench/hj212_gateway.py [--connections 2000] [--frames 10]   (stack up: deploy/stack.sh up)

The bench raises its open-file limit to the hard limit (2 fds per connection in the two processes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from pydantic import SecretStr

from ingest.codecs import frame_of
from ingest.gateway import Gateway
from ingest.hj212 import Frame, build_frame
from ingest.inbox import Inbox
from ingest.settling import Settler
from riverguard.bus.base import Outgoing, TopicPartition, TopicSpec
from riverguard.bus.kafka import KafkaBus
from riverguard.bus.memory import MemoryBus
from riverguard.models import Measurement, Reading, SourceFormat
from riverguard.settings import Settings, load_settings
from riverguard.stations import StationRegistry, StationSecrets, load_registry
from riverguard.timekeeping import BEIJING

REPO = Path(__file__).resolve().parents[1]
ANSWER = b"##0087QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&3240\r\n"


async def raw_server(port: int) -> None:
    """Reads frames and answers each with a fixed 9014 frame: the transport's share alone."""

    class Raw(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport, self.tail = transport, b""

        def data_received(self, data: bytes) -> None:
            data = self.tail + data
            frames = data.count(b"\r\n")
            self.tail = data[data.rfind(b"\r\n") + 2 :] if frames else data
            if frames:
                self.transport.write(ANSWER * frames)

    server = await asyncio.get_running_loop().create_server(Raw, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


async def relay_server(port: int, topic: str) -> None:
    """Reads frames and sends each as it came to Kafka (acks=all), answering it once Kafka has it:
    the transport's and Kafka's share without decoding, through the gateway's own pump shape (one
    producer, batches of what all connections sent, answers settled in send order)."""
    bus = KafkaBus(load_settings().kafka)
    await bus.create_topics([TopicSpec(topic)])
    producer = bus.producer(client_id="bench-relay")
    await producer.start()
    inbox = Inbox[tuple[asyncio.Transport, bytes]]()

    def answer(links: list[asyncio.Transport]) -> None:
        for link in links:
            link.write(ANSWER)

    settler = Settler[asyncio.Transport](answer, what="answering")
    settler.start()

    class Relay(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport, self.tail = transport, b""

        def data_received(self, data: bytes) -> None:
            frames = (self.tail + data).split(b"\r\n")
            self.tail = frames.pop()
            for frame in frames:
                inbox.put((self.transport, frame))

    server = await asyncio.get_running_loop().create_server(Relay, "127.0.0.1", port, backlog=4096)
    async with server:
        while True:
            items = await inbox.take(wait_s=0.5, limit=500)
            if items:
                pending = await producer.send_batch([Outgoing(topic, frame, key=frame[-30:-6]) for _, frame in items])
                await settler.put(pending, [link for link, _ in items])


def registry(connections: int) -> StationRegistry:
    """``connections`` stations like tuo-sanhuangmiao (ten parameters), each with its own MN."""
    template = load_registry().by_id["tuo-sanhuangmiao"].model_dump()
    return StationRegistry.model_validate({"stations": [
        template | {"station_id": f"bench-{n:05d}", "mn": f"BENCH{n:019d}", "section": f"bench {n}"}
        for n in range(connections)
    ]})


def frames(stations: StationRegistry, per_station: int) -> dict[str, bytes]:
    """Each station's frames, concatenated: 2011 uploads asking for the 9014 answer, QN now."""
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
    out = {}
    for station in stations.stations:
        reading = Reading(station_id=station.station_id, river=station.river, time=now,
                          values={name: Measurement(value=value) for name, value in station.typical.items()},
                          source_format=SourceFormat.HJ212)
        frame = frame_of(reading, station, pw="bench-pw")
        out[station.station_id] = b"".join(
            build_frame(replace(frame, qn=f"{stamp}{n:03d}", flag="5")) for n in range(per_station)
        )
    return out


@dataclass
class Run:
    seconds: float
    answered: int
    connect_s: float


async def drive(port: int, batches: dict[str, bytes], per_station: int, connected: asyncio.Event | None = None,
                go: asyncio.Event | None = None) -> Run:
    """Connect every logger, then (when ``go`` is set) send every batch and wait for all answers."""
    started = time.perf_counter()
    links = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port, limit=1 << 20) for _ in batches))
    connect_s = time.perf_counter() - started
    if connected is not None:
        connected.set()
    if go is not None:
        await go.wait()

    async def one(link: tuple[asyncio.StreamReader, asyncio.StreamWriter], data: bytes) -> int:
        reader, writer = link
        writer.write(data)
        answers = 0
        while answers < per_station:
            chunk = await asyncio.wait_for(reader.read(1 << 16), 120)  # a stuck server ends the run
            if not chunk:
                break
            answers += chunk.count(b"\r\n")
        writer.close()
        return answers

    started = time.perf_counter()
    answered = await asyncio.gather(*(one(link, data) for link, data in zip(links, batches.values(), strict=True)))
    return Run(time.perf_counter() - started, sum(answered), connect_s)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(command: list[str], *, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=REPO, stderr=log.open("wb") if log else None)


def finish(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_port(port: int, process: subprocess.Popen[bytes], limit_s: float = 60) -> None:
    for _ in range(int(limit_s * 10)):
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise SystemExit(f"nothing listens on {port}")


async def measure(process: subprocess.Popen[bytes], port: int, batches: dict[str, bytes], per_station: int,
                  ) -> tuple[Run, int, int, float]:
    """A run against ``process``: the run, RSS with every logger connected and after, CPU s."""
    connected, go = asyncio.Event(), asyncio.Event()
    driving = asyncio.create_task(drive(port, batches, per_station, connected, go))
    await connected.wait()
    await asyncio.sleep(1.0)  # let the server finish accepting
    idle_rss, cpu0 = rss_kib(process.pid), cpu_s(process.pid)
    go.set()
    run = await driving
    return run, idle_rss, rss_kib(process.pid), cpu_s(process.pid) - cpu0


async def heap_per_connection(settings: Settings, stations: StationRegistry) -> float:
    """KiB of Python heap the gateway holds per bound, idle connection (tracemalloc, in this
    process, on the in-memory bus): what RSS cannot show once the allocator reuses freed memory."""
    secrets = StationSecrets({s.station_id: SecretStr("bench-pw") for s in stations.stations})
    hj212 = settings.hj212.model_copy(update={"host": "127.0.0.1", "port": 0,
                                              "max_connections_per_peer": len(stations.stations) + 1})
    gateway = Gateway(settings.model_copy(update={"hj212": hj212}), stations, secrets, MemoryBus())
    stop = asyncio.Event()
    running = asyncio.create_task(gateway.run(stop))
    await gateway.listening.wait()
    assert gateway.port is not None
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    # Each logger sends a frame that binds its connection and is not routed (a 9013 answer).
    hellos = [build_frame(Frame(cn="9013", mn=s.mn, cp=(), qn="20240101000000000", st="91", pw="bench-pw", flag="4"))
              for s in stations.stations]
    clients = await asyncio.to_thread(_bound_sockets, gateway.port, hellos)
    for _ in range(600):
        if len(gateway.bound) == len(clients):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    mine = [tracemalloc.Filter(False, __file__), tracemalloc.Filter(False, "*/socket.py"),
            tracemalloc.Filter(False, tracemalloc.__file__)]
    grown = sum(stat.size_diff for stat in after.filter_traces(mine).compare_to(before.filter_traces(mine), "filename"))
    for client in clients:
        client.close()
    stop.set()
    await running
    return grown / len(clients) / 1024


def _bound_sockets(port: int, first_frames: list[bytes]) -> list[socket.socket]:
    """One plain socket per station, each having sent its first frame (the session binds)."""
    clients = []
    for frame in first_frames:
        client = socket.create_connection(("127.0.0.1", port))
        client.sendall(frame)
        clients.append(client)
    return clients


async def server_run(
    argv: Callable[[int], list[str]], batches: dict[str, bytes], per_station: int
) -> tuple[Run, int, int, float]:
    """:func:`measure` against a baseline server process started with ``argv(port)``."""
    port = free_port()
    process = spawn(argv(port))
    try:
        await wait_port(port, process)
        return await measure(process, port, batches, per_station)
    finally:
        finish(process)


def gateway_env(settings: Settings, port: int, stations: Path, passwords: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVERGUARD_")}
    return env | {
        "RIVERGUARD_STATIONS_FILE": str(stations),
        "RIVERGUARD_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
        "RIVERGUARD_TOPICS__READINGS": settings.topics.readings, "RIVERGUARD_TOPICS__DLQ": settings.topics.dlq,
        "RIVERGUARD_TOPICS__INCIDENTS": settings.topics.incidents,
        "RIVERGUARD_TOPICS__STATION_COMMANDS": settings.topics.station_commands,
        "RIVERGUARD_TOPICS__COMMAND_RESULTS": settings.topics.command_results,
        "RIVERGUARD_HJ212__HOST": "127.0.0.1", "RIVERGUARD_HJ212__PORT": str(port),
        "RIVERGUARD_HJ212__PASSWORDS_FILE": str(passwords), "RIVERGUARD_OBSERVABILITY__LOG_LEVEL": "WARNING",
        # Every bench logger comes from 127.0.0.1.
        "RIVERGUARD_HJ212__MAX_CONNECTIONS_PER_PEER": str(len(stations.read_text().split("station_id:"))),
    }


async def main(connections: int, per_station: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2 * connections + 100:
        raise SystemExit(f"the open-file limit {hard} is too low for {connections} connections")
    base = load_settings()
    run_id = uuid.uuid4().hex[:8]
    settings = base.model_copy(update={"topics": base.topics.model_copy(update={
        name: f"bench-{name}-{run_id}" for name in ("readings", "dlq", "incidents", "station_commands",
                                                     "command_results")})})
    relay_topic = f"bench-relay-{run_id}"
    stations = registry(connections)
    batches = frames(stations, per_station)
    total = connections * per_station
    print(f"{connections} data loggers × {per_station} frames = {total} frames "
          f"({sum(map(len, batches.values())) / total:.0f} bytes each); fd limit {soft} → {hard}")
    with tempfile.TemporaryDirectory(prefix="riverguard-bench-") as scratch:
        stations_file, passwords = Path(scratch) / "stations.yaml", Path(scratch) / "passwords.yaml"
        stations_file.write_text(yaml.safe_dump(stations.model_dump(mode="json"), allow_unicode=True), encoding="utf-8")
        passwords.write_text("".join(f"{s.station_id}: bench-pw\n" for s in stations.stations), encoding="utf-8")

        baseline, raw_idle, raw_after, raw_cpu = await server_run(
            lambda port: [sys.executable, __file__, "--raw-server", str(port)], batches, per_station)
        relayed, _, _, relay_cpu = await server_run(
            lambda port: [sys.executable, __file__, "--relay-server", str(port), relay_topic], batches, per_station)

        port = free_port()
        log = Path(scratch) / "gateway.log"
        gateway = spawn([str(Path(sys.executable).parent / "riverguard"), "run", "hj212-gateway"],
                        env=gateway_env(settings, port, stations_file, passwords), log=log)
        try:
            await wait_port(port, gateway)
            await asyncio.sleep(2.0)
            started_rss = rss_kib(gateway.pid)
            run, idle_rss, after_rss, cpu = await measure(gateway, port, batches, per_station)
            bus = KafkaBus(settings.kafka)
            name = settings.topics.readings
            ends = await bus.end_offsets([TopicPartition(name, p) for p in range(await bus.partitions(name))])
        finally:
            finish(gateway)
            await KafkaBus(settings.kafka).delete_topics(
                [relay_topic, *(getattr(settings.topics, n) for n in ("readings", "dlq", "incidents",
                                                                       "station_commands", "command_results"))])
        if run.answered != total:
            print(log.read_text()[-3000:])

    heap_kib = await heap_per_connection(settings, stations)
    rate, raw_rate = run.answered / run.seconds, baseline.answered / baseline.seconds
    print(f"raw asyncio TCP read + answer: {raw_rate:,.0f} frames/s ({baseline.seconds:.2f} s, "
          f"{raw_cpu / total * 1e6:.1f} µs CPU per frame, connect {baseline.connect_s:.2f} s)")
    print(f"gateway → Kafka (acks=all) → 9014: {rate:,.0f} frames/s ({run.seconds:.2f} s, "
          f"{cpu / total * 1e6:.0f} µs CPU per frame, connect {run.connect_s:.2f} s); "
          f"{run.answered} answered, {sum(ends.values())} readings in Kafka")
    relay_rate = relayed.answered / relayed.seconds
    print(f"relay (raw read, the frame as it came to Kafka acks=all, answer): {relay_rate:,.0f} frames/s "
          f"({relayed.seconds:.2f} s, {relay_cpu / total * 1e6:.0f} µs CPU per frame)")
    print(f"ratio gateway / raw read: {rate / raw_rate:.3f}; gateway / relay: {rate / relay_rate:.2f}")
    print(f"gateway RSS: {started_rss / 1024:.1f} MiB started, {idle_rss / 1024:.1f} MiB with {connections} idle "
          f"connections ({(idle_rss - started_rss) / connections:.1f} KiB per connection), "
          f"{after_rss / 1024:.1f} MiB after the traffic ({(after_rss - started_rss) / connections:.1f} KiB per "
          f"connection); raw server {raw_idle / 1024:.1f} → {raw_after / 1024:.1f} MiB")
    print(f"gateway Python heap per bound idle connection (tracemalloc, {connections} connections): "
          f"{heap_kib:.1f} KiB (kernel socket buffers not included)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=10, help="frames per connection")
    parser.add_argument("--raw-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--relay-server", nargs=2, metavar=("PORT", "TOPIC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_server:
        asyncio.run(raw_server(args.raw_server))
    elif args.relay_server:
        asyncio.run(relay_server(int(args.relay_server[0]), args.relay_server[1]))
    else:
        asyncio.run(main(args.connections, args.frames))
