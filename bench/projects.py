"""Requests per second on the projects plugin's list (GET /api/v1/projects) and detail
(GET /api/v1/projects/{id}) with 10,000 projects, against bare Starlette + Piccolo running the
same queries (bench/_bare_projects.py) on the same SQLite file, both under uvicorn, loaded from a
separate process in interleaved rounds. Target: kernel >= 0.6 x bare for each. Always exits 0.

Rate limits are off in the kernel (one client address sending thousands of requests would be
limited, which is the point of limits, not what is measured here)."""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

from _servers import (
    BenchmarkError,
    clean_env,
    exit_on_sigterm,
    free_port,
    kernel_env,
    kernel_uvicorn_argv,
    median,
    script,
    serving,
    spread,
)
from request_overhead import column, interleaved, load, medians

TARGET = 0.6
BARE_APP = "_bare_projects:app"
UVICORN = ("--workers", "1", "--log-level", "warning", "--no-access-log")
TAGS = ("python", "web", "rust", "docs", "data", "ml", "go", "design", "devops", "mobile")


def seed(database: Path, count: int) -> int:
    """``count`` public projects (a few private, archived and deleted ones among them), two tags
    and a skill each, an owner each; returns the id the detail benchmark reads."""
    rng = random.Random(7)
    now = datetime.now(timezone.utc)
    with sqlite3.connect(database) as db:
        projects, labels, members = [], [], []
        for i in range(1, count + 1):
            at = (now - timedelta(minutes=count - i)).isoformat()
            visibility = "private" if i % 50 == 0 else "public"
            archived = at if i % 97 == 0 else None
            deleted = at if i % 211 == 0 else None
            projects.append((i, f"project-{i}", f"Project {i}", f"Summary of project {i}", "## About\n\nText " * 20,
                             "<h2>About</h2>\n<p>Text</p>" * 20, "active", visibility, f"{i:032x}",
                             rng.randint(0, 500), at, at, archived, deleted))
            for kind, value in (("tag", TAGS[i % 10]), ("tag", TAGS[(i * 7) % 10]), ("skill", TAGS[(i * 3) % 10])):
                labels.append((i, kind, value))
            members.append((i, f"{i:032x}", "owner", at))
        db.executemany(
            "INSERT INTO projects_project (id, slug, name, summary, description, description_html, status, visibility,"
            " created_by, followers_count, created_at, updated_at, archived_at, deleted_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", projects)
        db.executemany("INSERT INTO projects_label (project, kind, value) VALUES (?, ?, ?)", labels)
        db.executemany("INSERT INTO projects_member (project, user_id, role, joined_at) VALUES (?, ?, ?, ?)", members)
    return count // 2 + 1


def measure(count: int, rounds: int, requests: int, concurrency: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="coderic-bench-") as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        env = {**kernel_env(workdir, plugins=["projects"]), "CODERIC_RATE_LIMIT_ENABLED": "false",
               "CODERIC_LOG_LEVEL": "WARNING"}
        migrated = subprocess.run([script("coderic"), "migrate"], env=env, cwd=workdir, capture_output=True, text=True)
        if migrated.returncode != 0:
            raise BenchmarkError(f"coderic migrate failed: {migrated.stderr.strip()[-2000:]}")
        detail_id = seed(workdir / "coderic.db", count)
        paths = {"list": "/api/v1/projects", "detail": f"/api/v1/projects/{detail_id}"}
        bare_port, kernel_port = free_port(), free_port()
        bare_argv = [sys.executable, "-m", "uvicorn", BARE_APP, "--host", "127.0.0.1", "--port", str(bare_port), *UVICORN]
        servers = {
            "bare": stack.enter_context(serving(bare_argv, bare_port, clean_env(
                CODERIC_BENCH_DB=str(workdir / "coderic.db")), workdir)),
            "kernel": stack.enter_context(serving(kernel_uvicorn_argv(kernel_port), kernel_port, env, workdir)),
        }
        runs: dict[str, dict[str, list[dict[str, float]]]] = {}
        for endpoint, path in paths.items():
            for child in servers.values():  # warm-up, not counted
                load(child, max(requests // 5, 100), concurrency, seconds, path)
            runs[endpoint] = interleaved(
                {name: partial(load, child, requests, concurrency, seconds, path) for name, child in servers.items()},
                rounds)
    results: dict[str, Any] = {"projects": count, "rounds": rounds, "requests": requests, "concurrency": concurrency,
                               "target": TARGET, "endpoints": {}}
    for endpoint in paths:
        rps = column(runs[endpoint], "rps")
        bare, kernel = median(rps["bare"]), median(rps["kernel"])
        cpus = medians(column(runs[endpoint], "server_cpu_us"))
        results["endpoints"][endpoint] = {
            "path": paths[endpoint], "rps": rps, "median_rps": {"bare": bare, "kernel": kernel},
            "ratio": kernel / bare, "median_server_cpu_us": cpus,
            "cpu_ratio": cpus["bare"] / cpus["kernel"] if len(cpus) == 2 else None, "passed": kernel / bare >= TARGET,
        }
    return results


def report(result: dict[str, Any]) -> None:
    print(f"projects: {result['projects']:,} projects on SQLite, {result['rounds']} interleaved rounds of "
          f"{result['requests']} requests, {result['concurrency']} keep-alive connections, as a guest")
    for endpoint, data in result["endpoints"].items():
        print(f"  {endpoint}: GET {data['path']}")
        for name in ("bare", "kernel"):
            cpu = data["median_server_cpu_us"].get(name)
            shown = f"; server CPU {cpu:.0f} us/request" if cpu is not None else ""
            print(f"    {name:<8} median {data['median_rps'][name]:>8.0f} req/s  (runs {spread(data['rps'][name])}){shown}")
        verdict = "PASS" if data["passed"] else "BELOW TARGET"
        print(f"    ratio kernel/bare = {data['ratio']:.3f}  (target >= {TARGET})  {verdict}")
        if data["cpu_ratio"] is not None:
            print(f"    same ratio from server CPU per request (bare/kernel) = {data['cpu_ratio']:.3f}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=10_000, help="projects in the database")
    parser.add_argument("--rounds", type=int, default=5, help="measured runs per server and endpoint (interleaved)")
    parser.add_argument("--requests", type=int, default=4_000, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit of one run")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    result = measure(args.projects, args.rounds, args.requests, args.concurrency, args.seconds)
    report(result)
    return result


if __name__ == "__main__":
    main()
