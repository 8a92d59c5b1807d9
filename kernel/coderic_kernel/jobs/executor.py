"""Run one outbox row: at most once per attempt, outcome recorded, failures retried with
exponential backoff and then dead-lettered."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

from coderic_sdk import PluginContext

from ..errors import describe
from ..observability.metrics import Metrics
from .outbox import Outbox
from .registry import JobRegistry

logger = logging.getLogger("coderic.jobs")
LEASE_GRACE_SECONDS = 5.0  # less than arq's own 10 s, so arq's retry of a dead worker's job finds it free
MAX_BACKOFF_SECONDS = 3600.0


@dataclass(frozen=True)
class JobContextImpl:
    plugin: PluginContext
    job_id: str
    attempt: int


class JobExecutor:
    def __init__(self, outbox: Outbox, registry: JobRegistry, metrics: Metrics) -> None:
        self.outbox = outbox
        self.registry = registry
        self.metrics = metrics

    def lease_for(self, job: str) -> float:
        registered = self.registry.jobs.get(job)
        return (registered.timeout if registered else self.registry.max_timeout) + LEASE_GRACE_SECONDS

    async def execute(self, entry_id: int, job_hint: str = "") -> str:
        """Run the row; returns the outcome: done, retry, dead or skipped."""
        entry = await self.outbox.start(entry_id, self.lease_for(job_hint))
        if entry is None:
            return "skipped"  # done already, dead, or another worker holds it
        job = self.registry.jobs.get(entry.job)
        if job is None:
            self.metrics.observe_job(entry.job, "dead", 0.0)
            await self.outbox.fail(entry.id, f"no enabled plugin provides job {entry.job!r}", None)
            return "dead"
        started = time.perf_counter()
        try:
            async with asyncio.timeout(job.timeout):
                await job.run(JobContextImpl(job.plugin, str(entry.id), entry.attempts), entry.payload)
        except Exception as exc:
            elapsed = time.perf_counter() - started
            error = "timed out" if isinstance(exc, TimeoutError) else describe(exc)
            if entry.attempts >= entry.max_attempts:
                self.metrics.observe_job(entry.job, "dead", elapsed)
                await self.outbox.fail(entry.id, error, None)
                logger.error("job %s (%s) failed for good after %d attempts: %s", entry.job, entry.id, entry.attempts, error)
                return "dead"
            delay = min(job.backoff * 2 ** (entry.attempts - 1), MAX_BACKOFF_SECONDS) * random.uniform(0.8, 1.2)
            self.metrics.observe_job(entry.job, "retry", elapsed)
            await self.outbox.fail(entry.id, error, delay)
            logger.warning("job %s (%s) attempt %d failed, retry in %.1fs: %s", entry.job, entry.id, entry.attempts, delay, error)
            return "retry"
        # Counted before the row says done, so whoever sees "done" also sees the count.
        self.metrics.observe_job(entry.job, "done", time.perf_counter() - started)
        await self.outbox.succeed(entry.id)
        return "done"
