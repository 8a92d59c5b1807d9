"""Test databases: throw-away, migrated in advance, created off the tests' path.

Most of a kernel test's set-up used to be migrating a fresh database. Now each process
migrates one template per set of migrations, and a test database starts as a copy of it: a
file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL. PostgreSQL copies are
made one test ahead and dropped one test behind, in a background thread, so that a test
waits for neither.

Every name this module gives a PostgreSQL database carries the process id, so a run killed
before it could clean up is cleaned up by the next one.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import hashlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .kernel import Kernel

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Prefixes of the PostgreSQL databases made here; the process id follows each.
TEST_PREFIX, SPARE_PREFIX, TEMPLATE_PREFIX = "coderic_test_", "coderic_spare_", "coderic_template_"


def services_required() -> bool:
    """In CI a missing service is a failure, never a skip."""
    return bool(os.environ.get("CI")) or os.environ.get("CODERIC_TEST_REQUIRE_SERVICES") == "1"


def service_missing(reason: str) -> None:
    import pytest

    if services_required():
        pytest.fail(f"{reason}; CI requires it")
    pytest.skip(reason)


def postgres_admin_url() -> str:
    return os.environ.get("CODERIC_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


@asynccontextmanager
async def throwaway_database(kind: str, workdir: Path, *, template: str | None = None) -> AsyncIterator[str]:
    """A database URL that exists for the duration of the block and nowhere else; a copy of
    ``template`` (a URL from ``migrated_template``) when given, else empty."""
    url = planned_database_url(kind, workdir)
    async with database_at(url, template=template):
        yield url


def planned_database_url(kind: str, workdir: Path) -> str:
    """The URL ``database_at`` will create: a kernel can be booted on it before it exists."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'coderic-test.db'}"
    if kind == "postgresql":
        return _postgres_url(_unique_name(TEST_PREFIX))
    raise ValueError(f"unknown test database {kind!r}")


@asynccontextmanager
async def database_at(url: str, *, template: str | None = None) -> AsyncIterator[None]:
    """Create the database at ``url`` (a copy of ``template`` when given) for the block."""
    if url.startswith("sqlite:"):
        if template is not None:
            shutil.copyfile(sqlite_path(template), sqlite_path(url))
        yield
        return
    name = _database_name(url)
    admin_url = postgres_admin_url()  # read once: a test may point the variable elsewhere meanwhile
    admin = await _postgres_admin()
    try:
        if template is None:
            await admin.execute(f'CREATE DATABASE "{name}"')
        else:
            await _copy_of(admin, admin_url, _database_name(template), name)
    finally:
        await admin.close()
    try:
        yield
    finally:
        _background().submit(_run, admin_url, _drop, name)


async def migrated_template(kind: str, kernel: Kernel, overrides: Mapping[str, Any]) -> str:
    """The URL of a database with ``kernel``'s migrations applied, made once per process.

    Keyed by the migration files themselves (plugin, folder, names), so a fake plugin reusing
    a name with other migrations gets a template of its own. ``overrides`` configure the kernel
    that migrates it. The test's kernel still migrates on start: a template is never trusted
    to be complete.
    """
    key = (kind, migration_signature(kernel))
    if key not in _TEMPLATES:
        _TEMPLATES[key] = await _make_template(kind, overrides, digest=hashlib.sha256(repr(key).encode()).hexdigest()[:12])
    return _TEMPLATES[key]


def migration_signature(kernel: Kernel) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    signature = []
    for entry in kernel.migrations.apps:
        folder = Path(entry.app.migrations_folder_path)
        names = tuple(sorted(p.name for p in folder.glob("*.py"))) if folder.is_dir() else ()
        signature.append((entry.plugin, str(folder), names))
    return tuple(signature)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def kernel_configuration(overrides: Mapping[str, Any], *, database_url: str) -> Any:
    """A kernel configuration of ``overrides`` alone (no files, no environment)."""
    from .config import load_configuration

    return load_configuration(environ={}, overrides={**overrides, "database_url": database_url}, read_files=False)


#: This process's template URLs by (kind, migration signature); see ``migrated_template``.
_TEMPLATES: dict[tuple[str, Any], str] = {}
#: A copy of each PostgreSQL template, being made for the next test that wants one, and the
#: server it is made on.
_SPARES: dict[str, tuple[str, Future[str]]] = {}


