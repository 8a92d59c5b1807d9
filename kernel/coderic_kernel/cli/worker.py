"""``coderic worker`` and ``coderic jobs``: run background jobs and look after them."""

from __future__ import annotations

import asyncio
import signal

import click

from ..kernel import Kernel
from ..observability.process import prepare_process
from .state import CliState, pass_state


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty (for scripts and tests).")
@click.option("--max-jobs", default=10, show_default=True, type=click.IntRange(1), help="Jobs run at once.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), help="Serve Prometheus metrics on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Interface for --metrics-port.")
@pass_state
def worker(state: CliState, burst: bool, max_jobs: int, metrics_port: int | None, metrics_host: str) -> None:
    """Run every enabled plugin's jobs and cron jobs from the Redis queue."""
    kernel = state.kernel()
    prepare_process(kernel.config.kernel)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=kernel.metrics.registry)
    asyncio.run(_work(kernel, burst, max_jobs))


async def _work(kernel: Kernel, burst: bool, max_jobs: int) -> None:
    async with kernel.started():
        task = asyncio.create_task(kernel.jobs.run_worker_forever(burst=burst, max_jobs=max_jobs))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):  # finish the jobs in hand, then stop
            loop.add_signal_handler(signum, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            pass
    click.echo("worker stopped", err=True)


@click.group()
def jobs() -> None:
    """Inspect and retry background jobs (the outbox)."""


@jobs.command("list")
@click.option(
    "--status", type=click.Choice(["pending", "queued", "running", "done", "dead"]), help="Only rows in this state."
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@pass_state
def list_jobs(state: CliState, status: str | None, limit: int) -> None:
    """List outbox rows, newest first: id, job, status, attempts, last error."""

    async def run() -> None:
        kernel = state.kernel()
        async with kernel.opened():
            await kernel.settle_migrations(False)  # the outbox table must exist
            entries = await kernel.jobs.outbox.list(status, limit)
        click.echo(f"{'ID':>8}  {'STATUS':<8} {'TRIES':>5}  {'JOB':<32} LAST ERROR")
        for entry in entries:
            tries = f"{entry.attempts}/{entry.max_attempts}"
            click.echo(f"{entry.id:>8}  {entry.status:<8} {tries:>5}  {entry.job:<32} {entry.last_error or ''}")

    asyncio.run(run())


@jobs.command("retry")
@click.argument("entry_ids", metavar="ID...", nargs=-1, required=True, type=int)
@pass_state
def retry_jobs(state: CliState, entry_ids: tuple[int, ...]) -> int:
    """Give dead jobs a fresh set of attempts."""

    async def run() -> int:
        kernel = state.kernel()
        failed = 0
        async with kernel.opened():
            await kernel.settle_migrations(False)
            for entry_id in entry_ids:
                if await kernel.jobs.outbox.retry(entry_id):
                    click.echo(f"{entry_id}: queued again")
                else:
                    entry = await kernel.jobs.outbox.get(entry_id)
                    click.echo(f"{entry_id}: not retried ({'no such job' if entry is None else entry.status})", err=True)
                    failed += 1
        return 1 if failed else 0

    return asyncio.run(run())
