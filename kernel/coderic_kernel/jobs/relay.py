"""Move due outbox rows to the queue, and keep the backlog metrics current.

If the queue is unreachable (Redis down), rows stay in the outbox and the relay keeps
trying: requests that create work never depend on Redis being up.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..errors import describe
from ..observability.metrics import Metrics
from ..services.background import wait_until_set
from .outbox import Outbox
from .queues import Queue

logger = logging.getLogger("coderic.jobs")
QUEUED_LEASE_SECONDS = 60.0  # how long a row may wait in the queue before it is handed again
BATCH = 100
COMPLAIN_EVERY_SECONDS = 30.0
MEASURE_EVERY_SECONDS = 5.0  # backlog metrics: two queries, not worth running at every poll


class OutboxRelay:
    def __init__(self, outbox: Outbox, queue: Queue, metrics: Metrics, poll_seconds: float) -> None:
        self.outbox = outbox
        self.queue = queue
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._failing_since: float | None = None
        self._last_complaint = 0.0
        self._measured_at = float("-inf")

    def nudge(self) -> None:
        """New work was committed: look now rather than at the next poll."""
        self._wake.set()

    async def tick(self) -> int:
        """Hand every due row to the queue; return how many were handed."""
        entries = await self.outbox.claim_due(BATCH, QUEUED_LEASE_SECONDS)
        handed: set[int] = set()
        try:
            for entry in entries:
                await self.queue.enqueue(entry)
                handed.add(entry.id)
        finally:
            await self.outbox.release([e.id for e in entries if e.id not in handed])
        return len(entries)

    async def measure(self) -> None:
        backlog, age = await self.outbox.backlog()
        self.metrics.outbox_backlog.set(backlog)
        self.metrics.outbox_oldest_age.set(age)
        self.metrics.queue_depth.set(await self.queue.depth())

    async def run(self) -> None:
        """Relay until cancelled."""
        while True:
            handed = 0
            try:
                handed = await self.tick()
                if time.monotonic() - self._measured_at >= MEASURE_EVERY_SECONDS:
                    self._measured_at = time.monotonic()
                    await self.measure()
                if self._failing_since is not None:
                    logger.warning("outbox relay recovered after %.0fs", time.monotonic() - self._failing_since)
                    self._failing_since = None
            except Exception as exc:
                self._complain(exc)
            if handed >= BATCH:
                continue
            await wait_until_set(self._wake, self.poll_seconds)
            self._wake.clear()

    def _complain(self, exc: Exception) -> None:
        moment = time.monotonic()
        if self._failing_since is None:
            self._failing_since = moment
        if moment - self._last_complaint >= COMPLAIN_EVERY_SECONDS:
            self._last_complaint = moment
            logger.warning("outbox relay cannot reach the queue or the database: %s; retrying", describe(exc))