async def _make_template(kind: str, overrides: Mapping[str, Any], *, digest: str) -> str:
    from .kernel import Kernel

    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="coderic-templates-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        url = f"sqlite:///{folder / (digest + '.db')}"
    elif kind == "postgresql":
        name = f"{TEMPLATE_PREFIX}{os.getpid()}_{digest}"
        admin_url = postgres_admin_url()
        admin = await _postgres_admin()
        try:
            await _drop_orphans(admin)
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        atexit.register(_run, admin_url, _drop, name)
        url = _postgres_url(name)
    else:
        raise ValueError(f"unknown test database {kind!r}")
    kernel = Kernel.boot(kernel_configuration(overrides, database_url=url))
    async with kernel.opened():
        await kernel.migrations.forwards()
    return url


async def _copy_of(admin: Any, admin_url: str, template: str, name: str) -> None:
    """Make ``name`` a copy of ``template`` on the server of ``admin`` (at ``admin_url``): the
    spare made in advance, renamed, when there is one; then start the next spare."""
    spare_url, spare = _SPARES.pop(template, (None, None))
    taken = False
    if spare is not None and spare_url != admin_url:  # made on another server: not this test's
        _background().submit(_drop_spare, spare_url, spare)
    elif spare is not None:
        try:
            spare_name = await asyncio.wrap_future(spare)
            await admin.execute(f'ALTER DATABASE "{spare_name}" RENAME TO "{name}"')
            taken = True
        except Exception as exc:  # made again below, on the test's path
            print(f"coderic testing: spare copy of {template} unusable ({exc!r})", file=sys.stderr)
    if not taken:
        await _create_copy(admin, template, name)
    _SPARES[template] = admin_url, _background().submit(_run, admin_url, _spare_of, template)


async def _spare_of(admin: Any, template: str) -> str:
    name = _unique_name(SPARE_PREFIX)
    await _create_copy(admin, template, name)
    return name


async def _create_copy(admin: Any, template: str, name: str) -> None:
    """PostgreSQL refuses to copy a database someone is connected to, and a closed pool's
    connections take a moment to go."""
    import asyncpg

    for attempt in range(50):
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except asyncpg.ObjectInUseError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.1)


async def _drop(admin: Any, name: str) -> None:
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_spares() -> None:
    for admin_url, spare in _SPARES.values():
        _drop_spare(admin_url, spare)
    _SPARES.clear()


def _drop_spare(admin_url: str, spare: Future[str]) -> None:
    try:
        _run(admin_url, _drop, spare.result(timeout=60))
    except Exception as exc:
        print(f"coderic testing: a spare database was not made or dropped ({exc!r})", file=sys.stderr)


async def _drop_orphans(admin: Any) -> None:
    """Databases left by test processes that were killed before they could drop them."""
    for prefix in (TEST_PREFIX, SPARE_PREFIX, TEMPLATE_PREFIX):
        rows = await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", prefix.replace("_", r"\_") + "%")
        for row in rows:
            pid = row["datname"].removeprefix(prefix).split("_", 1)[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                await _drop(admin, row["datname"])


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(admin_url: str, operation: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``operation(admin, *args)`` on a connection of its own to ``admin_url`` (the server
    as it was named when the work was queued), outside any event loop (in the background
    thread, or at exit); what fails is reported, never raised into nothing."""

    async def run() -> Any:
        import asyncpg

        admin = await asyncpg.connect(admin_url, timeout=5)
        try:
            return await operation(admin, *args)
        finally:
            await admin.close()

    try:
        return asyncio.run(run())
    except Exception as exc:
        print(f"coderic testing: {operation.__name__}{args!r} failed: {exc!r}", file=sys.stderr)
        raise


@functools.cache
def _background() -> ThreadPoolExecutor:
    """One thread that makes spare copies and drops used databases, in order; its queue is
    finished at exit, before the spares and templates are dropped."""
    atexit.register(_drop_spares)  # atexit runs after thread pools have finished their queues
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="coderic-test-databases")


async def _postgres_admin() -> Any:
    import asyncpg

    admin_url = postgres_admin_url()
    try:
        return await asyncpg.connect(admin_url, timeout=5)
    except Exception as exc:
        service_missing(f"PostgreSQL at {admin_url} is unreachable ({type(exc).__name__}: {exc})")


def _postgres_url(name: str) -> str:
    return urlsplit(postgres_admin_url())._replace(path=f"/{name}").geturl()


def _database_name(url: str) -> str:
    return urlsplit(url).path.strip("/")


def _unique_name(prefix: str) -> str:
    return f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:10]}"
