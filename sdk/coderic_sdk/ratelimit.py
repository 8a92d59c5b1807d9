"""Rate-limit policies and decisions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

KeyPart = Literal["ip", "user", "route", "plugin"]
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """At most ``limit`` requests per ``period`` seconds for each key.

    ``key`` names what a bucket is per: any of client ``ip``, ``user`` (signed-in user, or the
    ip for anonymous callers), ``route`` and ``plugin``. ``burst`` lets that many requests
    through at once (default: ``limit``). A ``sensitive`` policy (login, password reset)
    fails closed with 503 when its store is unreachable; others fail open and log.
    A plugin's policies are named ``<plugin>.<name>``.
    """

    name: str
    limit: int
    period: float
    key: tuple[KeyPart, ...] = ("ip",)
    burst: int | None = None
    sensitive: bool = False

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period <= 0:
            raise ValueError(f"rate limit {self.name!r}: limit and period must be positive")
        if not self.key or set(self.key) - {"ip", "user", "route", "plugin"}:
            raise ValueError(f"rate limit {self.name!r}: key must combine ip, user, route and plugin")

    @classmethod
    def parse(cls, name: str, rate: str, **options: object) -> RateLimitPolicy:
        """``RateLimitPolicy.parse("projects.create", "10/minute")`` (also ``100/5 minutes``)."""
        match = _RATE.match(rate)
        if match is None:
            raise ValueError(f"rate limit {name!r}: {rate!r} is not like '10/minute' or '100/5 minutes'")
        count, multiple, unit = match.groups()
        return cls(name, int(count), float(int(multiple or 1) * _SECONDS[unit]), **options)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the bucket is full again
    retry_after: float  # seconds until one more request is allowed (0 when allowed)


@runtime_checkable
class RateLimits(Protocol):
    """Checks inside a handler, for limits that are not per route (per account, per email)."""

    async def hit(self, policy: str, key: str) -> RateLimitDecision:
        """Count one request against ``policy`` for ``key`` and say whether it may go on."""
        ...
