"""The generic cell rate algorithm (GCRA): one number per bucket, O(1) per request.

A bucket remembers its *theoretical arrival time* (TAT): when it would be empty again if
requests kept coming at the sustained rate. A policy of ``limit`` requests per ``period``
spaces requests ``interval = period / limit`` apart and tolerates ``burst`` of them at once.
A request arriving at ``now`` is allowed when ``max(tat, now) + interval - now`` does not
exceed ``burst * interval``; it then moves the TAT on by one interval. Rejected requests
leave the bucket alone, so hammering a full bucket does not push its refill further away.

Stores return the bucket's *backlog* after the request (``tat - now``, in seconds); every
figure a client sees (remaining, reset, retry after) is derived here from that one number.
"""

from __future__ import annotations

import math

from coderic_sdk import RateLimitDecision, RateLimitPolicy

#: Float slack when comparing times in seconds (the Redis script uses the same in microseconds).
EPSILON = 1e-9


def burst_of(policy: RateLimitPolicy) -> int:
    return policy.burst if policy.burst is not None else policy.limit


def interval_of(policy: RateLimitPolicy) -> float:
    return policy.period / policy.limit


def arrive(tat: float | None, now: float, interval: float, burst: int) -> tuple[bool, float]:
    """``(allowed, new tat)`` for one request at ``now`` against a bucket at ``tat``."""
    start = now if tat is None or tat < now else tat
    following = start + interval
    if following - now > interval * burst + EPSILON:
        return False, start
    return True, following


def remaining(backlog: float, interval: float, burst: int) -> int:
    """Requests the bucket would let through right now."""
    return min(burst, max(0, math.floor(burst - backlog / interval + EPSILON)))


def next_unit_after(backlog: float, interval: float, burst: int, left: int) -> float:
    """Seconds until one more request's worth of quota comes back: the ``Retry-After`` of a
    refused request (``left`` is 0), and the ``t`` of the ``RateLimit`` header."""
    return max(0.0, backlog - (burst - left - 1) * interval)


def header_counts(backlog: float, interval: float, burst: int) -> tuple[int, int]:
    """``remaining`` and ``next_unit_after`` rounded up to whole seconds, in one call: the ``r``
    and ``t`` of the ``RateLimit`` header, which every limited response carries."""
    left = math.floor(burst - backlog / interval + EPSILON)
    left = burst if left > burst else 0 if left < 0 else left
    wait = math.ceil(backlog - (burst - left - 1) * interval)
    return left, wait if wait > 0 else 0


def decide(policy: RateLimitPolicy, allowed: bool, backlog: float) -> RateLimitDecision:
    """What a store's ``(allowed, backlog)`` means for the caller."""
    interval, burst = interval_of(policy), burst_of(policy)
    backlog = max(0.0, backlog)
    left = remaining(backlog, interval, burst)
    retry_after = 0.0 if allowed else next_unit_after(backlog, interval, burst, 0)
    return RateLimitDecision(allowed, policy.limit, left, backlog, retry_after)
