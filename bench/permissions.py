"""What a permission check costs on a hot route: ten plugins, each registering ten permissions
(one hundred in all), and one route requested with the same access token with and without a
permission to check (the caller holds it through the ``member`` role). Runs interleaved.
Target: the checked route keeps at least 0.95 of the unchecked one's requests per second
(the check costs less than 5 %). Always exits 0."""

from __future__ import annotations

import argparse
import sys
import tempfile
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from _servers import BenchmarkError, exit_on_sigterm, free_port, kernel_uvicorn_argv, serving, spread
from auth import load, prepare_user, settings
from request_overhead import column, interleaved, medians
from startup import make_trivial_plugins

TARGET = 0.95
PLUGINS = 10
PERMISSIONS_EACH = 10
PLUGIN_MODULE = '''\
"""Benchmark plugin {name}: ten permissions, one route without and one with a permission."""

from coderic_sdk import Permission, Route, hookimpl


async def answer(ctx):
    return {{"plugin": "{name}"}}


@hookimpl
def register_permissions():
    return [Permission(f"{name}.action{{n}}", "An action.", default_roles=("member",)) for n in range(10)]


@hookimpl
def register_routes():
    return [
        Route("GET", "/open", answer, name="open"),
        Route("GET", "/guarded", answer, name="guarded", permission="{name}.action7"),
    ]
'''


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="measured runs per route (interleaved)")
    parser.add_argument("--requests", type=int, default=10_000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit of one run")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        site = workdir / "site"
        names = make_trivial_plugins(site, PLUGINS, PLUGIN_MODULE, prefix="perm")
        env = {**settings(workdir), "PWD": str(workdir), "CODERIC_PLUGINS": ",".join(names),
               "PYTHONPATH": f"{site}:{Path(__file__).resolve().parent}"}
        port = free_port()
        child = stack.enter_context(serving(kernel_uvicorn_argv(port), port, env, workdir))
        token = prepare_user(env)
        headers = [f"Authorization: Bearer {token}"]
        routes = {"unchecked": "/api/v1/perm9/open", "checked": "/api/v1/perm9/guarded"}
        for path in routes.values():  # warm-up
            load(child, max(args.requests // 5, 100), args.concurrency, args.seconds, headers, path)
        results = interleaved({name: partial(load, child, args.requests, args.concurrency, args.seconds, headers, path)
                               for name, path in routes.items()}, args.rounds, alternate=True)
    rps = column(results, "rps")
    rps_medians, cpu_medians = medians(rps), medians(column(results, "server_cpu_us"))
    ratio = rps_medians["checked"] / rps_medians["unchecked"]
    print(f"permission check: {PLUGINS} plugins x {PERMISSIONS_EACH} permissions; GET with an access token, "
          f"{args.rounds} interleaved rounds of {args.requests} requests, {args.concurrency} connections")
    for name, runs in rps.items():
        shown = f"; server CPU {cpu_medians[name]:.0f} us/request" if name in cpu_medians else ""
        print(f"  {name:<10} median {rps_medians[name]:>8.0f} req/s  (runs {spread(runs)}){shown}")
    print(f"  ratio checked/unchecked = {ratio:.3f}  (target >= {TARGET})  {'PASS' if ratio >= TARGET else 'BELOW TARGET'}")
    if len(cpu_medians) == 2:
        print(f"  same ratio from server CPU per request = {cpu_medians['unchecked'] / cpu_medians['checked']:.3f}")
    return {"rps": rps, "ratio": ratio, "cpu": cpu_medians}


if __name__ == "__main__":
    try:
        main()
    except BenchmarkError as exc:
        print(f"permission benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
