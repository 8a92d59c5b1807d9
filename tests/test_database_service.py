"""``DatabaseService`` on SQLite: transactions and cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from coderic_kernel.config.model import parse_database_url
from coderic_kernel.database import DatabaseService
from piccolo.engine.sqlite import SQLiteTransaction


@pytest.mark.parametrize("step", ["begin", "commit"])
async def test_a_transaction_cancelled_while_it_begins_or_commits_leaves_no_write_lock_behind(
    step: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server stopping cancels its loops wherever they are: just after ``BEGIN IMMEDIATE``
    ran, or just before ``COMMIT`` runs, the connection holds the write lock. The next writer
    must not wait out the 30 s busy timeout."""
    database = DatabaseService(parse_database_url(f"sqlite:///{tmp_path / 'coderic.db'}"))
    await database.open([])
    try:
        await database.engine.run_ddl("CREATE TABLE counted (n INTEGER)")
        reached = asyncio.Event()
        original = getattr(SQLiteTransaction, step)
        # What a cancelled task's traceback does until the collector gets to it (with the
        # object gone, its connection is closed and the lock freed by chance, not by design).
        held: list[SQLiteTransaction] = []

        async def interrupted(self: SQLiteTransaction) -> None:
            if step == "begin":
                await original(self)  # the lock is taken
            held.append(self)
            reached.set()
            await asyncio.sleep(60)  # cancelled here
            await original(self)

        monkeypatch.setattr(SQLiteTransaction, step, interrupted)

        async def write(n: int) -> None:
            async with database.transaction():
                await database.engine.run_ddl(f"INSERT INTO counted VALUES ({n})")

        cancelled = asyncio.create_task(write(1))
        await reached.wait()
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        monkeypatch.undo()
        async with asyncio.timeout(5):
            await write(2)
        assert await database.engine.run_ddl("SELECT n FROM counted") == [{"n": 2}]
    finally:
        await database.close()


async def test_a_nested_transaction_leaves_the_outer_ones_connection_alone(tmp_path: Path) -> None:
    database = DatabaseService(parse_database_url(f"sqlite:///{tmp_path / 'coderic.db'}"))
    await database.open([])
    try:
        await database.engine.run_ddl("CREATE TABLE counted (n INTEGER)")
        async with database.transaction():
            await database.engine.run_ddl("INSERT INTO counted VALUES (1)")
            with pytest.raises(RuntimeError):
                async with database.transaction():
                    raise RuntimeError("the inner block fails; the outer one goes on")
            await database.engine.run_ddl("INSERT INTO counted VALUES (2)")
        assert await database.engine.run_ddl("SELECT n FROM counted ORDER BY n") == [{"n": 1}, {"n": 2}]
    finally:
        await database.close()
