"""Fault tests of the jobs system against real PostgreSQL and Redis servers (issue 4):
Redis stops while requests create work; a worker is killed with SIGKILL mid-job."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.testing import start_kernel
from services import RedisServer, WorkerProcess, eventually, private_redis  # noqa: F401

pytestmark = pytest.mark.parametrize("coderic_database", ["postgresql"], indirect=True)


async def effect_keys(running: Any) -> list[str]:
    response = await running.client.get("/api/v1/tasks/effects")
    return [e["key"] for e in response.json()["effects"] if e["kind"] != "tick"]


async def test_requests_succeed_while_redis_is_down_and_their_work_runs_once_after(
    coderic_database: str, private_redis: RedisServer, tmp_path: Path
) -> None:
    config = {"redis_url": private_redis.url, "outbox_poll_seconds": 0.2}
    async with start_kernel(plugins=["tasks"], config=config, database=coderic_database, workdir=tmp_path) as api:
        private_redis.stop()
        for name in ("a", "b", "c"):
            response = await api.client.post("/api/v1/tasks/items", json={"name": name})
            assert response.status_code == 201, response.text
        await asyncio.sleep(0.5)
        assert await effect_keys(api) == []  # nothing can run without the queue
        assert all(row.status in {"pending", "queued"} for row in await api.kernel.jobs.outbox.list())

        private_redis.start()
        worker = asyncio.create_task(api.kernel.jobs.run_worker_forever())
        try:

            async def drained() -> bool:
                return all(row.status == "done" for row in await api.kernel.jobs.outbox.list())

            await eventually(drained, timeout=20, what="draining the outbox after Redis came back")
            keys = await effect_keys(api)
            assert len(keys) == 6 == len(set(keys))  # 3 jobs + 3 durable event deliveries, each once
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


async def test_a_worker_killed_mid_job_leaves_the_job_to_another_and_the_effect_happens_once(
    coderic_database: str, private_redis: RedisServer, tmp_path: Path
) -> None:
    config = {"redis_url": private_redis.url, "outbox_poll_seconds": 0.2}
    async with start_kernel(plugins=["tasks"], config=config, database=coderic_database, workdir=tmp_path) as api:
        env = {
            "CODERIC_DATABASE_URL": api.kernel.config.kernel.database_url.url,
            "CODERIC_REDIS_URL": private_redis.url,
            "CODERIC_PLUGINS": "tasks",
            "CODERIC_OUTBOX_POLL_SECONDS": "0.2",
            "CODERIC_LOG_LEVEL": "WARNING",
        }
        first = WorkerProcess(env, tmp_path)
        second = WorkerProcess(env, tmp_path)
        first.start()
        try:
            entry_id = await api.plugin("tasks").jobs.enqueue("effect_then_wait", {"seconds": 4})

            async def effect_done() -> bool:
                return entry_id in await effect_keys(api)

            await eventually(effect_done, timeout=20, what="the first worker's effect")
            first.kill()  # mid-job: the effect is written, success is not recorded
            row = await api.kernel.jobs.outbox.get(int(entry_id))
            assert (row.status, row.attempts) == ("running", 1)

            second.start()

            async def finished() -> bool:
                return (await api.kernel.jobs.outbox.get(int(entry_id))).status == "done"

            await eventually(finished, timeout=40, what="another worker finishing the job")
            row = await api.kernel.jobs.outbox.get(int(entry_id))
            assert row.attempts == 2
            assert (await effect_keys(api)).count(entry_id) == 1
        finally:
            first.kill()
            second.stop()
