"""Real services the fault tests start and stop themselves: a private Redis server (the
shared one must not be stopped under other tests) and ``coderic worker`` processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import pytest
from coderic_kernel.testing import services_required


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port, keeping nothing on disk; stop and start at will."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed"
            if services_required():
                pytest.fail(message)
            pytest.skip(message)
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class WorkerProcess:
    """``coderic worker`` in its own process, as an operator runs it."""

    def __init__(self, env: Mapping[str, str], cwd: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CODERIC_")} | dict(env)
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.log = cwd / f"worker-{time.monotonic_ns()}.log"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coderic_kernel.cli", "worker"], env=self.env, cwd=self.cwd,
            stdout=subprocess.DEVNULL, stderr=self.log.open("wb"), start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: no clean-up, no chance to finish the job in hand."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")
