"""Rate limits (issue 4): GCRA per policy, in-process and on Redis, checked before handlers.

Tests that take ``coderic_services`` run against every backend chosen with
``CODERIC_TEST_SERVICES=memory,redis``. The plugin under test is a fake installed
distribution (tests/fakeplugins.py) whose routes each name one policy.
"""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from coderic_kernel.errors import ConfigError
from coderic_kernel.services.ratelimit import (
    MemoryRateLimitStore,
    RateLimiter,
    RedisRateLimitStore,
    StoreUnavailable,
    policy_header,
)
from coderic_kernel.services.ratelimit.gcra import header_counts, next_unit_after, remaining
from coderic_kernel.services.redis import RedisService
from coderic_kernel.testing import RunningKernel, start_kernel, throwaway_redis
from coderic_kernel.web.app import create_app
from coderic_sdk import Problem, RateLimitPolicy
from fakeplugins import FakePlugin, boot, boot_error, fake_plugins  # noqa: F401  (fixture)

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused

LIMITED = FakePlugin("limited", code='''
from coderic_sdk import Problem, RateLimitPolicy, Route
from fakeplugins import UserFromHeader
from starlette.middleware import Middleware


async def ok(ctx):
    return {"ok": True}


async def missing(ctx):
    raise Problem(404, "Nothing here.")


@hookimpl
def register_rate_limits(plugin):
    return [
        RateLimitPolicy("limited.burst", 5, 60),
        RateLimitPolicy("limited.refill", 5, 0.5),
        RateLimitPolicy("limited.user", 3, 60, key=("user",)),
        RateLimitPolicy("limited.slow", 1, 2),
        RateLimitPolicy("limited.paced", 60, 60, burst=3),
        RateLimitPolicy("limited.login", 2, 60, sensitive=True),
    ]


@hookimpl
def register_middleware(plugin):
    return [Middleware(UserFromHeader)]


@hookimpl
def register_routes(plugin):
    return [
        Route("GET", "/burst", ok, name="burst", rate_limit="limited.burst"),
        Route("GET", "/user", ok, name="user", rate_limit="limited.user"),
        Route("GET", "/slow", ok, name="slow", rate_limit="limited.slow"),
        Route("GET", "/paced", ok, name="paced", rate_limit="limited.paced"),
        Route("GET", "/login", ok, name="login", rate_limit="limited.login"),
        Route("GET", "/plain", ok, name="plain"),
        Route("GET", "/other", ok, name="other"),
        Route("GET", "/missing", missing, name="missing", rate_limit="limited.burst"),
    ]
''')

Start = Callable[..., AbstractAsyncContextManager[RunningKernel]]


@pytest.fixture
def limited(fake_plugins, coderic_services: str, tmp_path: Path) -> Start:  # noqa: F811
    """``async with limited(**settings) as running``: a started kernel with the ``limited`` plugin."""
    fake_plugins.install(LIMITED)

    def start(**settings: Any) -> AbstractAsyncContextManager[RunningKernel]:
        config = {"rate_limit_default": "4/minute", **settings}
        return start_kernel(plugins=["limited"], config=config, database="sqlite", workdir=tmp_path, services=coderic_services)

    return start


def client(running: RunningKernel | Any, ip: str = "10.0.0.1") -> httpx2.AsyncClient:
    """A client whose requests come from ``ip`` (as the server's socket would see it)."""
    app = running.app if isinstance(running, RunningKernel) else running
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app, client=(ip, 1234)), base_url="http://testserver")


async def statuses(http: httpx2.AsyncClient, path: str, count: int, **kwargs: Any) -> list[int]:
    return [(await http.get(path, **kwargs)).status_code for _ in range(count)]


# Bursts, refill and headers, on every backend ---------------------------------------------


