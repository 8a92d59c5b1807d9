"""Rate limiting (GCRA): route policies checked before handlers, ``plugin.rate_limits.hit``
inside them, in-process or on Redis. See docs/rate-limits.md."""

from __future__ import annotations

from .limiter import PluginRateLimits, RateLimiter, RouteLimit, policy_header
from .policies import DEFAULT, resolve_policies
from .stores import MemoryRateLimitStore, RateLimitStore, RedisRateLimitStore, StoreUnavailable

__all__ = [
    "DEFAULT",
    "MemoryRateLimitStore",
    "PluginRateLimits",
    "RateLimitStore",
    "RateLimiter",
    "RedisRateLimitStore",
    "RouteLimit",
    "StoreUnavailable",
    "policy_header",
    "resolve_policies",
]
