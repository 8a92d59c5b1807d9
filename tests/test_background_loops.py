"""Background loops end when cancelled, even when their wake-up and the cancellation arrive
together: ``asyncio.wait_for`` swallows that cancellation on Python 3.11, and a kernel's
shutdown then waited forever for the outbox relay (a hang seen in CI)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from coderic_kernel.jobs.relay import OutboxRelay
from coderic_kernel.services.background import wait_until_set

ROUNDS = 200


class IdleOutbox:
    async def claim_due(self, limit: int, lease: float) -> list[Any]:
        return []

    async def release(self, ids: list[int]) -> None:
        pass

    async def backlog(self) -> tuple[int, float]:
        return 0, 0.0


class IdleQueue:
    async def depth(self) -> int:
        return 0


def idle_relay() -> OutboxRelay:
    gauge = SimpleNamespace(set=lambda value: None)
    metrics = SimpleNamespace(outbox_backlog=gauge, outbox_oldest_age=gauge, queue_depth=gauge)
    return OutboxRelay(IdleOutbox(), IdleQueue(), metrics, poll_seconds=0.5)  # type: ignore[arg-type]


async def cancel_as_it_wakes(start: Any, wake: Any) -> int:
    """The first of ``ROUNDS`` loops to outlive a cancellation sent just as it was woken, or 0."""
    for round_ in range(ROUNDS):
        task = asyncio.create_task(start())
        for _ in range(3):
            await asyncio.sleep(0)  # let it reach its wait
        wake()
        for _ in range(round_ % 4):  # cancel at each moment of the wake-up
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=1)
        if not done:
            task.cancel()
            return round_ + 1
    return 0


async def test_waiting_for_an_event_ends_when_cancelled_as_the_event_is_set() -> None:
    event = asyncio.Event()

    async def wait_forever() -> None:
        while True:
            await wait_until_set(event, 0.5)
            event.clear()

    assert await cancel_as_it_wakes(wait_forever, event.set) == 0


async def test_the_outbox_relay_ends_when_cancelled_as_it_is_nudged() -> None:
    relays: list[OutboxRelay] = []

    def start() -> Any:
        relays.append(idle_relay())
        return relays[-1].run()

    assert await cancel_as_it_wakes(start, lambda: relays[-1].nudge()) == 0


async def test_waiting_returns_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert await wait_until_set(event, 0.01) is False
    event.set()
    assert await wait_until_set(event, 0.01) is True
