"""``plugin.cache`` behaves the same in-process and on Redis (issue 4)."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.coderic(plugins=["hello"])


@pytest.fixture
def cache(coderic_kernel, coderic_services):  # type: ignore[no-untyped-def]
    return coderic_kernel.plugin("hello").cache


async def test_set_get_delete_round_trip_json_values(cache) -> None:
    value = {"name": "Ana", "skills": ["python", "sql"], "score": 4.5, "active": True, "none": None}
    await cache.set("profile:1", value)
    assert await cache.get("profile:1") == value
    await cache.delete("profile:1")
    assert await cache.get("profile:1") is None
    await cache.delete("never-set")  # deleting a missing key is fine


async def test_values_expire_after_their_ttl(cache) -> None:
    await cache.set("short", "soon gone", ttl=0.05)
    await cache.set("long", "still here", ttl=60)
    assert await cache.get("short") == "soon gone"
    await asyncio.sleep(0.12)
    assert await cache.get("short") is None
    assert await cache.get("long") == "still here"


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", float("nan")])
async def test_only_json_safe_values_are_accepted(cache, value) -> None:
    with pytest.raises(TypeError, match="JSON-safe"):
        await cache.set("bad", value)
    assert await cache.get("bad") is None


async def test_a_ttl_must_be_positive(cache) -> None:
    with pytest.raises(ValueError):
        await cache.set("k", 1, ttl=0)


async def test_plugins_do_not_see_each_others_keys(coderic_kernel, coderic_services) -> None:
    hello = coderic_kernel.plugin("hello").cache
    kernel = coderic_kernel.plugin("kernel").cache
    await hello.set("shared-name", "hello's")
    assert await kernel.get("shared-name") is None
    await kernel.set("shared-name", "kernel's")
    assert await hello.get("shared-name") == "hello's"


@pytest.mark.parametrize("coderic_services", ["redis"], indirect=True)
async def test_redis_keys_are_namespaced_per_plugin(coderic_kernel, coderic_services) -> None:
    await coderic_kernel.plugin("hello").cache.set("k", 1)
    keys = await coderic_kernel.kernel.redis.client.keys("*")
    assert keys == [b"coderic:cache:hello:k"]
