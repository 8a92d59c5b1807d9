"""Real-time notifications: fan-out latency from ``notify`` to delivery on N concurrent
WebSocket clients (p50/p99), the server's memory per idle connection, and what one stalled
client does to the others.

One kernel under uvicorn (``--ws coderic_kernel.web.websocket_protocol:LeanWebSocketProtocol
--ws-per-message-deflate false``, as ``coderic serve`` runs it) and one ``coderic worker`` share
a SQLite file and Redis (db 14 of ``CODERIC_BENCH_REDIS_URL``, flushed); this process creates
N members with live sessions, connects one WebSocket per member (access token offered as a
subprotocol), then sends ``--rounds`` notifications to all of them through
``plugin.notifications.notify`` and times each client's receipt. Never fails: prints targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _servers import HOST, clean_env, exit_on_sigterm, free_port, kernel_uvicorn_argv, script, serving

MEMORY_TARGET_KIB = 20.0
WARM_UP = 20  # connections opened and closed before the memory baseline
#: uvicorn's WebSocket implementation: the one ``coderic serve`` uses, unless CODERIC_BENCH_WS names another.
WS_IMPLEMENTATION = os.environ.get("CODERIC_BENCH_WS", "coderic_kernel.web.websocket_protocol:LeanWebSocketProtocol")
PROTOCOL = "coderic.notifications.v1"
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def members(kernel: Any, count: int) -> list[tuple[str, str]]:
    """``count`` active users with a live token session each: ``(user id, access token)``."""
    from coderic_kernel.identity.crypto import new_uid
    from coderic_kernel.identity.service import identity_for
    from coderic_kernel.identity.tables import Session, User

    now = datetime.now(timezone.utc)
    tokens = identity_for(kernel).tokens
    made = []
    for start in range(0, count, 500):
        users = [(new_uid(), new_uid()) for _ in range(min(500, count - start))]
        await User.insert(*[User(uid=u, email=f"{u}@bench.example", email_verified=True) for u, _ in users])
        await Session.insert(*[Session(uid=s, user_id=u, kind="token", method="bench", created_at=now, last_seen_at=now,
                                       authenticated_at=now, expires_at=now + timedelta(hours=12)) for u, s in users])
        made += [(u, tokens.issue(u, s)[0]) for u, s in users]
    return made


class Client:
    def __init__(self, user: str) -> None:
        self.user = user
        self.received: dict[str, float] = {}
        self.connection: Any = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, port: int, token: str) -> None:
        from websockets.asyncio.client import connect

        self.connection = await connect(f"ws://{HOST}:{port}/api/v1/notifications/stream",
                                        subprotocols=[PROTOCOL, f"bearer.{token}"], compression=None,  # type: ignore[list-item]
                                        open_timeout=120, ping_interval=None, max_queue=64)
        await self.connection.recv()  # hello
        self.task = asyncio.create_task(self.listen())

    async def listen(self) -> None:
        try:
            async for text in self.connection:
                arrived = time.perf_counter()
                message = json.loads(text)
                if message["type"] == "notification":
                    self.received[message["notification"]["data"]["title"]] = arrived
        except Exception:
            pass


def stalled_client(port: int, token: str) -> socket.socket:
    """A WebSocket handshake, then never a byte read: its buffers fill up."""
    sock = socket.create_connection((HOST, port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall((f"GET /api/v1/notifications/stream HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Sec-WebSocket-Protocol: {PROTOCOL}, bearer.{token}\r\n\r\n").encode())
    return sock


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fan_out(kernel: Any, clients: list[Client], rounds: int, body: str = "") -> list[float]:
    """Latencies (ms) of ``rounds`` notifications to every client, one round at a time."""
    notifier = kernel.plugin("auth").notifications
    latencies: list[float] = []
    users = [c.user for c in clients]
    for n in range(rounds):
        title = f"round {n} {time.monotonic_ns()}"
        sent = time.perf_counter()
        await notifier.notify(users, "notifications.announcement", {"title": title, "body": body})
        deadline = time.monotonic() + 60
        while sum(title in c.received for c in clients) < len(clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        latencies += [(c.received[title] - sent) * 1000 for c in clients if title in c.received]
        missing = sum(title not in c.received for c in clients)
        if missing:
            print(f"    round {n}: {missing} client(s) got nothing within 60 s")
    return latencies


async def run(sizes: list[int], rounds: int) -> None:
    from coderic_kernel.config import load_configuration
    from coderic_kernel.kernel import Kernel
    from redis.asyncio import Redis

    limit = raise_fd_limit(max(sizes) * 2 + 1024)
    print(f"open-file limit: {limit}")
    redis_url = os.environ.get("CODERIC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = clean_env(CODERIC_DATABASE_URL=f"sqlite:///{workdir / 'coderic.db'}", CODERIC_REDIS_URL=redis_url,
                        CODERIC_SECRET_KEY=SECRET, CODERIC_PUBLIC_URL="https://coderic.example", CODERIC_PLUGINS="",
                        CODERIC_LOG_LEVEL="WARNING", CODERIC_MIGRATE_ON_START="true", CODERIC_RATE_LIMIT_ENABLED="false",
                        CODERIC_OUTBOX_POLL_SECONDS="0.02", CODERIC_NOTIFICATIONS_QUEUE_SIZE="64")
        import subprocess

        worker = subprocess.Popen([script("coderic"), "worker"], env=env, cwd=workdir, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        config = load_configuration(environ={k: v for k, v in env.items() if k.startswith("CODERIC_")}, read_files=False)
        kernel = Kernel.boot(config)
        try:
            async with kernel.started():  # migrates the database
                from coderic_kernel.identity.service import identity_for

                await identity_for(kernel).start()
                everyone = await members(kernel, max(sizes) + 1)
                # A fresh server for each measurement: memory an earlier one freed would be
                # reused by the next connections and hide part of their cost.
                for size in sizes:
                    with api_server(env, workdir) as (port, pid):
                        await measure(kernel, pid, port, everyone[:size], rounds)
                with api_server(env, workdir) as (port, _):
                    await stalled(kernel, port, everyone[:min(sizes)], everyone[-1], rounds)
        finally:
            worker.terminate()
            worker.wait(10)
    await redis.flushdb()
    await redis.aclose()


@contextmanager
def api_server(env: dict[str, str], workdir: Path) -> Iterator[tuple[int, int]]:
    """The kernel under uvicorn as ``coderic serve`` runs it: ``(port, pid)`` once it answers."""
    port = free_port()
    argv = [*kernel_uvicorn_argv(port), "--ws", WS_IMPLEMENTATION, "--ws-per-message-deflate", "false",
            "--ws-ping-interval", "0"]
    with serving(argv, port, env, workdir) as child:
        yield port, child.process.pid


async def open_all(port: int, people: list[tuple[str, str]]) -> list[Client]:
    clients = [Client(u) for u, _ in people]
    for start in range(0, len(people), 200):  # a burst at a time: the listen backlog is finite
        await asyncio.gather(*(c.open(port, t) for c, (_, t) in zip(clients[start:start + 200], people[start:start + 200])))
    return clients


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.connection.close() for c in clients), return_exceptions=True)
    await asyncio.sleep(1)


async def measure(kernel: Any, pid: int, port: int, people: list[tuple[str, str]], rounds: int) -> None:
    # A few connections first, closed again, so that what the first handshake costs once per
    # process (lazy imports, the crypto library's tables) is not counted per connection.
    await close_all(await open_all(port, people[:WARM_UP]))
    before = rss_kib(pid)
    opened = time.perf_counter()
    clients = await open_all(port, people)
    took = time.perf_counter() - opened
    await asyncio.sleep(2)  # idle
    per = (rss_kib(pid) - before) / len(clients)
    verdict = "PASS" if per <= MEMORY_TARGET_KIB else "BELOW TARGET"
    print(f"{len(clients)} clients: connected in {took:.1f} s; server memory per idle connection {per:.1f} KiB "
          f"(target <= {MEMORY_TARGET_KIB:g} KiB, compression off): {verdict}")
    latencies = await fan_out(kernel, clients, rounds)
    if latencies:
        print(f"  notify -> delivery over {rounds} round(s): p50 {statistics.median(latencies):.0f} ms, "
              f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms ({len(latencies)} deliveries)")
    await close_all(clients)


async def stalled(kernel: Any, port: int, people: list[tuple[str, str]], stuck: tuple[str, str], rounds: int) -> None:
    """The same fan-out with 16 KiB bodies, without and then with one client that never reads."""
    body = "x" * 16384
    clients = await open_all(port, people)
    calm = await fan_out(kernel, clients, rounds, body)
    sock = stalled_client(port, stuck[1])
    await asyncio.sleep(0.5)
    kept = [*clients, Client(stuck[0])]
    stuck_rounds = max(rounds, 40)  # enough 16 KiB messages to fill the stalled socket and its queue
    disturbed = await fan_out(kernel, clients + [], stuck_rounds, body)
    sock.setblocking(False)
    closed = b""
    try:
        while chunk := sock.recv(1 << 20):
            closed += chunk
    except (BlockingIOError, ConnectionError):
        pass
    sock.close()
    dropped = b"\x88" in closed[-64:] or len(closed) < 16384 * stuck_rounds
    print(f"  stalled client ({len(people)} others, 16 KiB notifications): p99 {percentile(calm, 0.99):.0f} ms without it, "
          f"{percentile(disturbed, 0.99):.0f} ms with it over {stuck_rounds} rounds; it was "
          f"{'dropped' if dropped else 'NOT dropped'} ({len(kept) - 1} others all served: "
          f"{'PASS' if len(disturbed) == len(clients) * stuck_rounds else 'BELOW TARGET'})")
    await close_all(clients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1000,10000", help="comma-separated numbers of WebSocket clients")
    parser.add_argument("--rounds", type=int, default=5, help="notifications sent to all clients per size")
    args = parser.parse_args()
    exit_on_sigterm()
    asyncio.run(run([int(n) for n in args.clients.split(",")], args.rounds))


if __name__ == "__main__":
    sys.exit(main())
