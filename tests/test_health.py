"""``/healthz`` says the process lives; ``/readyz`` runs every readiness check, the database's
and those plugins contribute, and answers 503 naming what failed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx2
import pytest
from coderic_kernel.kernel import Kernel
from coderic_kernel.testing import postgres_admin_url, throwaway_database
from coderic_kernel.web import health
from coderic_kernel.web.app import create_app
from fakeplugins import FakePlugin, FakeSite, boot, fake_plugins  # noqa: F401


@asynccontextmanager
async def client_for(kernel: Kernel) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the kernel's app; the caller decides whether the kernel is started."""
    transport = httpx2.ASGITransport(app=create_app(kernel, manage_lifespan=False))
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_not_ready(response: Any, failed: str) -> dict[str, str]:
    """A 503 problem naming ``failed``; returns the per-check results."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert body["request_id"] == response.headers["x-request-id"]
    assert failed in body["detail"]
    checks: dict[str, str] = body["checks"]
    assert checks[failed] != "ok"
    return checks


async def test_healthz_answers_200(coderic_client: Any) -> None:
    response = await coderic_client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_readyz_answers_200_when_the_database_answers(coderic_client: Any) -> None:
    response = await coderic_client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


async def make_database_unreachable(kernel: Kernel) -> None:
    """Take the running kernel's database away under it."""
    url = kernel.database.url
    if url.dialect == "sqlite":
        assert url.path is not None
        # A directory where the database file was: SQLite cannot open it. The kernel's outbox
        # relay may open (and so recreate) the file between the unlink and the mkdir: retry.
        for _ in range(50):
            for leftover in url.path.parent.glob(url.path.name + "*"):  # the file, its -wal and -shm
                if not leftover.is_dir():
                    leftover.unlink(missing_ok=True)
            try:
                url.path.mkdir()
                return
            except FileExistsError:
                continue
        raise AssertionError("the database file kept coming back")
    name = url.url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(postgres_admin_url(), timeout=5)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await admin.close()


async def test_readyz_answers_503_naming_the_database_when_it_goes_away(coderic_kernel: Any) -> None:
    await make_database_unreachable(coderic_kernel.kernel)
    assert_not_ready(await coderic_kernel.client.get("/readyz"), "database")
    # /healthz is about the process only.
    assert (await coderic_kernel.client.get("/healthz")).status_code == 200


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.filterwarnings("ignore:.*Unable to connect to database")  # Piccolo says so too
async def test_readyz_answers_503_when_postgresql_does_not_listen() -> None:
    url = f"postgresql://coderic:s3cret-pw@127.0.0.1:{closed_port()}/coderic"
    kernel = boot(settings={"database_url": url})
    async with client_for(kernel) as client:
        response = await client.get("/readyz")
    checks = assert_not_ready(response, "database")
    assert list(checks) == ["database"]
    assert "s3cret-pw" not in response.text


PROBE = """
import asyncio
from coderic_sdk import HealthCheck

async def probe():
    {body}

@hookimpl
def register_health_checks():
    return [HealthCheck("probe", probe)]
"""


@asynccontextmanager
async def started_with_probe(body: str, site: FakeSite, workdir: Path) -> AsyncIterator[httpx2.AsyncClient]:
    """A started kernel with an installed plugin whose readiness check runs ``body``."""
    site.install(FakePlugin("probe", PROBE.format(body=body)))
    async with throwaway_database("sqlite", workdir) as url:
        kernel = boot("probe", settings={"database_url": url})
        async with kernel.started(migrate=True), client_for(kernel) as client:
            yield client


async def test_a_plugin_health_check_appears_in_readyz(fake_plugins: FakeSite, tmp_path: Path) -> None:
    async with started_with_probe("return None", fake_plugins, tmp_path) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "probe": "ok"}


async def test_a_failing_plugin_health_check_makes_readyz_503(fake_plugins: FakeSite, tmp_path: Path) -> None:
    refusing = 'raise ConnectionError("probe backend refused the connection")'
    async with started_with_probe(refusing, fake_plugins, tmp_path) as client:
        response = await client.get("/readyz")
    checks = assert_not_ready(response, "probe")
    assert checks == {"database": "ok", "probe": "ConnectionError: probe backend refused the connection"}
    assert "database" not in response.json()["detail"]


async def test_a_plugin_health_check_that_hangs_times_out(
    fake_plugins: FakeSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT_SECONDS", 0.05)
    async with started_with_probe("await asyncio.sleep(10)", fake_plugins, tmp_path) as client:
        response = await asyncio.wait_for(client.get("/readyz"), 2)
    assert assert_not_ready(response, "probe")["probe"] == "no answer within 0.05s"