async def test_a_burst_is_allowed_then_refused_with_429_problem(limited) -> None:
    async with limited() as running, client(running) as http:
        answers = [await http.get("/api/v1/limited/burst") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["status"] == 429
    assert body["type"] == "https://iana.org/assignments/http-problem-types#quota-exceeded"
    assert body["violated-policies"] == ["limited.burst"]


async def test_headers_count_down_and_agree_with_retry_after(limited) -> None:
    async with limited() as running, client(running) as http:
        answers = [await http.get("/api/v1/limited/burst") for _ in range(6)]
    for answer in answers:
        assert answer.headers["ratelimit-policy"] == '"limited.burst";q=5;w=60'
    # 5 per minute: one request's quota comes back every 12 s.
    assert [a.headers["ratelimit"] for a in answers[:5]] == [f'"limited.burst";r={r};t=12' for r in (4, 3, 2, 1, 0)]
    assert "retry-after" not in answers[0].headers
    refused = answers[5]
    assert refused.headers["retry-after"] == "12"
    assert refused.headers["ratelimit"] == '"limited.burst";r=0;t=12'


async def test_retry_after_is_whole_seconds_rounded_up(limited) -> None:
    async with limited() as running, client(running) as http:
        first, second = await http.get("/api/v1/limited/slow"), await http.get("/api/v1/limited/slow")
        decision = await running.plugin("limited").rate_limits.hit("limited.slow", "k")
        again = await running.plugin("limited").rate_limits.hit("limited.slow", "k")
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["retry-after"] == "2"  # 1.99... s
    assert second.headers["ratelimit-policy"] == '"limited.slow";q=1;w=2'
    assert decision.allowed and not again.allowed
    assert 1.5 < again.retry_after <= 2.0
    assert again.remaining == 0 and again.limit == 1


async def test_a_burst_smaller_than_the_limit_paces_requests(limited) -> None:
    async with limited() as running, client(running) as http:
        answers = [await http.get("/api/v1/limited/paced") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit-policy"] == '"limited.paced";q=60;w=60;coderic-burst=3'
    assert answers[3].headers["retry-after"] == "1"  # 60 per minute: one a second


async def test_the_bucket_refills_as_time_passes(limited) -> None:
    async with limited() as running:
        limits = running.plugin("limited").rate_limits
        decisions = [await limits.hit("limited.refill", "refill") for _ in range(6)]  # 5 per 0.5 s
        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert 0 < decisions[-1].retry_after <= 0.1
        await asyncio.sleep(decisions[-1].retry_after + 0.02)
        refilled = await limits.hit("limited.refill", "refill")
        empty = await limits.hit("limited.refill", "refill")
        assert refilled.allowed and not empty.allowed
        await asyncio.sleep(0.55)  # a whole period: the bucket is full again
        assert [(await limits.hit("limited.refill", "refill")).allowed for _ in range(5)] == [True] * 5


async def test_a_limit_too_high_to_matter_is_still_counted_without_store_errors(limited) -> None:
    async with limited() as running:
        limiter = running.kernel.rate_limiter
        policy = RateLimitPolicy("t.huge", 1_000_000_000, 1)  # intervals below Redis's time resolution
        decisions = [await limiter.decide(policy, "coderic:ratelimit:t.huge") for _ in range(3)]
    assert all(d is not None and d.allowed for d in decisions), "None: the store failed and the limiter failed open"


async def test_errors_from_the_handler_carry_the_headers_too(limited) -> None:
    async with limited() as running, client(running) as http:
        answer = await http.get("/api/v1/limited/missing")
    assert answer.status_code == 404
    assert answer.headers["ratelimit"] == '"limited.burst";r=4;t=12'


async def test_rejections_are_counted_by_policy(limited) -> None:
    async with limited() as running, client(running) as http:
        await statuses(http, "/api/v1/limited/slow", 3)
        metrics = (await http.get("/metrics")).text
    assert 'coderic_rate_limit_rejections_total{policy="limited.slow"} 2.0' in metrics


# Keys: ip, user, route ------------------------------------------------------------------


async def test_the_default_policy_is_per_client_address_and_route(limited) -> None:
    async with limited() as running, client(running, "10.0.0.1") as one, client(running, "10.0.0.2") as two:
        assert await statuses(one, "/api/v1/limited/plain", 5) == [200] * 4 + [429]
        assert (await one.get("/api/v1/limited/other")).status_code == 200  # another route
        plain = await two.get("/api/v1/limited/plain")  # another address
    assert plain.status_code == 200
    assert plain.headers["ratelimit-policy"] == '"default";q=4;w=60'


async def test_per_user_buckets_follow_the_user_and_anonymous_callers_their_address(limited) -> None:
    async with limited() as running, client(running, "10.0.0.1") as one, client(running, "10.0.0.2") as two:
        ana = {"X-Test-User": "ana"}
        assert await statuses(one, "/api/v1/limited/user", 4, headers=ana) == [200] * 3 + [429]
        assert (await two.get("/api/v1/limited/user", headers=ana)).status_code == 429  # same user, new address
        assert (await one.get("/api/v1/limited/user", headers={"X-Test-User": "ben"})).status_code == 200
        assert await statuses(one, "/api/v1/limited/user", 4) == [200] * 3 + [429]  # anonymous: per address
        assert (await two.get("/api/v1/limited/user")).status_code == 200


async def test_per_ip_buckets_ignore_the_user(limited) -> None:
    async with limited() as running, client(running) as http:
        users = ["ana", "ben", "cy", "di", "ed", "flo"]
        answers = [await http.get("/api/v1/limited/burst", headers={"X-Test-User": u}) for u in users]
    assert [a.status_code for a in answers] == [200] * 5 + [429]


# Forwarded addresses ---------------------------------------------------------------------


async def test_a_spoofed_forwarded_header_does_not_reset_the_bucket(limited) -> None:
    async with limited() as running, client(running, "10.0.0.1") as http:
        codes = [
            (await http.get("/api/v1/limited/burst", headers={"X-Forwarded-For": f"203.0.113.{n}"})).status_code
            for n in range(6)
        ]
    assert codes == [200] * 5 + [429]


async def test_only_trusted_proxies_forwarded_addresses_are_believed(limited) -> None:
    async with limited(trusted_proxies=["10.0.0.1"]) as running:
        async with client(running, "10.0.0.1") as proxy:
            first = {"X-Forwarded-For": "203.0.113.7"}
            assert await statuses(proxy, "/api/v1/limited/burst", 6, headers=first) == [200] * 5 + [429]
            second = {"X-Forwarded-For": "203.0.113.8"}  # another client behind the proxy
            assert (await proxy.get("/api/v1/limited/burst", headers=second)).status_code == 200
        async with client(running, "10.0.0.2") as untrusted:
            codes = [
                (await untrusted.get("/api/v1/limited/burst", headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
                for n in range(6)
            ]
    assert codes == [200] * 5 + [429]


# Configuration ---------------------------------------------------------------------------


async def test_operators_override_the_rates_of_named_policies(limited) -> None:
    overrides = {"limited.burst": "2/minute", "default": "1/second"}
    async with limited(rate_limits=overrides) as running, client(running) as http:
        answers = [await http.get("/api/v1/limited/burst") for _ in range(3)]
        plain = await statuses(http, "/api/v1/limited/plain", 2)
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0].headers["ratelimit-policy"] == '"limited.burst";q=2;w=60'
    assert plain == [200, 429]


async def test_switched_off_no_route_is_limited_but_hit_still_counts(limited) -> None:
    async with limited(rate_limit_enabled=False) as running, client(running) as http:
        answers = [await http.get("/api/v1/limited/slow") for _ in range(3)]
        limits = running.plugin("limited").rate_limits
        hits = [(await limits.hit("limited.slow", "k")).allowed for _ in range(2)]
    assert [a.status_code for a in answers] == [200] * 3
    assert "ratelimit" not in answers[0].headers
    assert hits == [True, False]


async def test_hit_keeps_each_plugins_keys_apart_and_refuses_unknown_policies(limited) -> None:
    async with limited() as running:
        limited_hits = running.plugin("limited").rate_limits
        kernel_hits = running.plugin("kernel").rate_limits
        assert (await limited_hits.hit("limited.slow", "ana@example.org")).allowed
        assert not (await limited_hits.hit("limited.slow", "ana@example.org")).allowed
        assert (await limited_hits.hit("limited.slow", "ben@example.org")).allowed
        assert (await kernel_hits.hit("limited.slow", "ana@example.org")).allowed
        with pytest.raises(ValueError, match="no rate limit policy is named 'limited.nope'"):
            await limited_hits.hit("limited.nope", "k")


def test_a_route_naming_an_unknown_policy_stops_boot(fake_plugins) -> None:  # noqa: F811
    fake_plugins.install(FakePlugin("typo", code='''
        from coderic_sdk import Route

        async def ok(ctx):
            return {}

        @hookimpl
        def register_routes(plugin):
            return [Route("GET", "/x", ok, name="x", rate_limit="typo.strict")]
    '''))
    message = boot_error("typo")
    assert message.startswith(
        "plugin 'typo' failed at routes: route 'x': rate_limit 'typo.strict' names no registered policy (known: "
    )
    assert "default" in message  # with the built-in plugins' policies (auth.*)


@pytest.mark.parametrize(
    ("policies", "reason"),
    [
        ('[RateLimitPolicy("strict", 1, 1)]', "rate limit policy 'strict' must be named 'bad.<name>'"),
        ('[RateLimitPolicy("other.strict", 1, 1)]', "rate limit policy 'other.strict' must be named 'bad.<name>'"),
        ('[RateLimitPolicy("bad.", 1, 1)]', "rate limit policy 'bad.' must be named 'bad.<name>'"),
        ('[RateLimitPolicy("bad.x", 1, 1), RateLimitPolicy("bad.x", 2, 1)]', "two rate limit policies are named 'bad.x'"),
        ('["bad.x"]', "register_rate_limits returned str, expected RateLimitPolicy"),
    ],
)
def test_badly_named_or_duplicate_policies_stop_boot(fake_plugins, policies: str, reason: str) -> None:  # noqa: F811
    fake_plugins.install(FakePlugin("bad", code=f'''
        from coderic_sdk import RateLimitPolicy

        @hookimpl
        def register_rate_limits(plugin):
            return {policies}
    '''))
    assert boot_error("bad") == f"plugin 'bad' failed at routes: {reason}"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"rate_limits": {"limited.typo": "5/minute"}},
            "invalid setting rate_limits = {'limited.typo': '5/minute'} (from ",
        ),
        ({"rate_limits": {"limited.burst": "often"}}, "'often' is not like '10/minute'"),
        ({"rate_limit_default": "lots"}, "invalid setting rate_limit_default = 'lots'"),
    ],
)
def test_bad_rate_settings_stop_boot_naming_the_setting(fake_plugins, settings, expected) -> None:  # noqa: F811
    fake_plugins.install(LIMITED)
    with pytest.raises(ConfigError) as caught:
        boot("limited", settings=settings)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unknown_override_lists_the_known_policies(fake_plugins) -> None:  # noqa: F811
    fake_plugins.install(LIMITED)
    with pytest.raises(ConfigError, match=r"no policy is named 'limited.typo'; accepted: one of (auth\.\w+, )*default, limited.burst"):
        boot("limited", settings={"rate_limits": {"limited.typo": "5/minute"}})


