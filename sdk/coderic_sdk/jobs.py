"""Background jobs: declared by plugins, run by workers, fed through a durable outbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .services import PluginContext


@runtime_checkable
class JobContext(Protocol):
    """What a job handler receives besides its payload."""

    @property
    def plugin(self) -> PluginContext: ...

    @property
    def job_id(self) -> str:
        """Stable across retries: use it as the idempotency key of the job's side effect."""
        ...

    @property
    def attempt(self) -> int:
        """1 on the first run."""
        ...


JobHandler = Callable[[JobContext, Mapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Job:
    """A job named ``<plugin>.<name>``. Jobs may run more than once (a worker can die after
    the side effect and before recording success): make the effect idempotent with
    ``ctx.job_id``. Failures are retried with exponential backoff, then dead-lettered."""

    name: str
    handler: JobHandler
    max_attempts: int = 5
    timeout: float = 300.0
    backoff: float = 2.0  # seconds before the second attempt; doubles each time


@dataclass(frozen=True, slots=True)
class CronJob:
    """Run ``handler`` on a schedule, in one worker at a time. Fields follow cron: ``None``
    means every value; e.g. ``minute=0, hour=3`` is daily at 03:00 UTC (``second`` is 0
    unless set, so the default schedule is every minute)."""

    name: str
    handler: Callable[[JobContext], Awaitable[None]]
    second: int | set[int] | None = 0
    minute: int | set[int] | None = None
    hour: int | set[int] | None = None
    day: int | set[int] | None = None
    weekday: int | set[int] | None = None  # 0 is Monday
    month: int | set[int] | None = None
    timeout: float = 300.0


@runtime_checkable
class Jobs(Protocol):
    async def enqueue(
        self, job: str, payload: Mapping[str, Any] | None = None, *, delay: float = 0, key: str | None = None
    ) -> str:
        """Schedule ``job`` (``<plugin>.<name>``) with a JSON-safe payload; return its id.

        Written to the outbox in the current database transaction, if any: the job exists if
        and only if the change that caused it commits. ``key`` makes the call idempotent: a
        second enqueue with the same key returns the first job's id.
        """
        ...
