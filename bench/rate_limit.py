"""Rate limiting on against off on one route (GET /api/v1/plugins, under the default policy, at
a limit so high that nothing is refused; off is ``rate_limit_enabled`` false), with in-process
buckets and with Redis buckets: four servers started alike, loaded from a separate process.

Two measures. Instructions executed by the API server per request, counted by valgrind's
callgrind as in ``request_instructions.py`` (deterministic: the ratio off/on is the share of
throughput kept when the API process's CPU is the limit, which is what running more API
processes scales). Requests per second in interleaved runs (noisy on a shared machine, and on
Redis it includes the round trip and Redis's own work, which the instruction count leaves out);
with them, the time one request takes on a single connection, on and off. Target: on >= 0.85 x
off for each store. Always exits 0."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _servers import (
    BENCH_DIR,
    HOST,
    BenchmarkError,
    Child,
    cpu_seconds,
    exit_on_sigterm,
    free_port,
    kernel_env,
    kernel_uvicorn_argv,
    median,
    serving,
    spread,
)
from request_instructions import CHUNKS, IDLE_SECONDS, PRODUCTION, VALGRIND_READY_SECONDS, count_requests, tool

TARGET = 0.85
PATH = "/api/v1/plugins"
NEVER_REFUSED = "1000000000/second"
REDIS_URL = os.environ.get("CODERIC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
LOAD_SCRIPT = BENCH_DIR / "_load.py"


def variants(redis_url: str | None) -> dict[str, dict[str, str]]:
    """Server name -> its settings; ``<store> off`` is the baseline of ``<store> on``."""
    stores = {"memory": {}, **({"redis": {"CODERIC_REDIS_URL": redis_url}} if redis_url else {})}
    chosen = {}
    for store, settings in stores.items():
        chosen[f"{store} off"] = {**settings, "CODERIC_RATE_LIMIT_ENABLED": "false"}
        chosen[f"{store} on"] = {**settings, "CODERIC_RATE_LIMIT_DEFAULT": NEVER_REFUSED}
    return chosen


def redis_reachable(url: str) -> bool:
    """Whether Redis answers; it is then emptied (the bench's own database: 14 by default)."""
    from redis.exceptions import RedisError

    client = redis_client(url)
    try:
        client.flushdb()
    except (RedisError, OSError):
        return False
    finally:
        client.close()
    return True


def redis_client(url: str) -> Any:
    from redis import Redis

    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=5)


def evalsha_totals(url: str) -> tuple[int, int]:
    """Redis's count of EVALSHA calls and the microseconds it spent in them, since its start."""
    client = redis_client(url)
    try:
        stats = client.info("commandstats").get("cmdstat_evalsha", {})
    finally:
        client.close()
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def count_instructions(name: str, settings: dict[str, str], requests: int, warmup: int, concurrency: int,
                       idle_seconds: float, chunks: int, workdir: Path) -> dict[str, float]:
    """Instructions the server executes per request under callgrind; for a Redis server also
    Redis's EVALSHA calls and microseconds per request (from INFO, so other clients of the
    same Redis would show up in them)."""
    port = free_port()
    slug = name.replace(" ", "-")
    outdir, dbdir = workdir / f"cg-{slug}", workdir / f"db-{slug}"
    outdir.mkdir()
    dbdir.mkdir()
    # Instrumentation starts with the warm-up: start-up runs some five times slower, not fifty.
    valgrind = [tool("valgrind"), "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={outdir}/cg.%p"]
    env = {**kernel_env(dbdir), **PRODUCTION, "CODERIC_OUTBOX_POLL_SECONDS": "60", **settings}
    redis_url = settings.get("CODERIC_REDIS_URL")
    with serving([*valgrind, *kernel_uvicorn_argv(port)], port, env, dbdir, timeout=VALGRIND_READY_SECONDS) as child:
        check_switch(name, child)
        callgrind_control("--instr=on", child)
        load(child, warmup, concurrency, 600.0)
        before = evalsha_totals(redis_url) if redis_url else None
        count = count_requests(child.process.pid, outdir, lambda n: load(child, n, concurrency, 600.0), requests,
                               idle_seconds, chunks)
        after = evalsha_totals(redis_url) if redis_url else None
        counted = {"instructions": count.per_request, "background": count.background}
    if before is not None and after is not None:
        counted["redis_calls"] = (after[0] - before[0]) / requests
        counted["redis_us"] = (after[1] - before[1]) / requests
    return counted


def callgrind_control(option: str, child: Child) -> None:
    subprocess.run([tool("callgrind_control"), option, str(child.process.pid)], check=True, capture_output=True,
                   timeout=120)


def check_switch(name: str, child: Child) -> None:
    """The route answers 200, with RateLimit headers exactly when limiting is on."""
    with urllib.request.urlopen(f"http://{HOST}:{child.port}{PATH}", timeout=5) as answer:
        limited = answer.headers.get("RateLimit") is not None
        status = answer.status
    if status != 200 or limited != name.endswith(" on"):
        raise BenchmarkError(f"{name}: status {status}, RateLimit header {'present' if limited else 'absent'}")


