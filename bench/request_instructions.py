"""Request overhead in instructions: GET /healthz through the kernel against bare Starlette,
counted by valgrind's callgrind.

Requests per second on a shared two-core machine move by 10-20 % between runs; the number of
instructions a server executes per request does not. Each server runs under callgrind, gets a
warm-up, has its counters zeroed (``callgrind_control -z``), answers ``--requests`` requests
from a separate load process, and dumps its counters (``callgrind_control -d``): the dump
holds exactly the work of those requests. The ratio bare/kernel is the share of bare
Starlette's throughput the kernel would reach when the CPU is the limit (the issue's target:
at least 0.75). Informative: exits 0 either way.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _servers import (
    BENCH_DIR,
    BenchmarkError,
    bare_argv,
    clean_env,
    free_port,
    kernel_env,
    kernel_uvicorn_argv,
    serving,
)
from request_overhead import PRODUCTION

TARGET = 0.75
LOAD_SCRIPT = BENCH_DIR / "_load.py"
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


def _dump_dir(variant: str) -> str:
    return variant.replace(" ", "_").replace(",", "")


def per_request(name: str, settings: dict[str, str] | None, requests: int, warmup: int, workdir: Path) -> float:
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
        subprocess.run([tool("callgrind_control"), "-z", str(child.process.pid)], check=True, capture_output=True,
                       timeout=120)
        run_load(port, requests)
        return instructions(child.process.pid, outdir) / requests


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests counted per server")
    parser.add_argument("--warmup", type=int, default=200, help="requests before the counters are zeroed")
    parser.add_argument("--only", choices=sorted(VARIANTS), action="append", help="measure only this variant (and bare)")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep callgrind's dumps in DIR/<variant>/ (read them with callgrind_annotate)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp:
        workdir = Path(tmp)
        for name, settings in VARIANTS.items():
            if name == "bare" or not args.only or name in args.only:
                results[name] = per_request(name, settings, args.requests, args.warmup, workdir)
        if args.keep is not None:
            for name in results:
                dumps = workdir / _dump_dir(name)
                shutil.copytree(dumps, args.keep / dumps.name, dirs_exist_ok=True)
    bare = results["bare"]
    print(f"request overhead in instructions: GET /healthz, {args.requests} requests per server under callgrind")
    print("  (the kernel as in production: JSON logs, metrics, security headers, request ids; outbox relay idle)")
    for name, count in list(results.items()):
        ratio = bare / count
        verdict = "" if name == "bare" else f"   ratio bare/kernel = {ratio:.3f}  {'PASS' if ratio >= TARGET else 'BELOW TARGET'}"
        print(f"  {name:<24} {count / 1000:8.1f}k instructions per request{verdict}")
        results[f"{name} ratio"] = ratio
    return results


if __name__ == "__main__":
    main()
