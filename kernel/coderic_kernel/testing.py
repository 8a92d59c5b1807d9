"""The test harness behind the SDK's pytest fixtures: a real kernel on a throw-away database.

Found by the SDK through the ``coderic.testing`` entry point, so plugin tests never import
this module. PostgreSQL databases are created on the server named by
``CODERIC_TEST_POSTGRES_URL`` and dropped afterwards; when that server is missing the test
fails under CI (``CI`` set) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette

from .config import load_configuration
from .kernel import Kernel
from .plugins.context import PluginContextImpl
from .web.app import create_app

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


@dataclass
class RunningKernel:
    kernel: Kernel
    app: Starlette
    client: Any  # httpx2.AsyncClient

    def plugin(self, name: str) -> PluginContextImpl:
        return self.kernel.plugin(name)


def services_required() -> bool:
    """In CI a missing service is a failure, never a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("CODERIC_TEST_REQUIRE_SERVICES") == "1"


def postgres_admin_url() -> str:
    return os.environ.get("CODERIC_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


@asynccontextmanager
async def throwaway_database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """A database URL that exists for the duration of the block and nowhere else."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'coderic-test.db'}"
        return
    if kind != "postgresql":
        raise ValueError(f"unknown test database {kind!r}")
    import asyncpg

    admin_url = postgres_admin_url()
    try:
        admin = await asyncpg.connect(admin_url, timeout=5)
    except Exception as exc:
        _service_missing(f"PostgreSQL at {admin_url} is unreachable ({type(exc).__name__}: {exc})")
    name = f"coderic_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def redis_test_url() -> str:
    return os.environ.get("CODERIC_TEST_REDIS_URL", DEFAULT_REDIS_URL)


@asynccontextmanager
async def throwaway_redis() -> AsyncIterator[str]:
    """A Redis database emptied before and after use (tests run one at a time on it)."""
    from redis.asyncio import Redis

    url = redis_test_url()
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.flushdb()
    except Exception as exc:
        await client.aclose()
        _service_missing(f"Redis at {url} is unreachable ({type(exc).__name__}: {exc})")
    try:
        yield url
    finally:
        await client.flushdb()
        await client.aclose()


def _service_missing(reason: str) -> None:
    import pytest

    if services_required():
        pytest.fail(f"{reason}; CI requires it")
    pytest.skip(reason)


@asynccontextmanager
async def start_kernel(
    *,
    plugins: Sequence[str],
    config: Mapping[str, Any],
    database: str,
    workdir: os.PathLike[str],
    services: str = "memory",
) -> AsyncIterator[RunningKernel]:
    """Boot a kernel with ``plugins`` enabled, migrate its database and serve it in-process.

    ``services="redis"`` backs cache, rate limits, events and jobs with a throw-away Redis
    database; ``"memory"`` keeps them in-process.
    """
    import httpx2

    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(throwaway_database(database, Path(workdir)))
        overrides: dict[str, Any] = {"environment": "test", "database_url": url, "plugins.enabled": list(plugins)}
        if services == "redis":
            overrides["redis_url"] = await stack.enter_async_context(throwaway_redis())
        elif services != "memory":
            raise ValueError(f"unknown services backend {services!r}")
        overrides.update(config)
        configuration = load_configuration(environ={}, overrides=overrides, read_files=False)
        kernel = Kernel.boot(configuration)
        app = create_app(kernel, manage_lifespan=False)
        async with kernel.started(migrate=True, background=True):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield RunningKernel(kernel, app, client)
