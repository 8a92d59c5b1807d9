"""Background jobs: what enqueueing costs, and how many no-op jobs one worker runs per second.

1. Enqueue cost: ``plugin.jobs.enqueue("tasks.noop", ...)`` (one outbox row written through
   Piccolo), outside and inside a transaction, against a plain Piccolo insert of one
   ``tasks_item`` row done the same way; an in-process kernel on a throw-away SQLite and
   PostgreSQL database, runs interleaved.
2. Throughput: N ``tasks.noop`` jobs through one ``coderic worker`` (outbox, relay, arq) against
   N no-op jobs through a bare arq worker, on PostgreSQL and a private redis-server, runs
   interleaved.

Informative: neither has a target. Always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from _servers import (
    HOST,
    BenchmarkError,
    _tail,
    clean_env,
    cpu_seconds,
    exit_on_sigterm,
    free_port,
    median,
    script,
    spread,
    stop,
)

PLUGIN = "tasks"  # the test plugin (tests/plugins/tasks), installed in the workspace
JOB = "tasks.noop"
DATABASES = ("sqlite", "postgresql")
POLL_SECONDS = 0.01  # how often a drain is checked, the same for both workers
READY_TIMEOUT_SECONDS = 60.0
WARMUP_CALLS = 100  # per variant, untimed
WARMUP_JOBS = 100  # per worker start, untimed
KERNEL_WORKER_SETTINGS = {
    "CODERIC_OUTBOX_POLL_SECONDS": "0.05", "CODERIC_LOG_LEVEL": "WARNING",
    "CODERIC_MIGRATE_ON_START": "true",  # a migration added to the checkout during a run is applied, not refused
}
STAGING_QUEUE = "bench:staging"  # bare jobs wait here until the whole batch is released at once

BARE_WORKER = '''\
"""A bare arq worker with one no-op function (written by bench/jobs.py)."""

import logging
import os

from arq import run_worker
from arq.connections import RedisSettings


async def noop(ctx):
    return None


class WorkerSettings:
    functions = [noop]
    redis_settings = RedisSettings.from_dsn(os.environ["BENCH_REDIS_URL"])
    max_jobs = 10  # as coderic worker's default --max-jobs


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)  # as the kernel worker: no log line per job
    run_worker(WorkerSettings)
'''


# Shared: child processes, an in-process kernel, the database --------------------------

@contextmanager
def child(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], BinaryIO]]:
    """``argv`` in its own session, its stderr kept for error messages; always stopped at the end."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        try:
            yield process, stderr
        finally:
            stop(process)


