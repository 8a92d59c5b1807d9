"""The SDK's pytest plugin seen from a plugin author's project: run an inner test suite with
``pytester`` and check what pytest reports."""

from __future__ import annotations

import socket

import pytest

pytest_plugins = ["pytester"]

AUTO_MODE_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

# The example of the plugin's docstring, as an author would paste it.
AUTHOR_TESTS = """
import pytest

@pytest.mark.coderic(plugins=["hello"], config={"plugins.hello.greeting": "hola"})
async def test_greets(coderic_client):
    response = await coderic_client.get("/api/v1/hello/greeting")
    assert response.json() == {"greeting": "hola"}

@pytest.mark.coderic(plugins=["hello"])
async def test_settings(coderic_kernel, coderic_database):
    assert coderic_kernel.plugin("hello").settings.greeting == "hello"
    assert coderic_kernel.kernel.dialect == coderic_database

def test_plain():
    pass
"""


@pytest.fixture
def author_project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(AUTO_MODE_INI)
    pytester.makepyfile(test_author=AUTHOR_TESTS)
    return pytester


def test_the_fixtures_run_an_authors_tests_on_sqlite(author_project: pytest.Pytester) -> None:
    result = author_project.runpytest("--coderic-db=sqlite", "--strict-markers", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        ["*::test_greets[[]sqlite[]] PASSED*", "*::test_settings[[]sqlite[]] PASSED*", "*::test_plain PASSED*"]
    )


def test_database_tests_run_once_per_chosen_database(author_project: pytest.Pytester) -> None:
    result = author_project.runpytest("--coderic-db=sqlite, postgresql", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "test_author.py::test_greets[[]sqlite[]]",
            "test_author.py::test_greets[[]postgresql[]]",
            "test_author.py::test_settings[[]sqlite[]]",
            "test_author.py::test_settings[[]postgresql[]]",
            "test_author.py::test_plain",
        ]
    )


def test_the_databases_default_to_the_environment(
    author_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODERIC_TEST_DATABASES", "postgresql")
    result = author_project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_author.py::test_greets[[]postgresql[]]"])
    result.stdout.no_fnmatch_line("*sqlite*")


def test_the_database_defaults_to_sqlite(author_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CODERIC_TEST_DATABASES", raising=False)
    result = author_project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_author.py::test_greets[[]sqlite[]]"])
    result.stdout.no_fnmatch_line("*postgresql*")


def test_an_unknown_database_is_a_usage_error(author_project: pytest.Pytester) -> None:
    result = author_project.runpytest("--coderic-db=oracle")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "oracle" in output
    assert "sqlite" in output and "postgresql" in output  # what to choose instead


def test_the_option_and_marker_are_documented(author_project: pytest.Pytester) -> None:
    help_text = author_project.runpytest("--help")
    help_text.stdout.fnmatch_lines(["*--coderic-db*"])
    markers = author_project.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.coderic(plugins=*config=*"])


def test_the_fixtures_work_in_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    """pytest-asyncio's default mode: the author marks async tests, the SDK's async fixtures must still run."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_strict="""
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.coderic(plugins=["hello"], config={"plugins.hello.greeting": "hola"})
        async def test_greets(coderic_client):
            response = await coderic_client.get("/api/v1/hello/greeting")
            assert response.json() == {"greeting": "hola"}
        """
    )
    result = pytester.runpytest("--coderic-db=sqlite")
    result.assert_outcomes(passed=1)


def test_a_failing_author_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makeini(AUTO_MODE_INI)
    pytester.makepyfile(
        test_wrong="""
        import pytest

        @pytest.mark.coderic(plugins=["hello"], config={"plugins.hello.greeting": "hola"})
        async def test_greets(coderic_client):
            response = await coderic_client.get("/api/v1/hello/greeting")
            assert response.json() == {"greeting": "hello"}
        """
    )
    pytester.runpytest("--coderic-db=sqlite").assert_outcomes(failed=1)


def test_an_invalid_plugin_setting_fails_the_test_naming_it(pytester: pytest.Pytester) -> None:
    pytester.makeini(AUTO_MODE_INI)
    pytester.makepyfile(
        test_invalid="""
        import pytest

        @pytest.mark.coderic(plugins=["hello"], config={"plugins.hello.max_greetings": 0})
        async def test_greets(coderic_client):
            pass
        """
    )
    result = pytester.runpytest("--coderic-db=sqlite")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*plugin 'hello' failed at settings: max_greetings*"])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def postgresql_missing(author_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The author's project, with the test PostgreSQL server pointed where nothing listens."""
    monkeypatch.setenv("CODERIC_TEST_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/postgres")
    monkeypatch.delenv("CODERIC_TEST_REQUIRE_SERVICES", raising=False)
    return author_project


def test_a_missing_postgresql_fails_the_test_in_ci(
    postgresql_missing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = postgresql_missing.runpytest("--coderic-db=postgresql", "-rE")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(["*PostgreSQL at postgresql://postgres@127.0.0.1:* is unreachable*CI requires it*"])


def test_a_missing_postgresql_skips_the_test_outside_ci(
    postgresql_missing: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = postgresql_missing.runpytest("--coderic-db=postgresql", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*PostgreSQL at postgresql://postgres@127.0.0.1:* is unreachable*"])
