"""Identity costs: access-token verification per request, and password sign-ins (argon2 in a
thread pool) while other requests keep their latency. Always exits 0.

1. **Verification**: one kernel server, one route (``GET /api/v1/plugins``), requested without
   credentials and with ``Authorization: Bearer <access token>``, runs interleaved. Target:
   the authenticated requests reach at least 0.9 of the anonymous ones' requests per second.
2. **Sign-in under load**: the latency of ``GET /healthz`` on one connection, alone and while
   ``--login-concurrency`` clients sign in with a password over and over; sign-ins per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from _servers import (
    BenchmarkError,
    Child,
    exit_on_sigterm,
    free_port,
    kernel_env,
    kernel_uvicorn_argv,
    serving,
    spread,
)
from request_overhead import column, interleaved, medians
from request_overhead import load as overhead_load

TARGET = 0.9
ROUTE = "/api/v1/plugins"
EMAIL = "bench@example.org"
PASSWORD = "a long bench passphrase, not in any list"
SECRET = "bench-" + "k" * 40
#: Generous limits, so that the sign-in benchmark measures hashing, not the throttle.
UNTHROTTLED = {"auth.login": "1000000/minute", "auth.login_account": "1000000/minute",
               "auth.login_account_daily": "1000000/minute"}


def settings(workdir: Path) -> dict[str, str]:
    return {**kernel_env(workdir), "CODERIC_ENVIRONMENT": "production", "CODERIC_SECRET_KEY": SECRET,
            "CODERIC_RATE_LIMIT_DEFAULT": "100000000/minute", "CODERIC_RATE_LIMITS": json.dumps(UNTHROTTLED)}


def prepare_user(env: dict[str, str]) -> str:
    """Create the bench user in the server's database and return an access token for it, made
    by the same kernel code (and signing key) a real sign-in uses."""
    code = f"""
import asyncio, json, os
from coderic_kernel.config import load_configuration
from coderic_kernel.kernel import Kernel
from coderic_kernel.identity import users
from coderic_kernel.identity.passwords import hash_password
from coderic_kernel.identity.service import identity_for
from coderic_kernel.testing import _FakeConnection

async def main():
    kernel = Kernel.boot(load_configuration())
    async with kernel.started():
        user = await users.by_email({EMAIL!r}) or await users.create(
            email={EMAIL!r}, email_verified=True, password_hash=hash_password({PASSWORD!r}))
        outcome = await identity_for(kernel).signin.finish(_FakeConnection(), user["uid"], "bench", "token")
        print(outcome.body["access_token"])

asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=env.get("PWD"))
    if done.returncode != 0:
        raise BenchmarkError(f"could not prepare the bench user: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def load(child: Child, requests: int, concurrency: int, seconds: float, headers: list[str],
         path: str = ROUTE) -> dict[str, float]:
    return overhead_load(child, requests, concurrency, seconds, path=path, headers=headers)


