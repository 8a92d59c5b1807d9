"""pytest fixtures for plugin authors: a real kernel with chosen plugins on a throw-away
database, and an async HTTP client bound to it.

    @pytest.mark.coderic(plugins=["hello"], config={"plugins.hello.greeting": "hola"})
    async def test_greets(coderic_client):
        response = await coderic_client.get("/api/v1/hello/greeting")
        assert response.json() == {"greeting": "hola"}

Tests that use these fixtures run once per database named by ``--coderic-db`` (or
``CODERIC_TEST_DATABASES``), ``sqlite`` by default, ``sqlite,postgresql`` in the kernel's CI.
Tests that also ask for ``coderic_services`` run once per service backend named by
``--coderic-services`` (or ``CODERIC_TEST_SERVICES``): ``memory`` (in-process, the default)
and ``redis``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import pytest

try:  # async fixtures must work in pytest-asyncio's strict mode too, not only in auto mode
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - coderic-sdk[testing] brings pytest-asyncio
    async_fixture = pytest.fixture

HARNESS_GROUP = "coderic.testing"
DATABASES = ("sqlite", "postgresql")
SERVICES = ("memory", "redis")


class Harness(Protocol):
    """What the kernel's test harness offers; the fixtures below are thin wrappers over it."""

    def __call__(
        self,
        *,
        plugins: Sequence[str],
        config: Mapping[str, Any],
        database: str,
        workdir: os.PathLike[str],
        services: str = "memory",
    ) -> AbstractAsyncContextManager[Any]: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("coderic")
    group.addoption(
        "--coderic-db",
        default=os.environ.get("CODERIC_TEST_DATABASES", "sqlite"),
        help="comma-separated databases to run kernel tests on: sqlite, postgresql (default: sqlite)",
    )
    group.addoption(
        "--coderic-services",
        default=os.environ.get("CODERIC_TEST_SERVICES", "memory"),
        help="comma-separated service backends for tests using coderic_services: memory, redis (default: memory)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Checked here, once, so that a wrong choice is a usage error (exit 4) even in a
    # project where no collected test uses the fixtures.
    _choices(config, "--coderic-db", DATABASES)
    _choices(config, "--coderic-services", SERVICES)
    config.addinivalue_line(
        "markers", "coderic(plugins=[...], config={...}): plugins and settings of the test kernel"
    )


def _choices(config: pytest.Config, option: str, known: tuple[str, ...]) -> list[str]:
    chosen = [d.strip() for d in str(config.getoption(option)).split(",") if d.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise pytest.UsageError(f"{option}: unknown choice(s) {unknown}; choose from {list(known)}")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize over the chosen databases and services, unless the test pins its own."""
    pinned = {
        name.strip()
        for marker in metafunc.definition.iter_markers("parametrize")
        for name in (marker.args[0].split(",") if isinstance(marker.args[0], str) else marker.args[0])
    }
    if "coderic_database" in metafunc.fixturenames and "coderic_database" not in pinned:
        metafunc.parametrize("coderic_database", _choices(metafunc.config, "--coderic-db", DATABASES), indirect=True)
    if "coderic_services" in metafunc.fixturenames and "coderic_services" not in pinned:
        metafunc.parametrize(
            "coderic_services", _choices(metafunc.config, "--coderic-services", SERVICES), indirect=True
        )


@pytest.fixture
def coderic_database(request: pytest.FixtureRequest) -> str:
    """The database this test runs on: ``sqlite`` or ``postgresql``."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def coderic_services(request: pytest.FixtureRequest) -> str:
    """The backend of cache, rate limits, events and jobs: ``memory`` or ``redis``."""
    return str(getattr(request, "param", "memory"))


def _marker_kwargs(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("coderic")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def coderic_plugins(request: pytest.FixtureRequest) -> list[str]:
    """Plugins the test kernel enables besides the built-ins. Override, or use the marker."""
    return list(_marker_kwargs(request).get("plugins", []))


@pytest.fixture
def coderic_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for the test kernel as dotted keys: ``environment``, ``plugins.hello.greeting``."""
    return dict(_marker_kwargs(request).get("config", {}))


def load_harness() -> Harness:
    """Find the kernel's harness through its entry point, so the SDK never imports the kernel."""
    from importlib.metadata import entry_points

    found = entry_points(group=HARNESS_GROUP, name="kernel")
    if not found:
        raise pytest.UsageError("the Coderic test fixtures need the kernel: pip install coderic-kernel")
    harness: Harness = next(iter(found)).load()
    return harness


@async_fixture
async def coderic_kernel(
    request: pytest.FixtureRequest,
    coderic_plugins: list[str],
    coderic_config: dict[str, Any],
    coderic_database: str,
    tmp_path: Any,
) -> AsyncIterator[Any]:
    """A started kernel: ``.kernel`` (the SDK's ``Kernel``), ``.app``, ``.client``, ``.plugin(name)``.

    It uses Redis-backed services when the test also asks for ``coderic_services`` and that
    parameter is ``redis``; in-process ones otherwise.
    """
    harness = load_harness()
    services = "memory"
    if "coderic_services" in request.fixturenames:
        services = request.getfixturevalue("coderic_services")
    async with harness(
        plugins=coderic_plugins, config=coderic_config, database=coderic_database, workdir=tmp_path,
        services=services,
    ) as running:
        yield running


@async_fixture
async def coderic_client(coderic_kernel: Any) -> Any:
    """An ``httpx2.AsyncClient`` bound to the test kernel's app (no network)."""
    return coderic_kernel.client


@pytest.fixture
def coderic_user(coderic_kernel: Any) -> Any:
    """Make a member signed in: ``ana = await coderic_user("ana@example.org")``, with a global
    role (``role="moderator"``) or a role on one resource (``role="projects.maintainer",
    on=Resource("projects.project", "1")``). ``ana.id`` is their id, ``ana.client`` their client."""
    return coderic_kernel.user


@pytest.fixture
def coderic_emails(coderic_kernel: Any) -> Any:
    """``await coderic_emails(to=None, template=None)``: the emails sent, once queued work has run
    (``SentEmail``: ``to``, ``template``, ``subject``, ``text``, ``html``)."""
    return coderic_kernel.emails


@pytest.fixture
def coderic_notifications(coderic_kernel: Any) -> Any:
    """``await coderic_notifications(user_id, type=None)``: what a member was notified of, once
    queued work has run (``DeliveredNotification``: ``type``, ``data``, ``in_app``, ``email``)."""
    return coderic_kernel.notifications


@pytest.fixture
def coderic_search(coderic_kernel: Any) -> Any:
    """``await coderic_search(index, q="", user=None, filter=None, facets=(), sort=())``: what a
    member (``user``, an id; ``None``: a guest) finds, once queued index updates have run
    (``SearchResults``: ``hits``, ``total``, ``facets``)."""
    return coderic_kernel.search


@pytest.fixture
def coderic_events(coderic_kernel: Any) -> Any:
    """The list of events published during the test (``Event``: ``name``, ``data``, ``source``)."""
    return coderic_kernel.events
