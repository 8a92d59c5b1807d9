"""Load generator, run as its own process: ``python _load.py --port P --requests N``.

Keeps ``--concurrency`` HTTP/1.1 keep-alive connections to 127.0.0.1, each sending one GET
at a time, until ``--requests`` have been answered or ``--seconds`` have passed. Prints one
JSON line: requests answered, non-200 answers, seconds, requests per second and the
share of one core the generator itself used (near 1.0: the generator, not the server, limits).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

HOST = "127.0.0.1"


class Budget:
    """Requests left to send, shared by every connection, bounded in count and time."""

    def __init__(self, requests: int, seconds: float) -> None:
        self.left = requests
        self.deadline = time.perf_counter() + seconds
        self.answered = 0
        self.errors = 0

    def take(self) -> bool:
        if self.left <= 0 or time.perf_counter() > self.deadline:
            return False
        self.left -= 1
        return True


class Connection(asyncio.Protocol):
    """Sends the request, reads one response (by Content-Length), sends the next."""

    def __init__(self, request: bytes, budget: Budget, done: asyncio.Future[None]) -> None:
        self.request = request
        self.budget = budget
        self.done = done
        self.buffer = b""
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self._next()

    def data_received(self, data: bytes) -> None:
        try:
            self._read(data)
        except Exception as exc:  # fail the run at once rather than at its time limit
            if not self.done.done():
                self.done.set_exception(exc)
            self.transport.close()

    def _read(self, data: bytes) -> None:
        self.buffer += data
        while (head_end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:head_end]
            length = _content_length(head)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            status = head[9:12]
            self.buffer = self.buffer[end:]
            self.budget.answered += 1
            if status != b"200":
                self.budget.errors += 1
            self._next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"server closed the connection ({exc})"))

    def _next(self) -> None:
        if self.budget.take():
            self.transport.write(self.request)
        elif not self.done.done():
            self.done.set_result(None)
            self.transport.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise ValueError("response without Content-Length (chunked answers are not supported here)")


async def run(port: int, path: str, requests: int, concurrency: int, seconds: float,
              headers: list[str] | None = None) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    extra = "".join(f"{header}\r\n" for header in headers or [])
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: application/json\r\n{extra}\r\n".encode()
    budget = Budget(requests, seconds)
    started, cpu_started = time.perf_counter(), time.process_time()
    waits = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done: Connection(request, budget, d), HOST, port)
        waits.append(done)
    await asyncio.wait_for(asyncio.gather(*waits), timeout=seconds + 10)
    elapsed = time.perf_counter() - started
    return {"requests": budget.answered, "errors": budget.errors, "seconds": elapsed,
            "rps": budget.answered / elapsed, "client_cpu": (time.process_time() - cpu_started) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/healthz")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0, help="stop sending after this long")
    parser.add_argument("--header", action="append", default=[], help="a request header, 'Name: value' (repeatable)")
    args = parser.parse_args()
    coroutine = run(args.port, args.path, args.requests, args.concurrency, args.seconds, args.header)
    try:
        import uvloop  # the same event loop uvicorn uses, when installed
    except ImportError:
        result = asyncio.run(coroutine)
    else:
        result = uvloop.run(coroutine)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
