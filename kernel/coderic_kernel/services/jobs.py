"""``plugin.jobs``: enqueue a job through the outbox, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..jobs.registry import full_name

if TYPE_CHECKING:
    from ..jobs.runtime import JobsRuntime


class PluginJobs:
    def __init__(self, runtime: JobsRuntime, plugin: str) -> None:
        self.runtime = runtime
        self.plugin = plugin

    async def enqueue(
        self, job: str, payload: Mapping[str, Any] | None = None, *, delay: float = 0, key: str | None = None
    ) -> str:
        jobs = self.runtime.registry.jobs
        name = job if job in jobs else full_name(self.plugin, job)
        registered = jobs.get(name)
        if registered is None:
            known = ", ".join(sorted(n for n in jobs if not n.startswith("event:"))) or "none"
            raise ValueError(f"unknown job {job!r}; jobs of enabled plugins: {known}")
        if delay < 0:
            raise ValueError("delay must not be negative")
        entry_id = await self.runtime.outbox.add(  # refuses a payload that is not JSON-safe
            name, dict(payload or {}), delay=delay, key=None if key is None else f"{name}:{key}", max_attempts=registered.max_attempts
        )
        self.runtime.nudge()
        return str(entry_id)
