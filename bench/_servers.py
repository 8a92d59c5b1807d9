"""What every benchmark shares: HTTP servers started as child processes on loopback, timed
until ``/healthz`` answers 200, and always killed at the end (even on error or SIGTERM)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
BARE_APP = "_bare_app:app"  # bench/_bare_app.py, importable with BENCH_DIR on PYTHONPATH
KERNEL_FACTORY = "coderic_kernel.web.app:create_app"
UVICORN_SETTINGS = ("--workers", "1", "--log-level", "warning", "--no-access-log")

READY_TIMEOUT_SECONDS = 60.0
POLL_INTERVAL_SECONDS = 0.005
STOP_TIMEOUT_SECONDS = 10.0


class BenchmarkError(RuntimeError):
    """A server did not start or answer; the message carries the end of its stderr."""


@dataclass(frozen=True)
class Child:
    process: subprocess.Popen[bytes]
    port: int
    ready_seconds: float  # from process start to the first 200 from /healthz


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def script(name: str) -> str:
    """A console script of the running interpreter's environment (the workspace's venv)."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise BenchmarkError(f"{name!r} is not installed next to {sys.executable}; run `make install`")
    return found


def http_get(port: int, path: str = "/healthz", timeout: float = 1.0) -> tuple[int, bytes] | None:
    """``(status, body)`` of one GET on its own connection, or ``None`` if nothing answers."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError:
        return None
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        return None


def clean_env(pythonpath: Sequence[Path] = (), **settings: str) -> dict[str, str]:
    """The parent's environment without any ``CODERIC_*`` setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODERIC_")}
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (BENCH_DIR, *pythonpath))
    env.update(settings)
    return env


def kernel_env(workdir: Path, plugins: Sequence[str] = (), pythonpath: Sequence[Path] = ()) -> dict[str, str]:
    """A kernel on its own SQLite file in ``workdir``, with exactly ``plugins`` enabled."""
    return clean_env(
        pythonpath,
        CODERIC_DATABASE_URL=f"sqlite:///{workdir.resolve() / 'coderic.db'}",
        CODERIC_PLUGINS=",".join(plugins),
        CODERIC_LOG_LEVEL="INFO",  # the access log on: the overhead measured includes it
        CODERIC_MIGRATE_ON_START="true",
    )


def bare_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", BARE_APP, "--host", HOST, "--port", str(port), *UVICORN_SETTINGS]


def kernel_uvicorn_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--factory", KERNEL_FACTORY, "--host", HOST, "--port", str(port),
            *UVICORN_SETTINGS]


def kernel_serve_argv(port: int) -> list[str]:
    return [script("coderic"), "serve", "--migrate", "--host", HOST, "--port", str(port)]


@contextmanager
def serving(argv: Sequence[str], port: int, env: Mapping[str, str], cwd: Path,
            timeout: float = READY_TIMEOUT_SECONDS) -> Iterator[Child]:
    """Start ``argv`` (which must listen on ``port``), yield once /healthz answers 200, kill it."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        try:
            ready = _wait_ready(process, port, started, timeout, stderr)
            yield Child(process, port, ready)
        finally:
            stop(process)


def _wait_ready(process: subprocess.Popen[bytes], port: int, started: float, timeout: float,
                stderr: BinaryIO) -> float:
    deadline = started + timeout
    for _ in range(int(timeout / POLL_INTERVAL_SECONDS) + 1):
        if process.poll() is not None:
            raise BenchmarkError(f"{_command(process)} exited with {process.returncode}: {_tail(stderr)}")
        answer = http_get(port, timeout=0.5)
        if answer is not None and answer[0] == 200:
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            break
        time.sleep(POLL_INTERVAL_SECONDS)
    raise BenchmarkError(f"{_command(process)}: /healthz gave no 200 within {timeout:g}s: {_tail(stderr)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child's whole process group, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # workers of a stopped server may outlive it for a moment
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _command(process: subprocess.Popen[bytes]) -> str:
    args = process.args if isinstance(process.args, list) else [str(process.args)]
    return " ".join(Path(str(a)).name if i == 0 else str(a) for i, a in enumerate(args))


def _tail(stderr: BinaryIO, lines: int = 15) -> str:
    stderr.seek(0)
    text = stderr.read().decode(errors="replace").strip().splitlines()
    return "\n".join(text[-lines:]) if text else "(no output on stderr)"


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so every ``finally`` (and so every child) is cleaned up."""
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float], spec: str = ".0f") -> str:
    """``min-max`` of the runs, for judging noise next to a median."""
    return f"{min(values):{spec}}-{max(values):{spec}}"