# Redis unreachable -------------------------------------------------------------------------


@asynccontextmanager
async def unreachable_store(fake_plugins) -> AsyncIterator[Any]:  # noqa: F811
    """A booted (not started: no database needed) kernel whose Redis refuses connections."""
    fake_plugins.install(LIMITED)
    kernel = boot("limited", settings={"redis_url": CLOSED_PORT_REDIS})
    try:
        yield kernel
    finally:
        assert kernel.redis is not None
        await kernel.redis.close()


async def test_unreachable_redis_fails_open_for_ordinary_policies(fake_plugins, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.WARNING, logger="coderic.ratelimit")
    async with unreachable_store(fake_plugins) as kernel, client(create_app(kernel, manage_lifespan=False)) as http:
        answers = [await http.get("/api/v1/limited/slow") for _ in range(5)]  # 1 per 2 s, were it counted
        decision = await kernel.plugin("limited").rate_limits.hit("limited.slow", "k")
        metrics = (await http.get("/metrics")).text
    assert [a.status_code for a in answers] == [200] * 5
    assert "ratelimit" not in answers[0].headers  # nothing true to say
    assert decision.allowed
    warnings = [r for r in caplog.records if r.name == "coderic.ratelimit"]
    assert len(warnings) == 1, "one warning, not one per request"
    assert "unreachable" in warnings[0].getMessage()
    assert 'coderic_rate_limit_store_errors_total{policy="limited.slow"} 6.0' in metrics


