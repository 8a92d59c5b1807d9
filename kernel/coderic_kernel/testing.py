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
from contextlib import asynccontextmanager
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
) -> AsyncIterator[RunningKernel]:
    """Boot a kernel with ``plugins`` enabled, migrate its database and serve it in-process."""
    import httpx2

    async with throwaway_database(database, Path(workdir)) as url:
        overrides = {"environment": "test", "database_url": url, "plugins.enabled": list(plugins), **config}
        configuration = load_configuration(environ={}, overrides=overrides, read_files=False)
        kernel = Kernel.boot(configuration)
        app = create_app(kernel, manage_lifespan=False)
        async with kernel.started(migrate=True):
            transport = httpx2.ASGITransport(app=app)
            async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
                yield RunningKernel(kernel, app, client)
