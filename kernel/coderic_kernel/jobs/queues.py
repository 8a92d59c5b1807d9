"""Where the relay hands jobs: arq on Redis in production, an in-process queue otherwise."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Protocol

from .executor import JobExecutor
from .outbox import Entry

logger = logging.getLogger("coderic.jobs")
QUEUE_NAME = "coderic:queue"
RUN_FUNCTION = "coderic_run_outbox_entry"


class Queue(Protocol):
    async def enqueue(self, entry: Entry) -> None: ...
    async def depth(self) -> int: ...


def serialize(value: Any) -> bytes:
    """arq pickles by default; a shared queue must never unpickle what it reads."""
    return json.dumps(value, default=str).encode()


def deserialize(raw: bytes) -> Any:
    return json.loads(raw)


class LocalQueue:
    """The embedded default: jobs run in this process, ``concurrency`` at a time."""

    def __init__(self, executor: JobExecutor, concurrency: int = 4) -> None:
        self.executor = executor
        self.concurrency = concurrency
        self._items: asyncio.Queue[tuple[int, str]] = asyncio.Queue()

    async def enqueue(self, entry: Entry) -> None:
        self._items.put_nowait((entry.id, entry.job))

    async def depth(self) -> int:
        return self._items.qsize()

    async def consume(self) -> None:
        """Run jobs until cancelled; several of these run side by side."""
        while True:
            entry_id, job = await self._items.get()
            try:
                await self.executor.execute(entry_id, job)
            except Exception:  # the database may be briefly away: the lease brings the row back
                logger.exception("could not run outbox entry %s (%s)", entry_id, job)
            finally:
                self._items.task_done()


class ArqQueue:
    """Hands rows to arq. Each hand-off gets a job id of its own: arq keeps finished job ids
    for a while and would silently drop a reused one (a retried dead job, for example).
    Two runs of one row are harmless: ``Outbox.start`` lets only one of them through."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._pool: Any = None

    async def _connection(self) -> Any:
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            self._pool = await create_pool(
                RedisSettings.from_dsn(self.redis_url), job_serializer=serialize, job_deserializer=deserialize,
                default_queue_name=QUEUE_NAME, retry=0,
            )
        return self._pool

    async def enqueue(self, entry: Entry) -> None:
        pool = await self._connection()
        await pool.enqueue_job(RUN_FUNCTION, entry.id, entry.job, _job_id=f"outbox:{entry.id}:{uuid.uuid4().hex}")

    async def depth(self) -> int:
        pool = await self._connection()
        return int(await pool.zcard(QUEUE_NAME))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
