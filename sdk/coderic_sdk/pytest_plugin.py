"""pytest fixtures for plugin authors: a real kernel with chosen plugins on a throw-away
database, and an async HTTP client bound to it.

    @pytest.mark.coderic(plugins=["hello"], config={"plugins.hello.greeting": "hola"})
    async def test_greets(coderic_client):
        response = await coderic_client.get("/api/v1/hello/greeting")
        assert response.json() == {"greeting": "hola"}

Tests that use these fixtures run once per database named by ``--coderic-db`` (or
``CODERIC_TEST_DATABASES``), ``sqlite`` by default, ``sqlite,postgresql`` in the kernel's CI.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import pytest

HARNESS_GROUP = "coderic.testing"
DATABASES = ("sqlite", "postgresql")


class Harness(Protocol):
    """What the kernel's test harness offers; the fixtures below are thin wrappers over it."""

    def __call__(
        self,
        *,
        plugins: Sequence[str],
        config: Mapping[str, Any],
        database: str,
        workdir: os.PathLike[str],
    ) -> AbstractAsyncContextManager[Any]: ...


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("coderic")
    group.addoption(
        "--coderic-db",
        default=os.environ.get("CODERIC_TEST_DATABASES", "sqlite"),
        help="comma-separated databases to run kernel tests on: sqlite, postgresql (default: sqlite)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "coderic(plugins=[...], config={...}): plugins and settings of the test kernel"
    )


def _databases(config: pytest.Config) -> list[str]:
    chosen = [d.strip() for d in str(config.getoption("--coderic-db")).split(",") if d.strip()]
    unknown = sorted(set(chosen) - set(DATABASES))
    if unknown:
        raise pytest.UsageError(f"--coderic-db: unknown database(s) {unknown}; choose from {list(DATABASES)}")
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "coderic_database" in metafunc.fixturenames:
        metafunc.parametrize("coderic_database", _databases(metafunc.config), indirect=True)


@pytest.fixture
def coderic_database(request: pytest.FixtureRequest) -> str:
    """The database this test runs on: ``sqlite`` or ``postgresql``."""
    return str(getattr(request, "param", "sqlite"))


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


@pytest.fixture
async def coderic_kernel(
    coderic_plugins: list[str],
    coderic_config: dict[str, Any],
    coderic_database: str,
    tmp_path: Any,
) -> AsyncIterator[Any]:
    """A started kernel: ``.kernel`` (the SDK's ``Kernel``), ``.app``, ``.client``, ``.plugin(name)``."""
    harness = load_harness()
    async with harness(
        plugins=coderic_plugins, config=coderic_config, database=coderic_database, workdir=tmp_path
    ) as running:
        yield running


@pytest.fixture
async def coderic_client(coderic_kernel: Any) -> Any:
    """An ``httpx2.AsyncClient`` bound to the test kernel's app (no network)."""
    return coderic_kernel.client