def measure_verification(child: Child, token: str, rounds: int, requests: int, concurrency: int,
                         seconds: float) -> dict[str, Any]:
    variants = {"anonymous": [], "access token": [f"Authorization: Bearer {token}"]}
    for headers in variants.values():  # warm-up
        load(child, max(requests // 5, 100), concurrency, seconds, headers)
    results = interleaved({name: partial(load, child, requests, concurrency, seconds, headers)
                           for name, headers in variants.items()}, rounds, alternate=True)
    rps = column(results, "rps")
    rps_medians, cpu_medians = medians(rps), medians(column(results, "server_cpu_us"))
    ratio = rps_medians["access token"] / rps_medians["anonymous"]
    return {"rps": rps, "median_rps": rps_medians, "ratio": ratio, "passed": ratio >= TARGET,
            "median_server_cpu_us": cpu_medians,
            "cpu_ratio": cpu_medians["anonymous"] / cpu_medians["access token"] if len(cpu_medians) == 2 else None}


async def _probe(port: int, seconds: float) -> list[float]:
    """Latencies of GET /healthz, one at a time on one keep-alive connection."""
    import httpx2 as httpx

    latencies = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            answer = await client.get("/healthz")
            latencies.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise BenchmarkError(f"/healthz answered {answer.status_code}")
            await asyncio.sleep(0.005)
    return latencies


async def _sign_in_loop(port: int, deadline: float, counts: list[int]) -> None:
    import httpx2 as httpx

    body = {"email": EMAIL, "password": PASSWORD, "mode": "token"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while time.perf_counter() < deadline:
            answer = await client.post("/api/v1/auth/login", json=body)
            if answer.status_code != 200:
                raise BenchmarkError(f"sign-in answered {answer.status_code}: {answer.text[:300]}")
            counts.append(1)


async def _under_sign_ins(port: int, seconds: float, concurrency: int) -> tuple[list[float], float]:
    counts: list[int] = []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    loops = [asyncio.create_task(_sign_in_loop(port, deadline, counts)) for _ in range(concurrency)]
    latencies = await _probe(port, seconds)
    await asyncio.gather(*loops)
    return latencies, len(counts) / (time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure_sign_ins(child: Child, seconds: float, concurrency: int) -> dict[str, Any]:
    """The load runs in this process (it is light: most of the time is the server hashing)."""
    alone = asyncio.run(_probe(child.port, seconds))
    during, per_second = asyncio.run(_under_sign_ins(child.port, seconds, concurrency))
    summary = {
        name: {"p50_ms": percentile(values, 0.5) * 1000, "p99_ms": percentile(values, 0.99) * 1000, "n": len(values)}
        for name, values in (("alone", alone), ("during sign-ins", during))
    }
    return {"latency": summary, "sign_ins_per_second": per_second, "concurrency": concurrency}


def report(verification: dict[str, Any] | None, sign_ins: dict[str, Any] | None, args: argparse.Namespace) -> None:
    if verification is not None:
        print(f"access-token verification: GET {ROUTE}, {args.rounds} interleaved rounds of {args.requests} requests, "
              f"{args.concurrency} keep-alive connections")
        for name, runs in verification["rps"].items():
            cpu = verification["median_server_cpu_us"].get(name)
            shown = f"; server CPU {cpu:.0f} us/request" if cpu is not None else ""
            print(f"  {name:<13} median {verification['median_rps'][name]:>8.0f} req/s  (runs {spread(runs)}){shown}")
        verdict = "PASS" if verification["passed"] else "BELOW TARGET"
        print(f"  ratio token/anonymous = {verification['ratio']:.3f}  (target >= {TARGET})  {verdict}")
        if verification["cpu_ratio"] is not None:
            print(f"  same ratio from server CPU per request = {verification['cpu_ratio']:.3f}")
    if sign_ins is not None:
        print(f"password sign-ins: {sign_ins['concurrency']} clients signing in for {args.login_seconds:.0f} s "
              f"while one connection asks GET /healthz every 5 ms")
        print(f"  sign-ins per second: {sign_ins['sign_ins_per_second']:.1f}")
        for name, numbers in sign_ins["latency"].items():
            print(f"  /healthz {name:<16} p50 {numbers['p50_ms']:6.2f} ms   p99 {numbers['p99_ms']:7.2f} ms   "
                  f"({numbers['n']} requests)")
        alone, during = sign_ins["latency"]["alone"], sign_ins["latency"]["during sign-ins"]
        print(f"  p50 during/alone = {during['p50_ms'] / alone['p50_ms']:.2f}x (hashing runs in worker threads; "
              "the event loop keeps answering)")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured runs per variant (interleaved)")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit of one run")
    parser.add_argument("--login-seconds", type=float, default=10.0, help="length of each sign-in phase")
    parser.add_argument("--login-concurrency", type=int, default=4, help="clients signing in at once")
    parser.add_argument("--only", choices=("verification", "sign-ins"), help="one of the two measures")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        env = {**settings(workdir), "PWD": str(workdir)}
        port = free_port()
        child = stack.enter_context(serving(kernel_uvicorn_argv(port), port, env, workdir))
        token = prepare_user(env)
        verification = sign_ins = None
        if args.only in (None, "verification"):
            verification = measure_verification(child, token, args.rounds, args.requests, args.concurrency,
                                                args.seconds)
        if args.only in (None, "sign-ins"):
            sign_ins = measure_sign_ins(child, args.login_seconds, args.login_concurrency)
    report(verification, sign_ins, args)
    return {"verification": verification, "sign_ins": sign_ins}


if __name__ == "__main__":
    try:
        main()
    except BenchmarkError as exc:
        print(f"auth benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
