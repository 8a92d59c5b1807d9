"""The SDK's pytest fixtures as a plugin author uses them: the ``coderic`` marker, fixture
overrides, a started kernel per test on a throw-away database, once per chosen database."""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import pytest

HOLA_CONFIG = {"plugins.hello.greeting": "hola", "plugins.hello.max_greetings": "7"}
HOLA = pytest.mark.coderic(plugins=["hello"], config=HOLA_CONFIG)


@HOLA
async def test_the_marker_chooses_plugins_and_their_settings(
    coderic_kernel: Any, coderic_plugins: list[str], coderic_config: dict[str, Any]
) -> None:
    assert coderic_plugins == ["hello"]
    assert coderic_config == HOLA_CONFIG
    settings = coderic_kernel.plugin("hello").settings
    assert settings.greeting == "hola"
    assert settings.max_greetings == 7
    assert [p.name for p in coderic_kernel.kernel.plugins] == ["kernel", "email", "auth", "files", "notifications", "search", "hello"]


@pytest.mark.coderic(plugins=["hello"])
async def test_unset_settings_keep_their_defaults(coderic_kernel: Any) -> None:
    settings = coderic_kernel.plugin("hello").settings
    assert (settings.greeting, settings.max_greetings) == ("hello", 100)


async def test_without_the_marker_only_the_builtins_run(coderic_kernel: Any, coderic_plugins: list[str]) -> None:
    assert coderic_plugins == []
    assert [p.name for p in coderic_kernel.kernel.plugins] == ["kernel", "email", "auth", "files", "notifications", "search"]
    assert (await coderic_kernel.client.get("/api/v1/hello/greeting")).status_code == 404
    assert (await coderic_kernel.client.get("/api/v1/plugins")).status_code == 200


@HOLA
async def test_the_client_is_bound_to_the_test_kernel(coderic_client: Any, coderic_kernel: Any) -> None:
    assert isinstance(coderic_client, httpx2.AsyncClient)
    assert coderic_client is coderic_kernel.client
    response = await coderic_client.get("/api/v1/hello/greeting")
    assert response.json() == {"greeting": "hola"}


@HOLA
async def test_the_kernel_runs_on_the_parametrized_database(
    coderic_kernel: Any, coderic_database: str, request: pytest.FixtureRequest
) -> None:
    assert request.node.name.endswith(f"[{coderic_database}]")
    assert coderic_kernel.kernel.dialect == coderic_database
    assert coderic_kernel.kernel.environment == "test"
    assert await coderic_kernel.kernel.migrations.pending() == []


@HOLA
@pytest.mark.parametrize("attempt", [1, 2])
async def test_every_test_gets_a_fresh_database(coderic_client: Any, attempt: int) -> None:
    assert (await coderic_client.get("/api/v1/hello/greetings")).json() == {"greetings": []}
    created = await coderic_client.post("/api/v1/hello/greetings", json={"text": f"attempt {attempt}"})
    assert created.json()["id"] == 1
    assert len((await coderic_client.get("/api/v1/hello/greetings")).json()["greetings"]) == 1


@pytest.fixture
def hello_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture the hello plugin's INFO records; request it before ``coderic_kernel``."""
    caplog.set_level(logging.INFO, logger="coderic.plugins.hello")
    return caplog


@HOLA
async def test_the_plugin_lifespan_runs_before_the_test(
    hello_logs: pytest.LogCaptureFixture, coderic_kernel: Any
) -> None:
    started = [r.getMessage() for r in hello_logs.get_records("setup") if r.name == "coderic.plugins.hello"]
    assert started == ["hello plugin started"]


class TestOverridingTheFixtures:
    """An author may override ``coderic_plugins`` and ``coderic_config`` instead of marking."""

    @pytest.fixture
    def coderic_plugins(self) -> list[str]:
        return ["hello"]

    @pytest.fixture
    def coderic_config(self) -> dict[str, Any]:
        return {"plugins.hello.greeting": "hej"}

    async def test_overridden_fixtures_configure_the_kernel(self, coderic_kernel: Any) -> None:
        assert coderic_kernel.plugin("hello").settings.greeting == "hej"
        response = await coderic_kernel.client.get("/api/v1/hello/greeting")
        assert response.json() == {"greeting": "hej"}


@pytest.mark.coderic(plugins=["hello"])
async def test_check_plugin_says_what_a_plugin_lacks(coderic_kernel: Any) -> None:
    from coderic_sdk.testing import check_plugin

    # hello keeps a table but declares no personal data; its migrations do run both ways first
    with pytest.raises(AssertionError, match="keeps tables but declares no personal data"):
        await check_plugin(coderic_kernel, "hello")
    assert await coderic_kernel.kernel.migrations.pending() == []
    with pytest.raises(AssertionError, match="is not loaded"):
        await check_plugin(coderic_kernel, "tasks")
    contract = await coderic_kernel.contract("hello")
    assert "hello.boom" in contract.operations and contract.tables == ("hello_greeting",)


@pytest.mark.coderic(plugins=["hello"])
async def test_coderic_user_grants_a_role_globally_or_on_one_resource(coderic_user: Any) -> None:
    from coderic_sdk import Resource

    moderator = await coderic_user("mod@example.org", role="moderator")
    owner = await coderic_user(role="project_owner", on=Resource("hello.project", "7"))
    roles = (await moderator.client.get("/api/v1/me/roles")).json()
    assert "moderator" in str(roles)
    grants = (await owner.client.get("/api/v1/me/roles")).json()["grants"]
    assert [(g["role"], g["resource_type"], g["resource_id"]) for g in grants] == [("project_owner", "hello.project", "7")]
