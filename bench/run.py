"""Run every benchmark (``make bench``), print each one's ratios against the baseline measured
in the same run, and keep the numbers in bench/results/latest.json (not committed).

Benchmarks inform; they never fail the build: the exit status is 0 unless one could not run.
``python bench/run.py --only startup`` runs one; ``--quick`` does fewer, shorter runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import jobs
import projects
import rate_limit
import email_delivery
import request_instructions
import request_overhead
import search
import startup
import storage
from _servers import BENCH_DIR, BenchmarkError, exit_on_sigterm

BENCHMARKS = {
    "startup": startup.main, "request_overhead": request_overhead.main,
    "request_instructions": request_instructions.main, "rate_limit": rate_limit.main,
    "jobs": jobs.main, "email_delivery": email_delivery.main, "storage": storage.main,
    "projects": projects.main, "search": search.main,
}
QUICK = {
    "startup": ["--repeat", "2"], "request_overhead": ["--rounds", "2", "--requests", "5000"],
    "request_instructions": ["--requests", "500", "--warmup", "100", "--idle-seconds", "10"],
    "rate_limit": ["--rounds", "2", "--requests", "5000", "--idle-seconds", "10"],
    "jobs": ["--count", "300", "--rounds", "1", "--jobs", "500", "--job-rounds", "1"],
    "email_delivery": ["--quick"],
    "storage": ["--size-mib", "8", "--rounds", "1", "--memory-factor", "10"],
    "projects": ["--projects", "2000", "--rounds", "1", "--requests", "500"],
    "search": ["--sizes", "2000,10000", "--queries", "100"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only this one (repeatable)")
    parser.add_argument("--quick", action="store_true", help="fewer and shorter runs (a smoke test)")
    args = parser.parse_args()
    exit_on_sigterm()
    results: dict[str, object] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
    }
    failed = []
    for name in args.only or BENCHMARKS:
        print(f"\n### {name}")
        started = time.monotonic()
        try:
            results[name] = BENCHMARKS[name](QUICK[name] if args.quick else [])
        except BenchmarkError as exc:
            print(f"  could not run: {exc}")
            failed.append(name)
            continue
        print(f"  ({time.monotonic() - started:.0f} s)")
    out = BENCH_DIR / "results" / "latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nnumbers kept in {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
