"""The test harness's PostgreSQL copies (``coderic_kernel.testing_databases``): the work its
background thread does later is done on the server named when it was queued."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import asyncpg
import pytest
from coderic_kernel import testing_databases as harness
from coderic_kernel.testing import postgres_admin_url, throwaway_database


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_spare_copy_is_made_on_the_server_it_was_queued_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test (the SDK's own pytester tests do this) may point ``CODERIC_TEST_POSTGRES_URL``
    where nothing listens while the thread still has the previous test's spare to make."""
    server = postgres_admin_url()
    async with throwaway_database("postgresql", tmp_path) as template_url:
        template = template_url.rsplit("/", 1)[1]
        gate = threading.Event()
        harness._background().submit(gate.wait, 30)  # the thread is busy until the variable has moved
        try:
            async with harness.database_at(harness.planned_database_url("postgresql", tmp_path), template=template_url):
                spare_server, spare = harness._SPARES[template]
                monkeypatch.setenv("CODERIC_TEST_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
                gate.set()
                spare_name = spare.result(timeout=30)
                assert spare_server == server
                monkeypatch.undo()
                admin = await asyncpg.connect(server, timeout=5)
                try:
                    assert await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", spare_name) == 1
                finally:
                    await admin.close()
        finally:
            gate.set()
            leftover = harness._SPARES.pop(template, None)
            if leftover is not None:  # dropped in the harness's thread, as it drops its own
                harness._background().submit(harness._drop_spare, *leftover).result(timeout=30)
