"""Request overhead in instructions: GET /healthz through the kernel against bare Starlette,
counted by valgrind's callgrind.

Requests per second on a shared two-core machine move by 10-20 % between runs; the number of
instructions a server executes per request does not. Each server runs under callgrind, gets a
warm-up, has its counters zeroed (``callgrind_control -z``), answers ``--requests`` requests
from a separate load process, and dumps its counters (``callgrind_control -d``): the dump
holds the work of those requests, plus whatever the server did on its own meanwhile.

That second part matters under callgrind: requests run some fifty times slower, but timers
(the kernel's permission, key and session reloads, every plugin's loops) fire on the wall
clock, so a timer's run that is nothing at full speed becomes thousands of instructions per
request, and more or less of it lands in the window from run to run. So before the counted
window each server sits idle for ``--idle-seconds`` (its first timer runs happen there), its
instructions per second while idle are measured (the median of four slices), and that rate
times each counted chunk's length is taken off; the requests are counted in ``--chunks``
chunks and the median chunk is kept, so a rare timer run in one chunk does not move it. The ratio bare/kernel is the share of bare Starlette's throughput the
kernel would reach when the CPU is the limit (the issue's target: at least 0.75).
Informative: exits 0 either way.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from _servers import (
    BENCH_DIR,
    BenchmarkError,
    bare_argv,
    clean_env,
    free_port,
    kernel_env,
    kernel_uvicorn_argv,
    median,
    serving,
    spread,
)
from request_overhead import PRODUCTION

TARGET = 0.75
LOAD_SCRIPT = BENCH_DIR / "_load.py"
IDLE_SLICES = 4
IDLE_SECONDS = 40.0
CHUNKS = 5
VALGRIND_READY_SECONDS = 900.0  # a server under callgrind starts some fifty times slower (minutes on a busy machine)
VARIANTS = {
    "bare": None,
    "kernel": PRODUCTION,
    "kernel, access_log off": {**PRODUCTION, "CODERIC_ACCESS_LOG": "false"},
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BenchmarkError(f"{name} is not installed (Debian package valgrind)")
    return found


def run_load(port: int, requests: int) -> None:
    argv = [sys.executable, str(LOAD_SCRIPT), "--port", str(port), "--requests", str(requests),
            "--concurrency", "4", "--seconds", "600"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=660)
    if done.returncode != 0:
        raise BenchmarkError(f"load generator failed: {done.stderr.strip()[-2000:]}")


def instructions(pid: int, outdir: Path) -> int:
    """Dump callgrind's counters of ``pid`` and read the instructions executed since zeroing."""
    before = set(outdir.glob("cg.*"))
    subprocess.run([tool("callgrind_control"), "-d", str(pid)], check=True, capture_output=True, timeout=120)
    dumps = sorted(set(outdir.glob("cg.*")) - before)
    if not dumps:
        raise BenchmarkError("callgrind wrote no dump")
    for line in dumps[-1].read_text(errors="replace").splitlines():
        match = re.match(r"^(?:summary|totals):\s+(\d+)", line)
        if match:
            return int(match.group(1))
    raise BenchmarkError(f"no instruction total in {dumps[-1].name}")


def zero(pid: int) -> float:
    """Zero callgrind's counters of ``pid``; the time they started counting again."""
    subprocess.run([tool("callgrind_control"), "-z", str(pid)], check=True, capture_output=True, timeout=120)
    return time.monotonic()


def _dump_dir(variant: str) -> str:
    return variant.replace(" ", "_").replace(",", "")


class Count(NamedTuple):
    per_request: float  # instructions per request, the server's own background work taken off (median of chunks)
    background: float  # instructions per request that the idle rate accounted for
    chunks: list[float]  # per request in each chunk, to show a chunk that caught a rare event


