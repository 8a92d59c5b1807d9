"""``DatabaseService``: transactions interrupted by cancellation, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.config.model import parse_database_url
from coderic_kernel.database import DatabaseService
from coderic_kernel.testing import throwaway_database
from piccolo.engine.postgres import PostgresTransaction
from piccolo.engine.sqlite import SQLiteTransaction


@pytest.fixture
async def database(coderic_database: str, tmp_path: Path) -> AsyncIterator[DatabaseService]:
    async with throwaway_database(coderic_database, tmp_path) as url:
        service = DatabaseService(parse_database_url(url))
        await service.open([])
        try:
            await service.engine.run_ddl("CREATE TABLE counted (n INTEGER)")
            yield service
        finally:
            await service.close()


async def counted(database: DatabaseService) -> list[int]:
    return [row["n"] for row in await database.engine.run_ddl("SELECT n FROM counted ORDER BY n")]


async def write(database: DatabaseService, n: int) -> None:
    async with database.transaction():
        await database.engine.run_ddl(f"INSERT INTO counted VALUES ({n})")


@pytest.mark.parametrize("step", ["begin", "commit"])
async def test_a_transaction_cancelled_while_it_begins_or_commits_gives_its_connection_back(
    step: str, database: DatabaseService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server stopping cancels its loops wherever they are, and a job's timeout cancels
    the job: just after BEGIN ran, or just before COMMIT runs, the connection is in a
    transaction. On SQLite it holds the write lock (the next writer would wait out the 30 s
    busy timeout); on PostgreSQL it would be lost to the pool."""
    cls: Any = SQLiteTransaction if database.dialect == "sqlite" else PostgresTransaction
    reached = asyncio.Event()
    original = getattr(cls, step)
    # What a cancelled task's traceback does until the collector gets to it (with the
    # object gone, a SQLite connection is closed and its lock freed by chance, not by design).
    held: list[Any] = []

    async def interrupted(self: Any) -> None:
        if step == "begin":
            await original(self)  # the transaction is open
        held.append(self)
        reached.set()
        await asyncio.sleep(60)  # cancelled here
        await original(self)

    monkeypatch.setattr(cls, step, interrupted)
    cancelled = asyncio.create_task(write(database, 1))
    await reached.wait()
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    monkeypatch.undo()
    if database.dialect == "postgresql":
        assert database.pool_usage() == (0, 1)  # (in use, open): given back
    async with asyncio.timeout(5):
        await write(database, 2)
    assert await counted(database) == [2]


async def test_a_nested_transaction_leaves_the_outer_ones_connection_alone(database: DatabaseService) -> None:
    async with database.transaction():
        await database.engine.run_ddl("INSERT INTO counted VALUES (1)")
        with pytest.raises(RuntimeError):
            async with database.transaction():
                raise RuntimeError("the inner block fails; the outer one goes on")
        await database.engine.run_ddl("INSERT INTO counted VALUES (2)")
    assert await counted(database) == [1, 2]
