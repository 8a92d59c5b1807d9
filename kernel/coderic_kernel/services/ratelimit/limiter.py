"""The kernel's rate limiter: checks a route's policy before its handler runs, and serves
``plugin.rate_limits.hit`` inside handlers.

Responses carry the fields of the IETF RateLimit header draft, in the structured-field form
of draft-ietf-httpapi-ratelimit-headers-10 (September 2025; -11 keeps it):
``RateLimit-Policy: "default";q=600;w=60`` (quota per window, whole seconds) and
``RateLimit: "default";r=599;t=1`` (``r``: requests left now; ``t``: seconds until more quota
comes back). With GCRA quota comes back one request at a time, so ``t`` is the time to the
next one, rounded up; on a 429 it equals ``Retry-After``, as section 6 of the draft asks.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from coderic_sdk import PluginContext, Problem, RateLimitDecision, RateLimitPolicy
from starlette.types import Scope

from .gcra import burst_of, decide, header_counts, interval_of
from .policies import hit_bucket, resolve_policies, route_bucket
from .stores import MemoryRateLimitStore, RateLimitStore, RedisRateLimitStore, StoreUnavailable

if TYPE_CHECKING:
    from ...config import Configuration
    from ...observability.metrics import Metrics
    from ...web.routing import MountedRoute
    from ..redis import RedisService

logger = logging.getLogger("coderic.ratelimit")

#: The draft's problem type for a request over its quota (section 5.1).
QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
#: After the store fails, checks skip it for this long (each counts as failed) rather than
#: make every request wait for a connection timeout.
UNAVAILABLE_PAUSE_SECONDS = 1.0
#: ``Retry-After`` of the 503 a sensitive policy answers while its store is unreachable.
UNAVAILABLE_RETRY_AFTER = 5
#: At most one warning per this many seconds while the store is unreachable.
WARNING_INTERVAL_SECONDS = 60.0


def policy_header(policy: RateLimitPolicy) -> str:
    """One ``RateLimit-Policy`` item. The draft's window is whole seconds, so a sub-second or
    fractional period is stated as the same rate over the next whole number of seconds."""
    if float(policy.period).is_integer():
        quota, window = policy.limit, int(policy.period)
    else:
        window = math.ceil(policy.period)
        quota = math.floor(policy.limit * window / policy.period)
    item = f'"{policy.name}";q={quota};w={window}'
    if burst_of(policy) != policy.limit:  # a vendor-prefixed parameter, as the draft recommends
        item += f";coderic-burst={burst_of(policy)}"
    return item


class RateLimiter:
    """Every policy by name, one store, and what to do when the store is unreachable."""

    def __init__(
        self,
        policies: Mapping[str, RateLimitPolicy],
        store: RateLimitStore,
        *,
        metrics: Metrics | None = None,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policies = dict(policies)
        self.store = store
        self.metrics = metrics
        self.enabled = enabled
        self._clock = clock
        self.paused_until = 0.0  # while the clock is before it, checks count as failed without asking the store
        self._warned_at: float | None = None
        self._unwarned = 0

    @classmethod
    def build(
        cls,
        config: Configuration,
        redis: RedisService | None,
        contributed: Iterable[RateLimitPolicy],
        metrics: Metrics | None = None,
    ) -> RateLimiter:
        store: RateLimitStore = RedisRateLimitStore(redis) if redis is not None else MemoryRateLimitStore()
        enabled = config.kernel.rate_limit_enabled
        return cls(resolve_policies(config, contributed), store, metrics=metrics, enabled=enabled)

    def policy(self, name: str) -> RateLimitPolicy:
        try:
            return self.policies[name]
        except KeyError:
            known = ", ".join(sorted(self.policies))
            raise ValueError(f"no rate limit policy is named {name!r}; known: {known}") from None

    def for_route(self, mounted: MountedRoute) -> RouteLimit | None:
        """The check a route makes before its handler runs; ``None`` when limits are off."""
        if not self.enabled:
            return None
        policy = self.policy(mounted.route.rate_limit or "default")
        bucket = route_bucket(policy, route=mounted.operation_id, plugin=mounted.plugin.name)
        return RouteLimit(self, policy, bucket)

    async def arrive(self, policy: RateLimitPolicy, key: str) -> tuple[bool, float] | None:
        """Count one request in bucket ``key``: ``(allowed, backlog)``. ``None``: the store is
        unreachable and the policy fails open. A sensitive policy fails closed: ``Problem(503)``."""
        if self.paused_until and self._clock() < self.paused_until:
            return self._unavailable(policy, None)
        try:
            arrived = await self.store.arrive(key, interval_of(policy), burst_of(policy))
        except StoreUnavailable as exc:
            return self.failed(policy, exc)
        self.paused_until = 0.0
        return arrived

    async def decide(self, policy: RateLimitPolicy, key: str) -> RateLimitDecision | None:
        """``arrive``, told as a ``RateLimitDecision``."""
        arrived = await self.arrive(policy, key)
        if arrived is None:
            return None
        if not arrived[0]:
            self.refused(policy)
        return decide(policy, *arrived)

    def failed(self, policy: RateLimitPolicy, exc: StoreUnavailable) -> None:
        """The store could not be asked: checks skip it for a while; ``None`` (fail open) or
        ``Problem(503)`` (a sensitive policy fails closed)."""
        self.paused_until = self._clock() + UNAVAILABLE_PAUSE_SECONDS
        return self._unavailable(policy, exc)

    def refused(self, policy: RateLimitPolicy) -> None:
        if self.metrics is not None:
            self.metrics.rate_limit_rejections.labels(policy.name).inc()

    def _unavailable(self, policy: RateLimitPolicy, exc: StoreUnavailable | None) -> None:
        if self.metrics is not None:
            self.metrics.rate_limit_store_errors.labels(policy.name).inc()
        self._warn(exc)
        if policy.sensitive:
            raise Problem(
                503, "Rate limits cannot be checked right now; try again shortly.",
                headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
            )
        return None

    def _warn(self, exc: StoreUnavailable | None) -> None:
        """Log the first failure, then at most one line a minute with a count of the others."""
        now = self._clock()
        if self._warned_at is not None and now - self._warned_at < WARNING_INTERVAL_SECONDS:
            self._unwarned += 1
            return
        cause = f" ({exc})" if exc is not None else ""
        since = f"; {self._unwarned} more check(s) failed since the last warning" if self._unwarned else ""
        logger.warning(
            "rate limit store (%s) unreachable%s: non-sensitive policies let requests through, "
            "sensitive ones answer 503%s", self.store.backend, cause, since,
        )
        self._warned_at, self._unwarned = now, 0


class RouteLimit:
    """One route's policy and bucket function; ``check`` runs before the handler."""

    __slots__ = ("limiter", "policy", "bucket", "name", "interval", "burst", "policy_field", "field_start")

    def __init__(self, limiter: RateLimiter, policy: RateLimitPolicy, bucket: Callable[[Scope], str]) -> None:
        self.limiter = limiter
        self.policy = policy
        self.bucket = bucket
        self.name = policy.name
        self.interval = interval_of(policy)
        self.burst = burst_of(policy)
        self.policy_field = ("RateLimit-Policy", policy_header(policy))
        self.field_start = f'"{policy.name}";r='

    async def check(self, scope: Scope) -> list[tuple[str, str]]:
        """The response's headers, or ``Problem(429)`` (``Problem(503)``: see ``RateLimiter.arrive``).

        Every limited request runs this, so it asks the store itself, leaving the limiter the
        rare paths: the store failing or failed lately, and a refusal.
        """
        limiter = self.limiter
        if limiter.paused_until:
            arrived = await limiter.arrive(self.policy, self.bucket(scope))
            if arrived is None:  # failed open: nothing true to tell the client
                return []
            allowed, backlog = arrived
        else:
            try:
                allowed, backlog = await limiter.store.arrive(self.bucket(scope), self.interval, self.burst)
            except StoreUnavailable as exc:
                limiter.failed(self.policy, exc)  # a sensitive policy raises Problem(503)
                return []
        left, wait = header_counts(backlog, self.interval, self.burst)
        headers = [self.policy_field, ("RateLimit", f"{self.field_start}{left};t={wait}")]
        if not allowed:
            limiter.refused(self.policy)
            retry = str(max(1, wait))
            raise Problem(
                429, f"Too many requests for rate limit policy {self.name!r}; retry in {retry} s.",
                type=QUOTA_EXCEEDED, headers={**dict(headers), "Retry-After": retry}, extra={"violated-policies": [self.name]},
            )
        return headers


class PluginRateLimits:
    """The SDK's ``RateLimits`` for one plugin: buckets keyed by what the handler passes."""

    def __init__(self, limiter: RateLimiter, plugin: PluginContext | str) -> None:
        self.limiter = limiter
        self.plugin = plugin if isinstance(plugin, str) else plugin.name

    async def hit(self, policy: str, key: str) -> RateLimitDecision:
        """Count one request against ``policy`` for ``key``. While the store is unreachable a
        sensitive policy raises ``Problem(503)`` and any other lets the request through."""
        chosen = self.limiter.policy(policy)
        decision = await self.limiter.decide(chosen, hit_bucket(chosen, self.plugin, key))
        if decision is None:
            return RateLimitDecision(True, chosen.limit, burst_of(chosen), 0.0, 0.0)
        return decision
