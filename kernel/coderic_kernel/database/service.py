"""``DatabaseService``: the SDK's ``Database`` over a Piccolo engine for SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any, Literal

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

from ..config import DatabaseURL
from . import binding


CLOSE_TIMEOUT_SECONDS = 10.0
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


class DatabaseService:
    def __init__(self, url: DatabaseURL, *, pool_min: int = 1, pool_max: int = 10) -> None:
        self.url = url
        self.pool_min = pool_min
        self.pool_max = max(pool_max, pool_min, 1)
        self._engine: Engine = self._create_engine()
        self._pooled = False

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return self.url.dialect

    @property
    def engine(self) -> Engine:
        return self._engine

    def _create_engine(self) -> Engine:
        if self.url.dialect == "sqlite":
            assert self.url.path is not None
            # Writers wait their turn up to 30 s instead of sqlite3's 5 s before "database is locked".
            return SQLiteEngine(path=str(self.url.path), timeout=SQLITE_BUSY_TIMEOUT_SECONDS)
        return _DeferredPostgresEngine(config={"dsn": self.url.url}, extensions=(), log_queries=False)

    async def open(self, tables: Iterable[type[Table]]) -> None:
        """Bind the tables, prepare the database file or pool, and check that it answers."""
        binding.bind(self._engine, tables)
        if self.url.dialect == "sqlite":
            assert self.url.path is not None
            await asyncio.to_thread(_prepare_sqlite, str(self.url.path))
        else:
            await self._engine.start_connection_pool(min_size=self.pool_min, max_size=self.pool_max)
            self._pooled = True
        await self.ping()

    async def close(self) -> None:
        """Close the pool; connections still held after ``CLOSE_TIMEOUT_SECONDS`` (a task
        cancelled mid-query, say) are terminated rather than waited for forever."""
        if self._pooled:
            self._pooled = False
            pool = getattr(self._engine, "pool", None)
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):  # never wait_for: see services/background.py
                    await self._engine.close_connection_pool()
            except TimeoutError:
                if pool is not None:
                    pool.terminate()

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A transaction; nested calls join the outer one.

        On SQLite it takes the write lock when it begins (BEGIN IMMEDIATE): a deferred
        transaction that reads and then writes can fail with "database is locked" when
        another connection wrote in between, where an immediate one simply waits its turn.
        """
        if self.url.dialect == "sqlite":
            immediate = self._engine.transaction(transaction_type=TransactionType.immediate)  # type: ignore[call-arg]
            return _Released(immediate, _roll_back_and_close)
        return _Released(self._engine.transaction(), partial(_give_back, self._engine))

    async def ping(self) -> None:
        await self._engine.run_ddl("SELECT 1")

    def pool_usage(self) -> tuple[int, int] | None:
        """(connections in use, pool size) for PostgreSQL; ``None`` for SQLite."""
        pool = getattr(self._engine, "pool", None)
        if pool is None:
            return None
        return pool.get_size() - pool.get_idle_size(), pool.get_size()


class _DeferredPostgresEngine(PostgresEngine):
    """Piccolo's engine connects from its constructor to check the server version, which
    would make booting (and ``coderic --help``) wait on the network. The kernel checks the
    server when it opens the database instead (``DatabaseService.open``)."""

    async def check_version(self) -> None:
        return None


class _Released:
    """Piccolo's transaction, with its connection released whatever interrupts it.

    Piccolo takes a connection and begins in ``__aenter__``; a task cancelled there (a
    server stopping its loops, a job's timeout) gets the ``CancelledError`` after BEGIN may
    already have run, and ``__aexit__`` never runs. ``__aexit__`` in turn leaves the
    connection held when its COMMIT or ROLLBACK fails or is cancelled. Either way the
    connection stays in its transaction: on SQLite it holds the write lock until the
    collector frees it, and every other writer meanwhile waits out the busy timeout (30 s),
    then fails with "database is locked"; on PostgreSQL it is lost to the pool, with any row
    locks it took. Here it is rolled back and released (``release``), shielded from a second
    cancellation, before the error goes on."""

    __slots__ = ("transaction", "release")

    def __init__(self, transaction: Any, release: Callable[[Any], Awaitable[None]]) -> None:
        self.transaction = transaction
        self.release = release

    async def __aenter__(self) -> Any:
        try:
            return await self.transaction.__aenter__()
        except BaseException:
            await self._release()
            raise

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.transaction.__aexit__(*exc_info)
        except BaseException:
            await self._release()
            raise

    async def _release(self) -> None:
        if getattr(self.transaction, "_parent", None) is not None:  # nested: the outer one owns the connection
            return
        connection = getattr(self.transaction, "connection", None)  # None: it failed before connecting
        if connection is not None:
            await asyncio.shield(self.release(connection))


async def _roll_back_and_close(connection: Any) -> None:
    """SQLite: Piccolo opens a connection per transaction."""
    try:
        await connection.execute("ROLLBACK")
    except (sqlite3.Error, ValueError):  # no transaction (BEGIN had not run, or COMMIT had), or already closed
        pass
    finally:
        await connection.close()


async def _give_back(engine: Any, connection: Any) -> None:
    """PostgreSQL: the pool's release rolls back what is open; without a pool, Piccolo opened
    the connection for the transaction."""
    import asyncpg

    if engine.pool is None:
        await connection.close()
        return
    try:
        await engine.pool.release(connection)
    except asyncpg.InterfaceError:  # Piccolo had released it already
        pass


def _prepare_sqlite(path: str) -> None:
    """Create the file's folder and switch to WAL, which lets readers and a writer overlap."""
    from pathlib import Path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
