"""The cache a plugin gets as ``plugin.cache``: JSON values with a time to live."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Cache(Protocol):
    """Keys are namespaced per plugin by the kernel; values must be JSON-safe (no pickle:
    a cache shared between processes must never execute what it reads)."""

    async def get(self, key: str) -> Any | None:
        """The value, or ``None`` when missing or expired."""
        ...

    async def set(self, key: str, value: Any, *, ttl: float | None = None) -> None:
        """Store ``value`` for ``ttl`` seconds (``None``: until evicted). ``TypeError`` if not JSON-safe."""
        ...

    async def delete(self, key: str) -> None: ...