async def test_unreachable_redis_fails_closed_for_sensitive_policies(fake_plugins) -> None:  # noqa: F811
    async with unreachable_store(fake_plugins) as kernel, client(create_app(kernel, manage_lifespan=False)) as http:
        answer = await http.get("/api/v1/limited/login")
        with pytest.raises(Problem) as caught:
            await kernel.plugin("limited").rate_limits.hit("limited.login", "ana@example.org")
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "5"
    assert caught.value.status == 503


@pytest.mark.parametrize("coderic_services", ["redis"], indirect=True)
async def test_redis_losing_its_scripts_or_connections_costs_no_check(limited, coderic_services: str) -> None:
    async with limited() as running:
        limiter = running.kernel.rate_limiter
        policy = limiter.policy("limited.slow")
        first = await limiter.decide(policy, "first")
        redis = running.kernel.redis.client
        await redis.script_flush()  # as after a restart
        after_flush = await limiter.decide(policy, "after-flush")
        # the limiter's connections go stale; only this database's: other test workers share the server
        database = str(redis.connection_pool.connection_kwargs.get("db", 0))
        mine = (await redis.client_info())["id"]
        others = [c["id"] for c in await redis.client_list(_type="normal") if str(c["db"]) == database and c["id"] != mine]
        assert others, "the limiter holds a connection of its own"
        for client_id in others:
            await redis.client_kill_filter(_id=client_id)
        after_kill = await limiter.decide(policy, "after-kill")
        again = await limiter.decide(policy, "after-kill")
    for decision in (first, after_flush, after_kill):
        assert decision is not None and decision.allowed, "None: the store failed and the limiter failed open"
    assert again is not None and not again.allowed


