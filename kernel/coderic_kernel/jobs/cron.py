"""Cron jobs: arq's scheduler in workers; the same schedule computed here when embedded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from arq.cron import next_cron

from ..errors import describe
from ..observability.metrics import Metrics
from .executor import JobContextImpl
from .registry import RegisteredCron

logger = logging.getLogger("coderic.jobs")


def schedule_of(entry: RegisteredCron) -> dict[str, Any]:
    cron = entry.cron
    return {
        "month": cron.month, "day": cron.day, "weekday": cron.weekday, "hour": cron.hour, "minute": cron.minute,
        "second": cron.second,
    }


def cron_runner(entry: RegisteredCron, metrics: Metrics) -> Callable[[datetime], Awaitable[None]]:
    """Run one scheduled occurrence, recording its outcome; errors are logged, not raised."""

    async def run(scheduled: datetime) -> None:
        started = time.perf_counter()
        context = JobContextImpl(entry.plugin, f"{entry.name}@{scheduled.isoformat()}", 1)
        try:
            async with asyncio.timeout(entry.cron.timeout):
                await entry.cron.handler(context)
        except Exception as exc:
            metrics.observe_job(entry.name, "failed", time.perf_counter() - started)
            logger.error("cron job %s failed: %s", entry.name, describe(exc))
        else:
            metrics.observe_job(entry.name, "done", time.perf_counter() - started)

    return run


async def run_schedule(entries: list[RegisteredCron], metrics: Metrics) -> None:
    """The embedded scheduler: sleep until the next occurrence, run it, repeat until cancelled."""
    if not entries:
        return
    runners = [(entry, cron_runner(entry, metrics)) for entry in entries]
    upcoming = {entry.name: next_cron(_now(), **schedule_of(entry), microsecond=0) for entry, _ in runners}
    running: set[asyncio.Task[None]] = set()
    while True:
        soonest = min(upcoming.values())
        await asyncio.sleep(max((soonest - _now()).total_seconds(), 0))
        for entry, runner in runners:
            if upcoming[entry.name] <= _now():
                task = asyncio.create_task(runner(upcoming[entry.name]))
                running.add(task)
                task.add_done_callback(running.discard)
                upcoming[entry.name] = next_cron(upcoming[entry.name], **schedule_of(entry), microsecond=0)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # arq's next_cron works on naive UTC
