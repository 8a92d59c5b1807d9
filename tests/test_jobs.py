"""Jobs, the outbox, cron and events, the same on the embedded default and on Redis with
arq (issue 4). With Redis, the test runs a worker in-process next to the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from services import eventually

pytestmark = pytest.mark.coderic(plugins=["tasks"])


@pytest.fixture
async def tasks(coderic_kernel: Any, coderic_services: str) -> AsyncIterator[Any]:
    """The running test kernel; with Redis, plus an arq worker as ``coderic worker`` runs it."""
    worker = None
    if coderic_services == "redis":
        worker = asyncio.create_task(coderic_kernel.kernel.jobs.run_worker_forever())
    try:
        yield coderic_kernel
    finally:
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


async def effects(running: Any) -> dict[str, str]:
    response = await running.client.get("/api/v1/tasks/effects")
    return {e["key"]: e["kind"] for e in response.json()["effects"] if e["kind"] != "tick"}


def jobs_api(running: Any) -> Any:
    return running.plugin("tasks").jobs


async def outbox_row(running: Any, entry_id: str) -> Any:
    return await running.kernel.jobs.outbox.get(int(entry_id))


async def test_an_enqueued_job_runs_once_and_is_marked_done(tasks) -> None:
    entry_id = await jobs_api(tasks).enqueue("record", {"label": "hello"})

    async def done() -> bool:
        return (await outbox_row(tasks, entry_id)).status == "done"

    await eventually(done, what="the job")
    assert await effects(tasks) == {entry_id: "hello"}
    row = await outbox_row(tasks, entry_id)
    assert (row.attempts, row.last_error) == (1, None)


async def test_a_request_commits_its_jobs_and_events_with_its_change(tasks) -> None:
    created = await tasks.client.post("/api/v1/tasks/items", json={"name": "kept"})
    assert created.status_code == 201
    refused = await tasks.client.post("/api/v1/tasks/items", json={"name": "dropped", "fail_after_publish": True})
    assert refused.status_code == 409

    async def both_effects() -> bool:
        return len(await effects(tasks)) == 2

    await eventually(both_effects, what="the job and the durable event handler")
    seen = await effects(tasks)
    assert sorted(seen.values()) == ["created:kept", "item:kept"]
    jobs = {row.job for row in await tasks.kernel.jobs.outbox.list()}
    assert not any("dropped" in str(row.payload) for row in await tasks.kernel.jobs.outbox.list())
    assert {"tasks.record", "event:tasks.on_item_created"} <= jobs


async def test_a_failing_job_is_retried_with_backoff_until_it_succeeds(tasks) -> None:
    entry_id = await jobs_api(tasks).enqueue("flaky", {"succeed_on": 3})

    async def done() -> bool:
        return (await outbox_row(tasks, entry_id)).status == "done"

    await eventually(done, what="the flaky job")
    row = await outbox_row(tasks, entry_id)
    assert row.attempts == 3
    assert (await effects(tasks))[entry_id] == "flaky@3"


async def test_a_job_that_always_fails_ends_dead_and_can_be_retried(tasks) -> None:
    entry_id = await jobs_api(tasks).enqueue("always_fails")

    async def dead() -> bool:
        return (await outbox_row(tasks, entry_id)).status == "dead"

    await eventually(dead, timeout=30, what="dead-lettering")
    row = await outbox_row(tasks, entry_id)
    assert row.attempts == 3
    assert row.last_error == "RuntimeError: this job never works"
    assert [r.id for r in await tasks.kernel.jobs.outbox.list("dead")] == [int(entry_id)]
    assert await tasks.kernel.jobs.outbox.retry(int(entry_id))
    assert (await outbox_row(tasks, entry_id)).attempts == 0
    await eventually(dead, timeout=30, what="dead-lettering after the retry")
    assert not await tasks.kernel.jobs.outbox.retry(99999)


async def test_an_enqueue_key_makes_enqueueing_idempotent(tasks) -> None:
    first = await jobs_api(tasks).enqueue("record", {"label": "once"}, key="order-42")
    second = await jobs_api(tasks).enqueue("record", {"label": "twice"}, key="order-42")
    assert first == second
    other = await jobs_api(tasks).enqueue("record", {"label": "other"}, key="order-43")
    assert other != first


async def test_a_delayed_job_waits_for_its_time(tasks) -> None:
    entry_id = await jobs_api(tasks).enqueue("record", {"label": "later"}, delay=0.6)
    await asyncio.sleep(0.3)
    assert (await outbox_row(tasks, entry_id)).status == "pending"

    async def done() -> bool:
        return (await outbox_row(tasks, entry_id)).status == "done"

    await eventually(done, what="the delayed job")


async def test_enqueue_refuses_unknown_jobs_and_unsafe_payloads(tasks) -> None:
    with pytest.raises(ValueError, match="unknown job 'nope'; jobs of enabled plugins: .*tasks.record"):
        await jobs_api(tasks).enqueue("nope")
    with pytest.raises(TypeError, match="JSON-safe"):
        await jobs_api(tasks).enqueue("record", {"when": object()})
    with pytest.raises(ValueError, match="negative"):
        await jobs_api(tasks).enqueue("record", delay=-1)


async def test_events_reach_durable_handlers_once_and_broadcast_handlers_live(tasks) -> None:
    from coderic_tasks.plugin import SEEN

    SEEN.clear()
    event = await tasks.plugin("tasks").events.publish("tasks.item_created", {"id": 7, "name": "direct"})

    async def handled() -> bool:
        return f"event:{event.id}" in await effects(tasks) and any(e.id == event.id for e in SEEN)

    await eventually(handled, what="both deliveries")
    assert [e.data for e in SEEN if e.id == event.id] == [{"id": 7, "name": "direct"}]
    assert SEEN[-1].source == "tasks"


async def test_events_are_named_after_their_plugin_and_json_safe(tasks) -> None:
    events = tasks.plugin("tasks").events
    with pytest.raises(ValueError, match="tasks.<what>"):
        await events.publish("projects.created", {})
    with pytest.raises(TypeError, match="JSON-safe"):
        await events.publish("tasks.odd", {"value": {1, 2}})


async def test_cron_jobs_run_on_their_schedule(tasks) -> None:
    async def ticked_twice() -> bool:
        response = await tasks.client.get("/api/v1/tasks/effects")
        return sum(e["kind"] == "tick" for e in response.json()["effects"]) >= 2

    await eventually(ticked_twice, timeout=8, what="two ticks of an every-second cron job")


async def test_job_metrics_count_outcomes_and_backlog(tasks) -> None:
    entry_id = await jobs_api(tasks).enqueue("record", {"label": "measured"})

    async def done() -> bool:
        return (await outbox_row(tasks, entry_id)).status == "done"

    await eventually(done, what="the job")
    text = (await tasks.client.get("/metrics")).text
    assert 'coderic_jobs_total{job="tasks.record",outcome="done"}' in text
    assert "coderic_outbox_backlog" in text and "coderic_job_duration_seconds_bucket" in text
