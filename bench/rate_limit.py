"""Requests per second on one route (GET /api/v1/plugins, under the default policy) with rate
limiting on, at a limit so high that nothing is refused, against off (``rate_limit_enabled``
false): in-process buckets and Redis buckets, four servers started alike and loaded in
interleaved runs from a separate process. Target: on >= 0.85 x off for each store. Always exits 0."""

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
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except (RedisError, OSError):
        return False
    finally:
        client.close()
    return True


def check_switch(name: str, child: Child) -> None:
    """The route answers 200, with RateLimit headers exactly when limiting is on."""
    with urllib.request.urlopen(f"http://{HOST}:{child.port}{PATH}", timeout=5) as answer:
        limited = answer.headers.get("RateLimit") is not None
        status = answer.status
    if status != 200 or limited != name.endswith(" on"):
        raise BenchmarkError(f"{name}: status {status}, RateLimit header {'present' if limited else 'absent'}")


def load(child: Child, requests: int, concurrency: int, seconds: float) -> dict[str, float]:
    """One bounded load run on PATH; adds the server's CPU time per request."""
    argv = [sys.executable, str(LOAD_SCRIPT), "--port", str(child.port), "--path", PATH, "--requests", str(requests),
            "--concurrency", str(concurrency), "--seconds", str(seconds)]
    cpu_before = cpu_seconds(child.process.pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    cpu_after = cpu_seconds(child.process.pid)
    if done.returncode != 0:
        raise BenchmarkError(f"load generator failed: {done.stderr.strip()[-2000:]}")
    run: dict[str, float] = json.loads(done.stdout)
    if run["errors"]:  # a 429 here would mean the limit was not high enough
        raise BenchmarkError(f"{int(run['errors'])} of {int(run['requests'])} answers were not 200")
    if cpu_before is not None and cpu_after is not None:
        run["server_cpu_us"] = (cpu_after - cpu_before) / run["requests"] * 1e6
    return run


def measure(rounds: int, requests: int, concurrency: int, seconds: float, redis_url: str) -> dict[str, Any]:
    reachable = redis_reachable(redis_url)
    chosen = variants(redis_url if reachable else None)
    rps: dict[str, list[float]] = {name: [] for name in chosen}
    cpu_us: dict[str, list[float]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp, ExitStack() as stack:
        servers = {}
        for name, settings in chosen.items():
            workdir = Path(tmp) / name.replace(" ", "-")  # a database each: no lock contention at start
            workdir.mkdir()
            port = free_port()
            env = {**kernel_env(workdir), **settings}
            servers[name] = stack.enter_context(serving(kernel_uvicorn_argv(port), port, env, workdir))
        for name, child in servers.items():
            check_switch(name, child)
            load(child, max(requests // 5, 100), concurrency, seconds)  # warm-up, not counted
        for _ in range(rounds):
            for name, child in servers.items():  # memory off, memory on, redis off, redis on, ...
                run = load(child, requests, concurrency, seconds)
                rps[name].append(run["rps"])
                if "server_cpu_us" in run:
                    cpu_us[name].append(run["server_cpu_us"])
    medians = {name: median(values) for name, values in rps.items()}
    cpu = {name: median(values) for name, values in cpu_us.items() if values}
    stores = [store for store in ("memory", "redis") if f"{store} on" in chosen]
    ratios = {store: medians[f"{store} on"] / medians[f"{store} off"] for store in stores}
    cpu_ratios = {
        store: cpu[f"{store} off"] / cpu[f"{store} on"] for store in stores if f"{store} on" in cpu and f"{store} off" in cpu
    }
    return {"path": PATH, "rps": rps, "median_rps": medians, "ratio": ratios, "target": TARGET,
            "server_cpu_us": cpu_us, "median_server_cpu_us": cpu, "cpu_ratio": cpu_ratios,
            "passed": all(ratio >= TARGET for ratio in ratios.values()), "rounds": rounds, "requests": requests,
            "concurrency": concurrency, "redis": redis_url, "redis_reachable": reachable}


def report(result: dict[str, Any]) -> None:
    print(f"rate limit: GET {result['path']}, {result['rounds']} interleaved rounds of {result['requests']} requests, "
          f"{result['concurrency']} keep-alive connections; on = limit {NEVER_REFUSED} (nothing refused)")
    for name, runs in result["rps"].items():
        cpu = result["median_server_cpu_us"].get(name)
        shown = f"; server CPU {cpu:.0f} us/request" if cpu is not None else ""
        print(f"  {name:<11} median {result['median_rps'][name]:>8.0f} req/s  (runs {spread(runs)}){shown}")
    for store, ratio in result["ratio"].items():
        verdict = "PASS" if ratio >= TARGET else "BELOW TARGET"
        by_cpu = result["cpu_ratio"].get(store)
        steadier = f"; from server CPU per request {by_cpu:.3f}" if by_cpu is not None else ""
        print(f"  {store}: ratio on/off = {ratio:.3f}  (target >= {TARGET})  {verdict}{steadier}")
    if not result["redis_reachable"]:
        print(f"  redis: skipped, nothing answers at {result['redis']} (set CODERIC_BENCH_REDIS_URL or --redis-url)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured runs per server (interleaved)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit of one run")
    parser.add_argument("--redis-url", default=REDIS_URL, help="Redis for the 'redis' servers (its keys expire at once)")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    result = measure(args.rounds, args.requests, args.concurrency, args.seconds, args.redis_url)
    report(result)
    return result


if __name__ == "__main__":
    main()
