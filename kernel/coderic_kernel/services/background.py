"""Loops a plugin runs beside the server for as long as its lifespan lasts.

Loops that wait with a timeout use ``asyncio.timeout``, never ``asyncio.wait_for``: on Python
3.11, a cancellation arriving as the awaited thing completes is swallowed by ``wait_for``
(CPython gh-86296), and a loop cancelled at that moment runs on forever while its owner waits
for it to end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from ..errors import describe


@asynccontextmanager
async def running(*loops: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """Run ``loops`` as tasks inside the block; cancel them and wait for them at its end."""
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_until_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait for ``event`` at most ``seconds``; whether it was set. Cancellation always ends it."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def every(seconds: float, work: Callable[[], Awaitable[Any]], logger: logging.Logger, what: str) -> None:
    """Await ``work()`` every ``seconds`` until cancelled. A failure (the database briefly away)
    is logged as ``could not <what>`` and the next round tries again."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except Exception as exc:
            logger.warning("could not %s: %s", what, describe(exc))
