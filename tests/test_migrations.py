"""Per-plugin migrations forwards and backwards, on every database of ``--coderic-db``.

The hello test plugin has two migrations: the first creates ``hello_greeting``, the second
adds its ``author`` column.
"""

from __future__ import annotations

import sqlite3
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from coderic_hello.tables import Greeting
from coderic_kernel.config.model import parse_database_url
from coderic_kernel.database import DatabaseService, MigrationRunner, PluginApp
from coderic_kernel.database.migrations import MigrationRecord, MigrationState
from coderic_kernel.errors import PluginError, StartupError
from coderic_kernel.kernel import Kernel
from coderic_kernel.testing import throwaway_database
from fakeplugins import boot
from piccolo.conf.apps import AppConfig

CREATE_TABLE = "2026-11-28T01:41:10:351619"
ADD_AUTHOR = "2026-11-28T01:41:25:030969"
BASE_COLUMNS = {"id", "text", "language", "created_at"}


def boot_hello(url: str, **config: Any) -> Kernel:
    return boot("hello", settings={"database_url": url, **config})


@pytest.fixture
async def database_url(coderic_database: str, tmp_path: Path) -> AsyncIterator[str]:
    async with throwaway_database(coderic_database, tmp_path) as url:
        yield url


@pytest.fixture
async def kernel(database_url: str) -> AsyncIterator[Kernel]:
    """A kernel with hello enabled and its database open, nothing migrated."""
    kernel = boot_hello(database_url)
    async with kernel.opened():
        yield kernel