@asynccontextmanager
async def silenceable_proxy(url: str) -> AsyncIterator[tuple[str, Callable[[bool], None]]]:
    """A TCP relay to the Redis of ``url``: ``(its URL, silence)``; ``silence(True)`` drops what
    clients send from then on, as a Redis that stopped answering would look to them."""
    target = urlsplit(url)
    silent = False
    tasks: set[asyncio.Task[None]] = set()

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, droppable: bool) -> None:
        try:
            while data := await source.read(65536):
                if not (droppable and silent):
                    sink.write(data)
        finally:
            sink.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        for task in (pipe(reader, up_writer, True), pipe(up_reader, writer, False)):
            tasks.add(asyncio.create_task(task))

    def silence(on: bool) -> None:
        nonlocal silent
        silent = on

    server = await asyncio.start_server(relay, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"redis://127.0.0.1:{port}{target.path}", silence
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.parametrize("coderic_services", ["redis"], indirect=True)
async def test_a_redis_that_stops_answering_fails_checks_within_its_timeout(coderic_services: str) -> None:
    async with throwaway_redis() as url, silenceable_proxy(url) as (proxied, silence):
        store = RedisRateLimitStore(RedisService(proxied + "?socket_timeout=0.2"))
        try:
            assert (await store.arrive("k", 1.0, 5))[0]
            silence(True)
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="no answer from Redis within 0.2 s"):
                await store.arrive("k", 1.0, 5)
            assert time.monotonic() - started < 1.0  # one to two timeouts
            silence(False)
            allowed, backlog = await store.arrive("k", 1.0, 5)  # on a new connection
            assert allowed and 1.0 < backlog <= 2.0  # the second check counted, the dropped one not
        finally:
            await store.redis.close()


