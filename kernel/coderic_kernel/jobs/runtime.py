"""The jobs system of one kernel: how each process takes part in it.

- API process without Redis (the embedded default): relay, in-process queue and cron all
  run here, so ``coderic serve`` alone runs every job.
- API process with Redis: only writes outbox rows (and listens for broadcast events).
- ``coderic worker`` with Redis: relay, arq worker and arq's cron.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import StartupError, describe
from ..services.events import broadcaster
from .cron import cron_runner, run_schedule, schedule_of
from .executor import JobExecutor
from .outbox import Outbox
from .queues import RUN_FUNCTION, QUEUE_NAME, ArqQueue, LocalQueue, deserialize, serialize
from .registry import BROADCAST_JOB, RegisteredJob, collect_jobs, event_from_payload
from .relay import OutboxRelay

if TYPE_CHECKING:
    from coderic_sdk import Event

    from ..kernel import Kernel

logger = logging.getLogger("coderic.jobs")
#: How often an idle arq worker looks at the queue (arq's default, 0.5 s, caps a worker near
#: 200 jobs/s and delays every job by up to half a second).
ARQ_POLL_SECONDS = 0.05


class JobsRuntime:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.metrics = kernel.metrics
        self.registry = collect_jobs(kernel.hooks, list(kernel.contexts.values()))
        self.outbox = Outbox()
        self.executor = JobExecutor(self.outbox, self.registry, self.metrics)
        self.broadcaster = broadcaster(self.registry, kernel.redis)
        self.registry.jobs[BROADCAST_JOB] = RegisteredJob(
            BROADCAST_JOB, kernel.contexts["kernel"], self._broadcast, max_attempts=3, timeout=30
        )
        self._relay: OutboxRelay | None = None
        #: Called with every event published in this process (the test harness records them).
        self.observers: list[Callable[[Event], None]] = []

    async def _broadcast(self, ctx: Any, payload: Mapping[str, Any]) -> None:
        await self.broadcaster.publish(event_from_payload(payload))

    def in_transaction(self) -> bool:
        return self.kernel.database.engine.current_transaction.get() is not None

    def nudge(self) -> None:
        if self._relay is not None:
            self._relay.nudge()

    @asynccontextmanager
    async def in_process(self) -> AsyncIterator[None]:
        """What an API process runs in the background (see the module docstring)."""
        tasks: list[asyncio.Task[None]] = []
        if self.kernel.redis is None:
            queue = LocalQueue(self.executor)
            self._relay = OutboxRelay(self.outbox, queue, self.metrics, self.kernel.config.kernel.outbox_poll_seconds)
            tasks += [asyncio.create_task(queue.consume()) for _ in range(queue.concurrency)]
            tasks.append(asyncio.create_task(self._relay.run()))
            tasks.append(asyncio.create_task(run_schedule(self.registry.crons, self.metrics)))
        elif any(h.handler.delivery == "broadcast" for h in self.registry.handlers):
            tasks.append(asyncio.create_task(self.broadcaster.listen()))
        try:
            yield
        finally:
            self._relay = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run_worker_forever(self, *, burst: bool = False, max_jobs: int = 10) -> None:
        """``run_worker``, started again whenever it loses Redis (1 s, doubling up to 30 s)
        instead of ending: the outbox keeps the work, and it drains once Redis is back."""
        from redis.exceptions import RedisError

        delay = 1.0
        while True:
            try:
                await self.run_worker(burst=burst, max_jobs=max_jobs)
                return
            except (RedisError, OSError) as exc:
                if burst:
                    raise
                logger.warning("worker lost Redis (%s); starting again in %.0fs", describe(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def run_worker(self, *, burst: bool = False, max_jobs: int = 10) -> None:
        """``coderic worker``: relay plus an arq worker running every job and cron job."""
        redis_url = self.kernel.config.kernel.redis_url
        if redis_url is None:
            raise StartupError("the worker needs redis_url; without Redis, 'coderic serve' runs jobs in-process")
        from arq.connections import RedisSettings
        from arq.cron import cron
        from arq.worker import Worker, func

        queue = ArqQueue(redis_url)
        self._relay = OutboxRelay(self.outbox, queue, self.metrics, self.kernel.config.kernel.outbox_poll_seconds)
        executor = self.executor

        async def run_outbox_entry(ctx: Mapping[str, Any], entry_id: int, job: str) -> str:
            return await executor.execute(entry_id, job)

        cron_jobs = []
        for entry in self.registry.crons:
            runner = cron_runner(entry, self.metrics)

            async def run_cron(ctx: Mapping[str, Any], runner: Any = runner) -> None:
                await runner(ctx.get("job_try_start") or _scheduled_now())

            cron_jobs.append(cron(run_cron, name=f"cron:{entry.name}", timeout=entry.cron.timeout, **schedule_of(entry)))
        worker = Worker(
            functions=[func(run_outbox_entry, name=RUN_FUNCTION, timeout=self.registry.max_timeout + 1, max_tries=1000)],
            cron_jobs=cron_jobs,
            redis_settings=RedisSettings.from_dsn(redis_url),
            queue_name=QUEUE_NAME,
            job_serializer=serialize,
            job_deserializer=deserialize,
            burst=burst,
            max_jobs=max_jobs,
            poll_delay=ARQ_POLL_SECONDS,
            keep_result=60,
            handle_signals=False,
        )
        relay = asyncio.create_task(self._relay.run())
        try:
            await worker.async_run()
        finally:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
            await worker.close()
            await queue.close()
            self._relay = None


def _scheduled_now() -> Any:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)
