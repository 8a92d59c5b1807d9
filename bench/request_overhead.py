"""Requests per second on GET /healthz: the kernel's full middleware stack against a bare
Starlette route answering the same JSON, both under uvicorn with the same settings, loaded
from a separate process, runs interleaved. Target: kernel >= 0.75 x bare. Always exits 0."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from _servers import (
    BENCH_DIR,
    BenchmarkError,
    Child,
    bare_argv,
    clean_env,
    cpu_seconds,
    exit_on_sigterm,
    free_port,
    http_get,
    kernel_env,
    kernel_uvicorn_argv,
    median,
    serving,
    spread,
)

TARGET = 0.75
PRODUCTION = {"CODERIC_ENVIRONMENT": "production", "CODERIC_SECRET_KEY": "bench-" + "k" * 40}  # JSON logs
LOAD_SCRIPT = BENCH_DIR / "_load.py"


def load(child: Child, requests: int, concurrency: int, seconds: float, path: str = "/healthz",
         headers: Sequence[str] = ()) -> dict[str, float]:
    """One bounded load run of GETs on ``path`` from a separate process."""
    argv = [sys.executable, str(LOAD_SCRIPT), "--port", str(child.port), "--path", path, "--requests", str(requests),
            "--concurrency", str(concurrency), "--seconds", str(seconds)]
    for header in headers:
        argv += ["--header", header]
    cpu_before = cpu_seconds(child.process.pid)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    cpu_after = cpu_seconds(child.process.pid)
    if done.returncode != 0:
        raise BenchmarkError(f"load generator failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout)
    if result["errors"]:
        raise BenchmarkError(f"{path}: {int(result['errors'])} of {int(result['requests'])} answers were not 200")
    if cpu_before is not None and cpu_after is not None:
        result["server_cpu_us"] = (cpu_after - cpu_before) / result["requests"] * 1e6
    return result


Run = Callable[[], dict[str, float]]


def interleaved(runs: Mapping[str, Run], rounds: int, *, alternate: bool = False) -> dict[str, list[dict[str, float]]]:
    """Every one of ``runs`` once per round, in turn, so that all see the same machine; with
    ``alternate`` the order is reversed every other round (no variant always goes first).
    The results of each, by name."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    order = list(runs.items())
    for index in range(rounds):
        for name, run in (order[::-1] if alternate and index % 2 else order):
            results[name].append(run())
    return results


def column(results: Mapping[str, list[dict[str, float]]], key: str) -> dict[str, list[float]]:
    """``key`` of every run that has it, by name."""
    return {name: [run[key] for run in runs if key in run] for name, runs in results.items()}


def medians(values: Mapping[str, list[float]]) -> dict[str, float]:
    """The median of each list that has values."""
    return {name: median(found) for name, found in values.items() if found}


def measure(rounds: int, requests: int, concurrency: int, seconds: float,
            settings: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        bare_port, kernel_port = free_port(), free_port()
        servers = {
            "bare": stack.enter_context(serving(bare_argv(bare_port), bare_port, clean_env(), workdir)),
            "kernel": stack.enter_context(
                serving(kernel_uvicorn_argv(kernel_port), kernel_port, {**kernel_env(workdir), **(settings or {})},
                        workdir)
            ),
        }
        answers = {name: http_get(child.port) for name, child in servers.items()}
        if None in answers.values() or len({(a[0], a[1].strip()) for a in answers.values() if a}) != 1:
            raise BenchmarkError(f"the two servers answer differently: {answers}")
        for child in servers.values():  # warm-up, not counted
            load(child, max(requests // 5, 100), concurrency, seconds)
        results = interleaved(  # bare, kernel, bare, kernel, ...
            {name: partial(load, child, requests, concurrency, seconds) for name, child in servers.items()}, rounds)
    rps, cpu_us = column(results, "rps"), column(results, "server_cpu_us")
    client_cpu = max(run["client_cpu"] for runs in results.values() for run in runs)
    bare, kernel = median(rps["bare"]), median(rps["kernel"])
    ratio = kernel / bare
    cpu = medians(cpu_us)
    return {"rps": rps, "median_rps": {"bare": bare, "kernel": kernel}, "ratio": ratio, "target": TARGET,
            "server_cpu_us": cpu_us, "median_server_cpu_us": cpu,
            "cpu_ratio": cpu["bare"] / cpu["kernel"] if len(cpu) == 2 else None,
            "passed": ratio >= TARGET, "rounds": rounds, "requests": requests, "concurrency": concurrency,
            "client_cpu_max": client_cpu, "kernel_settings": settings or {}}


def report(result: dict[str, Any]) -> None:
    print(f"request overhead: GET /healthz, {result['rounds']} interleaved rounds of {result['requests']} "
          f"requests, {result['concurrency']} keep-alive connections")
    if result["kernel_settings"]:
        print("  kernel settings: " + " ".join(f"{k}={v}" for k, v in result["kernel_settings"].items()))
    for name in ("bare", "kernel"):
        runs = result["rps"][name]
        cpu = result["median_server_cpu_us"].get(name)
        shown = f"; server CPU {cpu:.0f} us/request" if cpu is not None else ""
        print(f"  {name:<8} median {result['median_rps'][name]:>9.0f} req/s  (runs {spread(runs)}){shown}")
    print(f"  load generator used at most {result['client_cpu_max']:.0%} of one core (near 100%: it, not the server, limits)")
    verdict = "PASS" if result["passed"] else "BELOW TARGET"
    print(f"  ratio kernel/bare = {result['ratio']:.3f}  (target >= {TARGET})  {verdict}")
    if result["cpu_ratio"] is not None:  # steadier than req/s when other work shares the machine
        print(f"  same ratio from server CPU per request (bare/kernel) = {result['cpu_ratio']:.3f}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured runs per server (interleaved)")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit of one run")
    parser.add_argument("--setting", action="append", default=[], metavar="CODERIC_KEY=VALUE",
                        help="a kernel setting for the kernel server, to see what a feature costs (repeatable)")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    # The kernel as in production (JSON logs), as request_instructions.py measures it.
    settings = {**PRODUCTION, **dict(item.split("=", 1) for item in args.setting)}
    result = measure(args.rounds, args.requests, args.concurrency, args.seconds, settings)
    report(result)
    return result


if __name__ == "__main__":
    main()
