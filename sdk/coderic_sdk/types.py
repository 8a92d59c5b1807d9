"""Plain data the kernel and plugins exchange: who a plugin is, what it contributes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What is known about a plugin without running its code (from packaging metadata)."""

    name: str
    version: str
    description: str
    distribution: str
    requires: tuple[str, ...] = ()
    sdk_range: str = ""
    builtin: bool = False
    hooks: tuple[str, ...] = field(default=(), compare=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "distribution": self.distribution,
            "requires": list(self.requires),
            "sdk_range": self.sdk_range,
            "builtin": self.builtin,
            "hooks": list(self.hooks),
        }


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """A readiness probe: ``check`` returns when the backend answers and raises when it does not.

    ``name`` identifies the backend in ``/readyz`` and ``coderic doctor`` (``database``, ``redis``).
    """

    name: str
    check: Callable[[], Awaitable[None]]