def per_request(name: str, settings: dict[str, str] | None, requests: int, warmup: int, idle_seconds: float,
                chunks: int, workdir: Path) -> Count:
    port = free_port()
    outdir = workdir / _dump_dir(name)
    outdir.mkdir()
    valgrind = [tool("valgrind"), "--tool=callgrind", f"--callgrind-out-file={outdir}/cg.%p"]
    if settings is None:
        argv, env = bare_argv(port), clean_env()
    else:
        argv = kernel_uvicorn_argv(port)
        env = kernel_env(workdir / f"db-{port}") | {"CODERIC_OUTBOX_POLL_SECONDS": "60", **settings}
        (workdir / f"db-{port}").mkdir()
    with serving([*valgrind, *argv], port, env, workdir, timeout=VALGRIND_READY_SECONDS) as child:
        run_load(port, warmup)
        return count_requests(child.process.pid, outdir, lambda n: run_load(port, n), requests, idle_seconds, chunks)


def count_requests(pid: int, outdir: Path, answer: Callable[[int], object], requests: int, idle_seconds: float,
                   chunks: int) -> Count:
    """Instructions per request while ``answer(n)`` has a warmed-up server under callgrind
    answer ``n`` requests, its own background work at its idle rate taken off (module doc)."""
    # Each dump holds what ran since the one before, so slices need no zeroing in between;
    # medians leave out the slice that caught a timer's rare run (a first query, say).
    started = zero(pid)
    rates = []
    for _ in range(IDLE_SLICES):
        time.sleep(idle_seconds / IDLE_SLICES)
        counted = instructions(pid, outdir)
        rates.append(counted / (time.monotonic() - started))  # per second, no request in flight
        started = time.monotonic()
    idle_rate = median(rates)
    per_chunk, background = [], []
    started = zero(pid)
    for size in _split(requests, chunks):
        answer(size)
        spent = idle_rate * (time.monotonic() - started)
        counted = instructions(pid, outdir)
        started = time.monotonic()
        per_chunk.append((counted - spent) / size)
        background.append(spent / size)
    return Count(median(per_chunk), median(background), per_chunk)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests counted per server")
    parser.add_argument("--warmup", type=int, default=200, help="requests before the counters are zeroed")
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS,
                        help="idle time before counting, to measure (and take off) the server's own background work")
    parser.add_argument("--chunks", type=int, default=CHUNKS, help="counted slices of the requests (the median is kept)")
    parser.add_argument("--only", choices=sorted(VARIANTS), action="append", help="measure only this variant (and bare)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep callgrind's dumps in DIR/<variant>/ (read them with callgrind_annotate)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp:
        workdir = Path(tmp)
        for name, settings in VARIANTS.items():
            if name == "bare" or not args.only or name in args.only:
                results[name] = per_request(name, settings, args.requests, args.warmup, args.idle_seconds, args.chunks,
                                            workdir)
        if args.keep is not None:
            for name in results:
                dumps = workdir / _dump_dir(name)
                shutil.copytree(dumps, args.keep / dumps.name, dirs_exist_ok=True)
    bare = results["bare"].per_request
    print(f"request overhead in instructions: GET /healthz, {args.requests} requests per server under callgrind")
    print("  (the kernel as in production: JSON logs, metrics, security headers, request ids; outbox relay idle;")
    print("   background work at each server's idle rate taken off, shown in brackets)")
    summary: dict[str, Any] = {}
    for name, count in results.items():
        ratio = bare / count.per_request
        verdict = "" if name == "bare" else f"   ratio bare/kernel = {ratio:.3f}  {'PASS' if ratio >= TARGET else 'BELOW TARGET'}"
        print(f"  {name:<24} {count.per_request / 1000:8.1f}k instructions per request "
              f"(+{count.background / 1000:.1f}k; chunks {spread([c / 1000 for c in count.chunks], '.1f')}k){verdict}")
        summary[name] = count.per_request
        summary[f"{name} background"] = count.background
        summary[f"{name} ratio"] = ratio
    return summary


if __name__ == "__main__":
    main()