def redis_pid(url: str) -> int | None:
    """The process id of a Redis on this machine (its CPU time is read from /proc), else None."""
    from urllib.parse import urlsplit

    if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    client = redis_client(url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def load(child: Child, requests: int, concurrency: int, seconds: float, redis: int | None = None) -> dict[str, float]:
    """One bounded load run on PATH; adds the CPU time per request of the server and of the
    Redis process ``redis``, if given (shared: other clients of that Redis count too)."""
    argv = [sys.executable, str(LOAD_SCRIPT), "--port", str(child.port), "--path", PATH, "--requests", str(requests),
            "--concurrency", str(concurrency), "--seconds", str(seconds)]
    pids = {"server_cpu_us": child.process.pid, **({"redis_cpu_us": redis} if redis is not None else {})}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    if done.returncode != 0:
        raise BenchmarkError(f"load generator failed: {done.stderr.strip()[-2000:]}")
    run: dict[str, float] = json.loads(done.stdout)
    if run["errors"]:  # a 429 here would mean the limit was not high enough
        raise BenchmarkError(f"{int(run['errors'])} of {int(run['requests'])} answers were not 200")
    for name in pids:
        start, end = before[name], after[name]
        if start is not None and end is not None:
            run[name] = (end - start) / run["requests"] * 1e6
    return run


def measure_rps(chosen: dict[str, dict[str, str]], rounds: int, requests: int, concurrency: int, seconds: float,
                latency_requests: int) -> dict[str, Any]:
    rps: dict[str, list[float]] = {name: [] for name in chosen}
    cpu_us: dict[str, list[float]] = {name: [] for name in chosen}
    redis_cpu_us: dict[str, list[float]] = {name: [] for name in chosen if name.startswith("redis")}
    latency_us: dict[str, list[float]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp, ExitStack() as stack:
        servers, redis = {}, {}
        for name, settings in chosen.items():
            workdir = Path(tmp) / name.replace(" ", "-")  # a database each: no lock contention at start
            workdir.mkdir()
            port = free_port()
            env = {**kernel_env(workdir), **PRODUCTION, **settings}
            servers[name] = stack.enter_context(serving(kernel_uvicorn_argv(port), port, env, workdir))
            if "CODERIC_REDIS_URL" in settings:
                redis[name] = redis_pid(settings["CODERIC_REDIS_URL"])
        for name, child in servers.items():
            check_switch(name, child)
            load(child, max(requests // 5, 100), concurrency, seconds)  # warm-up, not counted
        for _ in range(rounds):
            for name, child in servers.items():  # memory off, memory on, redis off, redis on, ...
                run = load(child, requests, concurrency, seconds, redis.get(name))
                rps[name].append(run["rps"])
                if "server_cpu_us" in run:
                    cpu_us[name].append(run["server_cpu_us"])
                if "redis_cpu_us" in run:
                    redis_cpu_us[name].append(run["redis_cpu_us"])
            for name, child in servers.items():  # one connection: each request waits for the last
                run = load(child, latency_requests, 1, seconds)
                latency_us[name].append(1e6 / run["rps"])
    medians = {name: median(values) for name, values in rps.items()}
    cpu = {name: median(values) for name, values in cpu_us.items() if values}
    redis_cpu = {name: median(values) for name, values in redis_cpu_us.items() if values}
    stores = stores_of(chosen)
    both = {store: cpu[f"{store} off"] / (cpu[f"{store} on"] + redis_cpu.get(f"{store} on", 0.0))
            for store in stores if f"{store} on" in cpu and f"{store} off" in cpu}
    return {
        "rps": rps, "median_rps": medians, "server_cpu_us": cpu_us, "median_server_cpu_us": cpu,
        "redis_cpu_us": redis_cpu_us, "median_redis_cpu_us": redis_cpu,
        "latency_us": latency_us, "median_latency_us": {name: median(values) for name, values in latency_us.items()},
        "ratio": {store: medians[f"{store} on"] / medians[f"{store} off"] for store in stores},
        "cpu_ratio": {store: cpu[f"{store} off"] / cpu[f"{store} on"]
                      for store in stores if f"{store} on" in cpu and f"{store} off" in cpu},
        "cpu_ratio_with_redis": {store: ratio for store, ratio in both.items() if f"{store} on" in redis_cpu},
    }


def measure_instructions(chosen: dict[str, dict[str, str]], requests: int, warmup: int,
                         concurrency: int, idle_seconds: float, chunks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp:
        counted = {name: count_instructions(name, settings, requests, warmup, concurrency, idle_seconds, chunks,
                                             Path(tmp))
                   for name, settings in chosen.items()}
    per_request = {name: values["instructions"] for name, values in counted.items()}
    return {
        "per_request": per_request,
        "redis": {name: values for name, values in counted.items() if "redis_calls" in values},
        "ratio": {store: per_request[f"{store} off"] / per_request[f"{store} on"] for store in stores_of(chosen)},
    }


def stores_of(chosen: dict[str, dict[str, str]]) -> list[str]:
    return [store for store in ("memory", "redis") if f"{store} on" in chosen]


def verdict(ratio: float) -> str:
    return "PASS" if ratio >= TARGET else "BELOW TARGET"


def report(result: dict[str, Any]) -> None:
    print(f"rate limit: GET {result['path']}, on = limit {NEVER_REFUSED} (nothing refused), off = "
          f"rate_limit_enabled false; the kernel as in production (JSON logs)")
    counted = result.get("instructions")
    if counted:
        print(f"  instructions per request in the API server, under callgrind ({result['instruction_requests']} "
              f"requests, {result['instruction_concurrency']} connection(s)):")
        for name, count in counted["per_request"].items():
            extra = counted["redis"].get(name)
            shown = (f"; Redis: {extra['redis_calls']:.2f} EVALSHA calls, {extra['redis_us']:.1f} us per request"
                     if extra else "")
            print(f"    {name:<11} {count / 1000:8.1f}k{shown}")
        for store, ratio in counted["ratio"].items():
            print(f"    {store}: ratio off/on = {ratio:.3f}  (target >= {TARGET})  {verdict(ratio)}")
    rps = result.get("requests_per_second")
    if rps:
        print(f"  requests per second: {result['rounds']} interleaved rounds of {result['requests']} requests, "
              f"{result['concurrency']} keep-alive connections; then {result['latency_requests']} requests on one "
              f"connection for the time per request:")
        for name, runs in rps["rps"].items():
            cpu = rps["median_server_cpu_us"].get(name)
            shown = f"; server CPU {cpu:.0f} us/request" if cpu is not None else ""
            if name in rps["median_redis_cpu_us"]:
                shown += f", Redis CPU {rps['median_redis_cpu_us'][name]:.0f} us/request"
            print(f"    {name:<11} median {rps['median_rps'][name]:>8.0f} req/s  (runs {spread(runs)}){shown}; "
                  f"one connection {rps['median_latency_us'][name]:.0f} us/request")
        for store, ratio in rps["ratio"].items():
            by_cpu = rps["cpu_ratio"].get(store)
            steadier = f"; from server CPU per request {by_cpu:.3f}" if by_cpu is not None else ""
            added = rps["median_latency_us"][f"{store} on"] - rps["median_latency_us"][f"{store} off"]
            with_redis = rps["cpu_ratio_with_redis"].get(store)
            steadier += f" (with Redis's: {with_redis:.3f})" if with_redis is not None else ""
            print(f"    {store}: ratio on/off = {ratio:.3f}  (target >= {TARGET})  {verdict(ratio)}{steadier}; "
                  f"{added:+.0f} us per request on one connection")
    if not result["redis_reachable"]:
        print(f"  redis: skipped, nothing answers at {result['redis']} (set CODERIC_BENCH_REDIS_URL or --redis-url)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured runs per server (interleaved)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit of one run")
    parser.add_argument("--latency-requests", type=int, default=2000, help="requests per run on one connection")
    parser.add_argument("--instruction-requests", type=int, default=2000, help="requests counted under callgrind")
    parser.add_argument("--instruction-warmup", type=int, default=200, help="requests before counting starts")
    parser.add_argument("--idle-seconds", type=float, default=IDLE_SECONDS,
                        help="idle time under callgrind whose rate of the server's own work is taken off")
    parser.add_argument("--chunks", type=int, default=CHUNKS, help="counted slices of the requests (median kept)")
    parser.add_argument("--instruction-concurrency", type=int, default=1,
                        help="connections under callgrind (1: no two Redis checks share a call)")
    parser.add_argument("--only", choices=("instructions", "rps"), help="one of the two measures")
    parser.add_argument("--redis-url", default=REDIS_URL, help="Redis for the 'redis' servers; FLUSHDB'ed first")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    reachable = redis_reachable(args.redis_url)
    chosen = variants(args.redis_url if reachable else None)
    result: dict[str, Any] = {
        "path": PATH, "target": TARGET, "redis": args.redis_url, "redis_reachable": reachable,
        "rounds": args.rounds, "requests": args.requests, "concurrency": args.concurrency,
        "latency_requests": args.latency_requests, "instruction_requests": args.instruction_requests,
        "instruction_concurrency": args.instruction_concurrency,
    }
    if args.only != "rps":
        result["instructions"] = measure_instructions(chosen, args.instruction_requests, args.instruction_warmup,
                                                      args.instruction_concurrency, args.idle_seconds, args.chunks)
    if args.only != "instructions":
        result["requests_per_second"] = measure_rps(chosen, args.rounds, args.requests, args.concurrency, args.seconds,
                                                    args.latency_requests)
    report(result)
    measured = result.get("instructions") or result["requests_per_second"]
    result["passed"] = all(ratio >= TARGET for ratio in measured["ratio"].values())
    return result


if __name__ == "__main__":
    main()