async def wait_for(check: Callable[[], Awaitable[bool]], process: subprocess.Popen[bytes], stderr: BinaryIO,
                   what: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    """Poll ``check`` until it holds (refused connections count as not yet), failing early
    if ``process`` exits."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.02) + 1):
        if process.poll() is not None:
            raise BenchmarkError(f"{what}: the process exited with {process.returncode}: {_tail(stderr)}")
        try:
            if await check():
                return
        except (OSError, RedisConnectionError):
            pass
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    raise BenchmarkError(f"{what}: not ready within {timeout:g}s: {_tail(stderr)}")


async def postgres_unreachable() -> str | None:
    """Why the PostgreSQL server the tests use cannot be used, or ``None`` when it can."""
    import asyncpg
    from coderic_kernel.testing import postgres_admin_url

    try:
        connection = await asyncpg.connect(postgres_admin_url(), timeout=5)
    except Exception as exc:  # any reason is reported, not raised
        return f"PostgreSQL at {postgres_admin_url()} is unreachable ({type(exc).__name__}: {exc})"
    await connection.close()
    return None


@asynccontextmanager
async def booted(url: str) -> AsyncIterator[Any]:
    """A kernel in this process with the tasks plugin, migrated, running nothing in the
    background (no relay, no queue): the rows it writes stay where they are."""
    from coderic_kernel.config import load_configuration
    from coderic_kernel.errors import StartupError
    from coderic_kernel.kernel import Kernel

    environ = {"CODERIC_DATABASE_URL": url, "CODERIC_PLUGINS": PLUGIN, "CODERIC_LOG_LEVEL": "WARNING"}
    try:
        kernel = Kernel.boot(load_configuration(environ=environ, read_files=False))
    except StartupError as exc:
        raise BenchmarkError(f"{exc} (the tasks test plugin is installed by `make install`)") from exc
    async with kernel.started(migrate=True):
        yield kernel


# 1. Enqueue cost -------------------------------------------------------------------------

async def timed(op: Callable[[int], Awaitable[Any]], count: int, seconds: float) -> tuple[float, float, int]:
    """(wall and CPU microseconds per call, calls made): ``count`` calls, or fewer if ``seconds``
    run out. CPU is this process's, its threads included (aiosqlite runs SQLite in one)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + seconds
    done = 0
    for i in range(count):
        await op(i)
        done += 1
        if time.perf_counter() > deadline:
            break
    return (time.perf_counter() - started) / done * 1e6, (time.process_time() - cpu_started) / done * 1e6, done


async def enqueue_cost(kind: str, count: int, rounds: int, seconds: float, workdir: Path) -> dict[str, Any]:
    from coderic_kernel.jobs.tables import OutboxEntry
    from coderic_kernel.testing import throwaway_database
    from coderic_tasks.tables import Item

    async with throwaway_database(kind, workdir) as url, booted(url) as kernel:
        plugin = kernel.plugin(PLUGIN)

        async def insert(i: int) -> None:
            await Item.insert(Item(name=f"item {i}"))

        async def enqueue(i: int) -> None:
            await plugin.jobs.enqueue(JOB, {"n": i})

        def in_transaction(op: Callable[[int], Awaitable[None]]) -> Callable[[int], Awaitable[None]]:
            async def run(i: int) -> None:
                async with kernel.database.transaction():
                    await op(i)
            return run

        variants = {
            "insert": insert, "enqueue": enqueue,
            "insert in transaction": in_transaction(insert), "enqueue in transaction": in_transaction(enqueue),
        }
        enqueued = 0
        for name, op in variants.items():  # warm-up, not counted
            enqueued += (await timed(op, WARMUP_CALLS, seconds))[2] if "enqueue" in name else 0
        us: dict[str, list[float]] = {name: [] for name in variants}
        cpu_us: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, op in variants.items():  # insert, enqueue, ..., insert, enqueue, ...
                wall, cpu, calls = await timed(op, count, seconds)
                us[name].append(wall)
                cpu_us[name].append(cpu)
                enqueued += calls if "enqueue" in name else 0
        pending = await OutboxEntry.count().where(OutboxEntry.status == "pending")
        if pending != enqueued:
            raise BenchmarkError(f"{kind}: {enqueued} jobs enqueued but {pending} outbox rows pending")
    medians = {name: median(values) for name, values in us.items()}
    cpu = {name: median(values) for name, values in cpu_us.items()}
    return {
        "us_per_call": us, "median_us": medians, "cpu_us_per_call": cpu_us, "median_cpu_us": cpu,
        "ratio": medians["enqueue"] / medians["insert"],
        "ratio_in_transaction": medians["enqueue in transaction"] / medians["insert in transaction"],
        "cpu_ratio": cpu["enqueue"] / cpu["insert"],
        "cpu_ratio_in_transaction": cpu["enqueue in transaction"] / cpu["insert in transaction"],
    }


def report_enqueue(results: dict[str, Any], count: int, rounds: int) -> None:
    print(f"enqueue cost: {count} calls per run, {rounds} interleaved rounds, one in-process kernel per database "
          "(informative: no target)")
    for kind, result in results.items():
        if isinstance(result, str):
            print(f"  {kind}: INFO not measured: {result}")
            continue
        print(f"  {kind}")
        for name, runs in result["us_per_call"].items():
            print(f"    {name:<23} median {result['median_us'][name]:>6.0f} us/call  (runs {spread(runs)}); "
                  f"CPU {result['median_cpu_us'][name]:.0f} us/call")
        print(f"    INFO enqueue / plain insert = {result['ratio']:.2f} x (alone), "
              f"{result['ratio_in_transaction']:.2f} x (each in its own transaction)")
        print(f"    INFO same from this process's CPU per call = {result['cpu_ratio']:.2f} x (alone), "
              f"{result['cpu_ratio_in_transaction']:.2f} x (in a transaction)")


# 2. Jobs per second through one worker --------------------------------------------------

@asynccontextmanager
async def private_redis(workdir: Path) -> AsyncIterator[tuple[str, Any]]:
    """A redis-server of our own on a free loopback port, nothing on disk: (url, client)."""
    from redis.asyncio import Redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise BenchmarkError("redis-server is not installed")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    url = f"redis://{HOST}:{port}/0"
    with child(argv, {}, workdir) as (process, stderr):
        client = Redis.from_url(url, socket_connect_timeout=1)
        try:
            await wait_for(client.ping, process, stderr, "redis-server")
            yield url, client
        finally:
            await client.aclose()


async def kernel_batch(kernel: Any, jobs: int) -> float:
    """Commit ``jobs`` outbox rows in one transaction; the moment they all became visible."""
    plugin = kernel.plugin(PLUGIN)
    async with kernel.database.transaction():
        for i in range(jobs):
            await plugin.jobs.enqueue(JOB, {"n": i})
    return time.perf_counter()


async def kernel_drained(jobs: int, seconds: float) -> float:
    """When no outbox row is left open (every row done), polled every POLL_SECONDS."""
    from coderic_kernel.jobs.tables import OutboxEntry as E

    deadline = time.perf_counter() + seconds
    for _ in range(int(seconds / POLL_SECONDS) + 1):
        if await E.count().where(E.status.is_in(["pending", "queued", "running"])) == 0:
            finished = time.perf_counter()
            dead = await E.count().where(E.status == "dead")
            if dead:
                raise BenchmarkError(f"{dead} no-op jobs ended dead: see `coderic jobs list --status dead`")
            return finished
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    left = await E.count().where(E.status != "done")
    raise BenchmarkError(f"the kernel worker left {left} of {jobs} jobs undone after {seconds:g}s")


async def bare_batch(pool: Any, redis: Any, jobs: int, tag: str) -> tuple[float, list[str]]:
    """Enqueue ``jobs`` no-op jobs on a staging queue, then move it to the worker's queue in
    one RENAME: all become due at once, as the kernel's rows do at commit."""
    from arq.constants import default_queue_name

    ids = [f"{tag}:{i}" for i in range(jobs)]
    for job_id in ids:
        await pool.enqueue_job("noop", _job_id=job_id, _queue_name=STAGING_QUEUE)
    await redis.rename(STAGING_QUEUE, default_queue_name)
    return time.perf_counter(), ids


async def bare_drained(redis: Any, ids: list[str], seconds: float) -> float:
    """When every job has its result, polled every POLL_SECONDS (one EXISTS over all keys)."""
    from arq.constants import result_key_prefix

    keys = [result_key_prefix + job_id for job_id in ids]
    deadline = time.perf_counter() + seconds
    found = 0
    for _ in range(int(seconds / POLL_SECONDS) + 1):
        found = await redis.exists(*keys)
        if found == len(keys):
            return time.perf_counter()
        if time.perf_counter() > deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    raise BenchmarkError(f"the bare arq worker finished {found} of {len(keys)} jobs within {seconds:g}s")


async def throughput(jobs: int, rounds: int, seconds: float, workdir: Path) -> dict[str, Any]:
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.constants import default_queue_name, health_check_key_suffix
    from coderic_kernel.jobs.queues import QUEUE_NAME
    from coderic_kernel.testing import throwaway_database

    (workdir / "bare_worker.py").write_text(BARE_WORKER)
    async with private_redis(workdir) as (redis_url, redis), \
            throwaway_database("postgresql", workdir) as database_url, booted(database_url) as kernel:
        pool = await create_pool(RedisSettings.from_dsn(redis_url))
        workers = {
            "bare": ([sys.executable, str(workdir / "bare_worker.py")],
                     clean_env([workdir], BENCH_REDIS_URL=redis_url), default_queue_name),
            "kernel": ([script("coderic"), "worker"],
                       clean_env(CODERIC_DATABASE_URL=database_url, CODERIC_REDIS_URL=redis_url,
                                 CODERIC_PLUGINS=PLUGIN, **KERNEL_WORKER_SETTINGS), QUEUE_NAME),
        }

        async def batch(name: str, count: int, tag: str, pid: int) -> tuple[float, float | None]:
            """Seconds from all ``count`` jobs becoming available to the last one done, and the
            worker's CPU seconds in that time (``None`` without ``/proc``)."""
            if name == "kernel":
                released = await kernel_batch(kernel, count)
                cpu_before = cpu_seconds(pid)
                finished = await kernel_drained(count, seconds)
            else:
                released, ids = await bare_batch(pool, redis, count, tag)
                cpu_before = cpu_seconds(pid)
                finished = await bare_drained(redis, ids, seconds)
            cpu_after = cpu_seconds(pid)
            cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
            return finished - released, cpu

        rates: dict[str, list[float]] = {name: [] for name in workers}
        cpu_us: dict[str, list[float]] = {name: [] for name in workers}
        try:
            for round_ in range(rounds):
                for name, (argv, env, queue) in workers.items():  # bare, kernel, bare, kernel, ...
                    health = queue + health_check_key_suffix  # written by arq at its first poll
                    await redis.delete(health)  # a killed worker of the last round may have left it
                    with child(argv, env, workdir) as (process, stderr):
                        await wait_for(lambda: redis.exists(health), process, stderr, f"{name} worker")
                        await batch(name, min(WARMUP_JOBS, jobs), f"warm{round_}", process.pid)  # not counted
                        elapsed, cpu_used = await batch(name, jobs, f"run{round_}", process.pid)
                        if process.poll() is not None:
                            raise BenchmarkError(f"{name} worker exited during the run: {_tail(stderr)}")
                    rates[name].append(jobs / elapsed)
                    if cpu_used is not None:
                        cpu_us[name].append(cpu_used / jobs * 1e6)
        finally:
            await pool.aclose()
    medians = {name: median(values) for name, values in rates.items()}
    cpu = {name: median(values) for name, values in cpu_us.items() if values}
    return {"jobs_per_second": rates, "median_jobs_per_second": medians, "ratio": medians["kernel"] / medians["bare"],
            "worker_cpu_us_per_job": cpu_us, "median_worker_cpu_us_per_job": cpu,
            "cpu_ratio": cpu["bare"] / cpu["kernel"] if len(cpu) == 2 else None}


def report_throughput(result: dict[str, Any] | str, jobs: int, rounds: int) -> None:
    print(f"jobs per second: {jobs} no-op jobs per run through ONE worker (10 at once), {rounds} interleaved "
          "rounds, PostgreSQL and a private redis-server (informative: no target)")
    if isinstance(result, str):
        print(f"  INFO not measured: {result}")
        return
    for name in ("bare", "kernel"):
        cpu = result["median_worker_cpu_us_per_job"].get(name)
        shown = f"; worker CPU {cpu:.0f} us/job" if cpu is not None else ""
        print(f"  {name:<7} median {result['median_jobs_per_second'][name]:>7.0f} jobs/s  "
              f"(runs {spread(result['jobs_per_second'][name])}){shown}")
    print(f"  INFO ratio kernel/bare = {result['ratio']:.3f}: the kernel adds, per job, the relay's claim and "
          "hand-off of its outbox row and the worker's start and done UPDATEs on it")
    if result["cpu_ratio"] is not None:  # both workers poll arq's queue every 0.5 s: jobs/s hides part of the cost
        print(f"  INFO same ratio from worker CPU per job (bare/kernel) = {result['cpu_ratio']:.3f}")


# Entry point -------------------------------------------------------------------------------

async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    parts = args.only or ["enqueue", "throughput"]
    postgres_missing = await postgres_unreachable()
    result: dict[str, Any] = {}
    if "enqueue" in parts:
        costs: dict[str, Any] = {}
        for kind in args.databases.split(","):
            if kind == "postgresql" and postgres_missing:
                costs[kind] = postgres_missing
                continue
            (workdir / kind).mkdir()
            costs[kind] = await enqueue_cost(kind, args.count, args.rounds, args.seconds, workdir / kind)
        report_enqueue(costs, args.count, args.rounds)
        result["enqueue"] = {**costs, "count": args.count, "rounds": args.rounds}
    if "throughput" in parts:
        if "enqueue" in parts:
            print()
        (workdir / "throughput").mkdir()
        rate = postgres_missing or await throughput(args.jobs, args.job_rounds, args.seconds, workdir / "throughput")
        report_throughput(rate, args.jobs, args.job_rounds)
        result["throughput"] = rate if isinstance(rate, str) else {**rate, "jobs": args.jobs, "rounds": args.job_rounds}
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["enqueue", "throughput"], action="append", help="run one part (repeatable)")
    parser.add_argument("--count", type=int, default=2000, help="enqueue cost: calls per run")
    parser.add_argument("--rounds", type=int, default=3, help="enqueue cost: runs per variant (interleaved)")
    parser.add_argument("--databases", default=",".join(DATABASES), help="enqueue cost: sqlite,postgresql")
    parser.add_argument("--jobs", type=int, default=2000, help="throughput: jobs per run")
    parser.add_argument("--job-rounds", type=int, default=3, help="throughput: runs per worker (interleaved)")
    parser.add_argument("--seconds", type=float, default=120.0, help="time limit of any one run")
    args = parser.parse_args(argv)
    unknown = set(args.databases.split(",")) - set(DATABASES)
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="coderic-bench-jobs-") as tmp:
        return asyncio.run(measure(args, Path(tmp)))


if __name__ == "__main__":
    main()