async def table_names(dialect: str) -> set[str]:
    sql = (
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        if dialect == "sqlite"
        else "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    return {row["name"] for row in await MigrationRecord.raw(sql)}


async def column_names(dialect: str, table: str) -> set[str]:
    sql = (
        "SELECT name FROM pragma_table_info({})"
        if dialect == "sqlite"
        else "SELECT column_name AS name FROM information_schema.columns WHERE table_name = {}"
    )
    return {row["name"] for row in await MigrationRecord.raw(sql, table)}


def hello_ids(states: list[MigrationState]) -> list[str]:
    """The hello plugin's migrations among ``states`` (the kernel may have migrations of its own)."""
    return [state.id for state in states if state.plugin == "hello"]


async def recorded(plugin: str) -> list[str]:
    rows = await MigrationRecord.select(MigrationRecord.name).where(MigrationRecord.app_name == plugin).order_by(
        MigrationRecord.id
    )
    return [row["name"] for row in rows]


async def test_forwards_applies_every_migration_in_order_and_records_it(kernel: Kernel) -> None:
    assert hello_ids(await kernel.migrations.pending()) == [CREATE_TABLE, ADD_AUTHOR]
    assert hello_ids(await kernel.migrations.forwards()) == [CREATE_TABLE, ADD_AUTHOR]
    assert await recorded("hello") == [CREATE_TABLE, ADD_AUTHOR]
    assert await kernel.migrations.pending() == []
    assert all(m.applied for m in await kernel.migrations.status())
    assert "hello_greeting" in await table_names(kernel.dialect)
    assert await column_names(kernel.dialect, "hello_greeting") == BASE_COLUMNS | {"author"}
    assert await kernel.migrations.forwards() == []
    assert await recorded("hello") == [CREATE_TABLE, ADD_AUTHOR]


async def test_the_migrated_table_stores_rows(kernel: Kernel) -> None:
    await kernel.migrations.forwards()
    await Greeting.insert(Greeting(text="hi", author="ana"))
    assert await Greeting.select(Greeting.text, Greeting.author) == [{"text": "hi", "author": "ana"}]


async def test_backwards_one_reverses_only_the_newest_migration(kernel: Kernel) -> None:
    await kernel.migrations.forwards()
    reversed_ = await kernel.migrations.backwards("hello", "1")
    assert [m.id for m in reversed_] == [ADD_AUTHOR]
    assert await column_names(kernel.dialect, "hello_greeting") == BASE_COLUMNS
    assert await recorded("hello") == [CREATE_TABLE]
    assert [m.id for m in await kernel.migrations.pending()] == [ADD_AUTHOR]


async def test_backwards_all_drops_the_table_and_forwards_again_restores_it(kernel: Kernel) -> None:
    await kernel.migrations.forwards()
    reversed_ = await kernel.migrations.backwards("hello", "all")
    assert [m.id for m in reversed_] == [ADD_AUTHOR, CREATE_TABLE]
    assert "hello_greeting" not in await table_names(kernel.dialect)
    assert await recorded("hello") == []
    assert hello_ids(await kernel.migrations.forwards()) == [CREATE_TABLE, ADD_AUTHOR]
    assert await column_names(kernel.dialect, "hello_greeting") == BASE_COLUMNS | {"author"}
    assert await recorded("hello") == [CREATE_TABLE, ADD_AUTHOR]


async def test_backwards_to_an_id_reverses_down_to_it_included(kernel: Kernel) -> None:
    await kernel.migrations.forwards()
    assert [m.id for m in await kernel.migrations.backwards("hello", CREATE_TABLE)] == [ADD_AUTHOR, CREATE_TABLE]
    assert "hello_greeting" not in await table_names(kernel.dialect)


async def test_backwards_to_an_unknown_id_is_a_one_line_plugin_error(kernel: Kernel) -> None:
    await kernel.migrations.forwards()
    with pytest.raises(PluginError) as raised:
        await kernel.migrations.backwards("hello", "2020-01-01T00:00:00:000000")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("plugin 'hello' failed at migrate: ")
    assert "2020-01-01T00:00:00:000000" in message
    assert CREATE_TABLE in message and ADD_AUTHOR in message  # what could be chosen instead
    assert await recorded("hello") == [CREATE_TABLE, ADD_AUTHOR]


async def test_backwards_for_a_plugin_without_migrations_names_those_with_them(kernel: Kernel) -> None:
    with pytest.raises(PluginError, match=r"^plugin 'nobody' failed at migrate: .*plugins with migrations: .*\bhello\b"):
        await kernel.migrations.backwards("nobody", "all")


async def test_start_refuses_pending_migrations_and_names_their_count(database_url: str) -> None:
    kernel = boot_hello(database_url)
    async with kernel.opened():
        pending = await kernel.migrations.pending()
    assert hello_ids(pending) == [CREATE_TABLE, ADD_AUTHOR]
    with pytest.raises(StartupError, match=rf"^{len(pending)} migration\(s\) pending") as raised:
        async with kernel.started():
            pytest.fail("the kernel started with pending migrations")
    assert "\n" not in str(raised.value)
    assert any(f"{m.plugin}:{m.id}" in str(raised.value) for m in pending)  # the first few are named
    assert "coderic migrate" in str(raised.value)


async def test_start_with_migrate_applies_pending_migrations(database_url: str) -> None:
    kernel = boot_hello(database_url)
    async with kernel.started(migrate=True):
        assert await kernel.migrations.pending() == []
        assert await recorded("hello") == [CREATE_TABLE, ADD_AUTHOR]
    async with boot_hello(database_url).started():  # nothing pending any more
        pass


async def test_start_migrates_when_the_configuration_says_so(database_url: str) -> None:
    async with boot_hello(database_url, migrate_on_start=True).started() as kernel:
        assert await kernel.migrations.pending() == []


async def test_start_counts_a_single_reversed_migration_as_pending(database_url: str) -> None:
    kernel = boot_hello(database_url)
    async with kernel.opened():
        await kernel.migrations.forwards()
        await kernel.migrations.backwards("hello", "1")
    with pytest.raises(StartupError, match=rf"^1 migration\(s\) pending \(hello:{ADD_AUTHOR}\)"):
        async with boot_hello(database_url).started():
            pass


BROKEN_MIGRATION = """
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Varchar

ID = "{id}"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="broken")
    manager.add_table(class_name="{cls}", tablename="{table}")
    {extra}
    return manager
"""

# Creates its table, then alters a table that does not exist: it fails midway.
FAILS_MIDWAY = """manager.add_column(
        table_class_name="Missing", tablename="broken_missing", column_name="name",
        db_column_name="name", column_class_name="Varchar", column_class=Varchar, params={"length": 10},
    )"""


def broken_app(folder: Path) -> AppConfig:
    """A plugin app whose first migration works and whose second fails after creating a table."""
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    migrations = [
        ("broken_0001", "2026-01-01T00:00:00:000001", "Thing", "broken_thing", ""),
        ("broken_0002", "2026-01-01T00:00:00:000002", "Partial", "broken_partial", FAILS_MIDWAY),
    ]
    for stem, id_, cls, table, extra in migrations:
        source = textwrap.dedent(BROKEN_MIGRATION).format(id=id_, cls=cls, table=table, extra=extra)
        (folder / f"{stem}.py").write_text(source)
    return AppConfig(app_name="broken", migrations_folder_path=str(folder), table_classes=[])


async def test_a_migration_failing_midway_leaves_no_record_and_no_partial_table(
    database_url: str, tmp_path: Path
) -> None:
    database = DatabaseService(parse_database_url(database_url))
    runner = MigrationRunner(database, [PluginApp("broken", broken_app(tmp_path / "broken_migrations"))])
    await database.open([MigrationRecord])
    try:
        with pytest.raises(PluginError) as raised:
            await runner.forwards()
        message = str(raised.value)
        assert message.startswith("plugin 'broken' failed at migrate: applying 2026-01-01T00:00:00:000002: ")
        assert "\n" not in message
        assert await recorded("broken") == ["2026-01-01T00:00:00:000001"]
        tables = await table_names(database.dialect)
        assert "broken_thing" in tables
        assert "broken_partial" not in tables  # DDL rolls back on SQLite too
        assert [m.id for m in await runner.pending()] == ["2026-01-01T00:00:00:000002"]
    finally:
        await database.close()


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    async with throwaway_database("sqlite", tmp_path) as url:
        kernel = boot_hello(url)
        async with kernel.opened():
            path = parse_database_url(url).path
            assert path is not None
            with sqlite3.connect(path) as connection:
                assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