# Several processes sharing one Redis ----------------------------------------------------------

WORKER = textwrap.dedent('''
    import asyncio, sys, time
    from coderic_kernel.services.ratelimit import RateLimiter, RedisRateLimitStore
    from coderic_kernel.services.redis import RedisService
    from coderic_sdk import RateLimitPolicy

    async def main(url, attempts, start_at):
        policy = RateLimitPolicy("shared.hourly", 50, 3600)  # no refill worth a request during the test
        limiter = RateLimiter({policy.name: policy}, RedisRateLimitStore(RedisService(url)))
        await limiter.store.redis.ping()  # connect before the start line
        time.sleep(max(0.0, start_at - time.time()))
        decisions = await asyncio.gather(*(limiter.decide(policy, "coderic:ratelimit:shared") for _ in range(attempts)))
        await limiter.store.redis.close()
        print(sum(d.allowed for d in decisions))

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
''')


@pytest.mark.parametrize("coderic_services", ["redis"], indirect=True)
async def test_processes_sharing_redis_never_exceed_the_limit(coderic_services: str) -> None:
    async with throwaway_redis() as url:
        start_at = time.time() + 1.5  # every process starts hitting at once
        workers = [
            subprocess.Popen([sys.executable, "-c", WORKER, url, "40", str(start_at)], stdout=subprocess.PIPE, text=True)
            for _ in range(4)
        ]
        outputs = [worker.communicate(timeout=30)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0] * 4
    allowed = [int(out) for out in outputs]
    assert sum(allowed) == 50, allowed  # 160 attempts, exactly the burst let through


# The algorithm itself, on a clock the test moves ----------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_gcra_on_a_controlled_clock() -> None:
    clock = Clock()
    policy = RateLimitPolicy("t.p", 10, 1)  # one every 0.1 s, burst 10
    limiter = RateLimiter({policy.name: policy}, MemoryRateLimitStore(clock))
    first = await limiter.decide(policy, "k")
    assert first is not None and (first.remaining, first.reset_after) == (9, pytest.approx(0.1))
    for _ in range(9):
        await limiter.decide(policy, "k")
    refused = await limiter.decide(policy, "k")
    assert refused is not None and not refused.allowed
    assert refused.retry_after == pytest.approx(0.1) and refused.reset_after == pytest.approx(1.0)
    clock.now += 0.25  # two whole intervals and a half
    assert [(await limiter.decide(policy, "k")).allowed for _ in range(3)] == [True, True, False]  # type: ignore[union-attr]
    clock.now += 10
    full = await limiter.decide(policy, "k")
    assert full is not None and full.remaining == 9


@pytest.mark.parametrize("burst", [1, 3, 10])
def test_the_header_counts_are_remaining_and_the_next_unit_rounded_up(burst: int) -> None:
    interval = 0.7
    for step in range(3 * burst + 1):  # backlogs from none to a full burst
        backlog = step * interval / 3
        left = remaining(backlog, interval, burst)
        assert header_counts(backlog, interval, burst) == (left, math.ceil(next_unit_after(backlog, interval, burst, left)))


async def test_the_memory_store_forgets_full_buckets() -> None:
    clock = Clock()
    store = MemoryRateLimitStore(clock)
    for n in range(store.MIN_SWEEP - 1):
        await store.arrive(f"k{n}", 1.0, 5)
    clock.now += 2  # every bucket is full again
    await store.arrive("last", 1.0, 5)
    assert len(store) == 1


@pytest.mark.parametrize(
    ("policy", "header"),
    [
        (RateLimitPolicy("default", 600, 60), '"default";q=600;w=60'),
        (RateLimitPolicy("p.half", 5, 0.5), '"p.half";q=10;w=1'),
        (RateLimitPolicy("p.b", 10, 60, burst=20), '"p.b";q=10;w=60;coderic-burst=20'),
    ],
)
def test_policy_header_in_the_drafts_structured_form(policy: RateLimitPolicy, header: str) -> None:
    assert policy_header(policy) == header
