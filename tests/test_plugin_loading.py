"""Plugin loading: every way a plugin can fail stops boot with one line naming the plugin, the
phase and the cause; plugins that load do so in dependency order.

The plugins here are fake installed distributions (see ``fakeplugins.py``) found by the
kernel's real entry-point discovery.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from coderic_kernel.errors import PluginError
from coderic_kernel.plugins.discovery import discover_installed
from coderic_kernel.testing import start_kernel
from fakeplugins import FakePlugin, FakeSite, Project, boot, boot_error, fake_plugins, project  # noqa: F401

SDK_VERSION = version("coderic-sdk")


def routes(prefix: str | None = None, body: str = "None") -> str:
    """A plugin serving ``POST /ping`` (under ``prefix`` if given) whose body model is ``body``."""
    return f"""
        from coderic_sdk import Route, Schema
        from pydantic import BaseModel

        class Strict(Schema):
            text: str

        class Loose(BaseModel):
            text: str

        async def ping(ctx):
            return {{"ok": True}}

        @hookimpl
        def register_routes():
            return [Route("POST", "/ping", ping, name="ping", body={body}, prefix={prefix!r})]
        """


def tables(app_name: str, *tablenames: str) -> str:
    """A plugin whose Piccolo app ``app_name`` holds one table per name."""
    classes = "".join(
        f"class Table{i}(Table, tablename={name!r}):\n    label = Varchar()\n\n" for i, name in enumerate(tablenames)
    )
    listed = ", ".join(f"Table{i}" for i in range(len(tablenames)))
    return f"""
from pathlib import Path

from piccolo.columns import Varchar
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

{classes}
@hookimpl
def register_piccolo_app():
    return AppConfig(app_name={app_name!r}, migrations_folder_path=str(Path(__file__).parent), table_classes=[{listed}])
"""


def hook(definition: str) -> str:
    """A plugin implementing one hook given as its ``def`` line; the body returns nothing."""
    return f"@hookimpl\n{definition}\n    return None\n"


# Each case: the fake distributions installed, the plugins enabled, the one-line error.
FAILURES = [
    pytest.param(
        [FakePlugin("a", "import coderic_no_such_module\n")], ["a"],
        "plugin 'a' failed at import: ModuleNotFoundError: No module named 'coderic_no_such_module'",
        id="import-missing-module",
    ),
    pytest.param(
        [FakePlugin("a", "raise ImportError('libfoo is not installed')\n")], ["a"],
        "plugin 'a' failed at import: ImportError: libfoo is not installed",
        id="import-error",
    ),
    pytest.param(
        [FakePlugin("a", "raise SystemExit('bye')\n")], ["a"],
        "plugin 'a' failed at import: SystemExit: bye",
        id="import-system-exit",
    ),
    pytest.param(
        [FakePlugin("a", hook("def register_routes(plugin, extra):"))], ["a"],
        "plugin 'a' failed at register: PluginValidationError: Plugin 'a' for hook 'register_routes' "
        "hookimpl definition: register_routes(plugin, extra) "
        "Argument(s) {'extra'} are declared in the hookimpl but can not be found in the hookspec",
        id="bad-hook-signature",
    ),
    pytest.param(
        [FakePlugin("a", hook("def register_route(plugin):"))], ["a"],
        "plugin 'a' failed at register: implements unknown hook 'register_route'",
        id="unknown-hook",
    ),
    pytest.param(
        [FakePlugin("a", requires=["coderic-sdk>=9"])], ["a"],
        f"plugin 'a' failed at resolve: supports coderic-sdk >=9, but {SDK_VERSION} is installed",
        id="incompatible-sdk",
    ),
    pytest.param(
        [FakePlugin("a", requires=[])], ["a"],
        "plugin 'a' failed at resolve: does not declare the coderic-sdk versions it supports; "
        "add e.g. 'coderic-sdk>=0.1,<0.2' to its dependencies",
        id="no-sdk-range",
    ),
    pytest.param(
        [FakePlugin("a", requires=["coderic-sdk>=0.1", "fake-b>=1"]), FakePlugin("b")], ["a"],
        "plugin 'a' failed at resolve: requires plugin 'b', which is not enabled; add it to [plugins] enabled",
        id="missing-required-plugin",
    ),
    pytest.param(
        [
            FakePlugin("a", requires=["coderic-sdk>=0.1", "fake-b"]),
            FakePlugin("b", requires=["coderic-sdk>=0.1", "fake-a"]),
        ],
        ["a", "b"],
        "plugin 'a' failed at resolve: dependency cycle: 'a' -> 'b' -> 'a'",
        id="dependency-cycle",
    ),
    pytest.param(
        [FakePlugin("dup", distribution="fake-dup-one"), FakePlugin("dup", distribution="fake-dup-two")], ["dup"],
        "plugin 'dup' failed at discover: provided by two installed distributions, 'fake-dup-one' and 'fake-dup-two'; "
        "uninstall one",
        id="two-distributions",
    ),
    pytest.param(
        [FakePlugin("a", routes(prefix="b")), FakePlugin("b", routes())], ["a", "b"],
        "plugin 'b' failed at routes: route prefix '/api/v1/b' is already claimed by plugin 'a'",
        id="duplicate-route-prefix",
    ),
    pytest.param(
        [FakePlugin("a", tables("a", "a_b_items")), FakePlugin("a_b", tables("a_b", "a_b_items"))], ["a", "a_b"],
        "plugin 'a_b' failed at database: table 'a_b_items' is already defined by plugin 'a'",
        id="duplicate-table",
    ),
    pytest.param(
        [FakePlugin("a", tables("a", "items"))], ["a"],
        "plugin 'a' failed at database: table 'items' must be named 'a_<name>'",
        id="table-without-prefix",
    ),
    pytest.param(
        [FakePlugin("a", tables("shop", "a_items"))], ["a"],
        "plugin 'a' failed at database: its Piccolo app is named 'shop'; name it 'a'",
        id="piccolo-app-name",
    ),
    pytest.param(
        [FakePlugin("a", routes(body="Loose"))], ["a"],
        "plugin 'a' failed at routes: route 'ping': body model Loose must refuse unknown fields "
        "(subclass coderic_sdk.Schema)",
        id="body-allows-unknown-fields",
    ),
    *(
        pytest.param(
            [FakePlugin("a", hook(f"async def {name}():"))], ["a"],
            f"plugin 'a' failed at {phase}: {name} must be a plain function, not async",
            id=f"async-{name}",
        )
        for name, phase in [
            ("register_settings_model", "settings"),
            ("register_piccolo_app", "database"),
            ("register_routes", "routes"),
            ("register_middleware", "middleware"),
            ("register_health_checks", "start"),
        ]
    ),
]


@pytest.mark.parametrize(("installed", "enabled", "message"), FAILURES)
def test_a_failing_plugin_stops_boot_with_one_line(
    fake_plugins: FakeSite, installed: list[FakePlugin], enabled: list[str], message: str
) -> None:
    fake_plugins.install(*installed)
    assert boot_error(*enabled) == message


def test_a_route_prefix_inside_another_plugins_prefix_is_refused(fake_plugins: FakeSite) -> None:
    """``prefix="b/extra"`` would serve ``/api/v1/b/extra/ping``, inside plugin b's URLs."""
    fake_plugins.install(FakePlugin("a", routes(prefix="b/extra")), FakePlugin("b", routes()))
    message = boot_error("a", "b")
    assert " failed at routes: " in message
    assert "'a'" in message and "'b'" in message


def test_a_plugin_with_a_syntax_error_fails_at_import(fake_plugins: FakeSite) -> None:
    fake_plugins.install(FakePlugin("a", "def broken(:\n    pass\n"))
    assert boot_error("a").startswith("plugin 'a' failed at import: SyntaxError: ")


def test_enabled_but_not_installed_lists_what_is_installed(fake_plugins: FakeSite) -> None:
    fake_plugins.install(FakePlugin("zebra"))
    message = boot_error("ghost")
    installed = ", ".join(sorted(discover_installed()))
    assert message == f"plugin 'ghost' failed at discover: enabled (override) but not installed; installed plugins: {installed}"
    assert "hello" in installed and "zebra" in installed


def test_a_built_in_plugin_cannot_be_enabled() -> None:
    assert boot_error("kernel") == (
        "plugin 'kernel' failed at discover: is built into the kernel and always on; remove it from [plugins] enabled"
    )


# Settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "environ", "message"),
    [
        ({"plugins.hello.greeting": 5}, {}, "greeting: Input should be a valid string (from override)"),
        ({"plugins.hello.colour": "red"}, {}, "colour: unknown setting (from override)"),
        (
            {}, {"CODERIC_PLUGINS__HELLO__MAX_GREETINGS": "0"},
            "max_greetings: Input should be greater than or equal to 1 (from environment CODERIC_PLUGINS__HELLO__MAX_GREETINGS)",
        ),
    ],
    ids=["wrong-type", "unknown-key", "from-environment"],
)
def test_invalid_settings_name_the_field_reason_and_source(settings: dict, environ: dict, message: str) -> None:
    assert boot_error("hello", settings=settings, environ=environ) == f"plugin 'hello' failed at settings: {message}"


def test_a_required_setting_that_is_missing_is_named(fake_plugins: FakeSite) -> None:
    fake_plugins.install(FakePlugin("mail", """
        from coderic_sdk import PluginSettings, Secret

        class MailSettings(PluginSettings):
            api_key: Secret

        @hookimpl
        def register_settings_model():
            return MailSettings
        """))
    assert boot_error("mail") == (
        "plugin 'mail' failed at settings: api_key: required; set [plugins.mail] api_key or CODERIC_PLUGINS__MAIL__API_KEY"
    )
    settings = boot("mail", environ={"CODERIC_PLUGINS__MAIL__API_KEY": "k3y"}).plugin("mail").settings
    assert settings.api_key.get_secret_value() == "k3y"


def test_a_plugin_without_a_settings_model_refuses_any_setting(fake_plugins: FakeSite) -> None:
    fake_plugins.install(FakePlugin("a"))
    assert boot_error("a", settings={"plugins.a.key": 1}) == "plugin 'a' failed at settings: key: unknown setting (from override)"


# Start ----------------------------------------------------------------------------------


LIFESPAN = """
from contextlib import asynccontextmanager

EVENTS = []

@hookimpl
def lifespan(plugin):
    @asynccontextmanager
    async def running():
        EVENTS.append("enter")
        if plugin.name == "broken":
            raise RuntimeError("cannot reach the mail server")
        try:
            yield
        finally:
            EVENTS.append("exit")

    return running()
"""


async def start_error(workdir: Path, *enabled: str) -> str:
    """The message of the ``PluginError`` that stops ``Kernel.started()``."""
    kernel = boot(*enabled, settings={"database_url": f"sqlite:///{workdir / 'start.db'}"})
    with pytest.raises(PluginError) as caught:
        async with kernel.started(migrate=True):
            pass
    return str(caught.value)


async def test_a_lifespan_that_raises_stops_start_and_closes_those_entered(fake_plugins: FakeSite, tmp_path: Path) -> None:
    first, broken = FakePlugin("a", LIFESPAN), FakePlugin("broken", LIFESPAN)
    fake_plugins.install(first, broken)
    message = await start_error(tmp_path, "a", "broken")
    assert message == "plugin 'broken' failed at start: RuntimeError: cannot reach the mail server"
    assert sys.modules[first.module].EVENTS == ["enter", "exit"]
    assert sys.modules[broken.module].EVENTS == ["enter"]


async def test_an_async_lifespan_hook_fails_at_start(fake_plugins: FakeSite, tmp_path: Path) -> None:
    fake_plugins.install(FakePlugin("a", hook("async def lifespan(plugin):")))
    message = await start_error(tmp_path, "a")
    assert message == "plugin 'a' failed at start: lifespan must be a plain function, not async"


# Order and metadata --------------------------------------------------------------------


def ordered_pair() -> list[FakePlugin]:
    """``a`` requires ``b`` (through its distribution), so ``b`` loads first."""
    return [
        FakePlugin("a", routes(), requires=["coderic-sdk>=0.1,<1", "fake-b>=2", "fake-extra-only; extra == 'x'"],
                   version="1.4.0", summary="Plugin A, which needs B."),
        FakePlugin("b", hook("def lifespan():"), version="2.0.1", summary="Plugin B."),
    ]


def test_plugins_load_after_the_plugins_they_require(fake_plugins: FakeSite) -> None:
    fake_plugins.install(*ordered_pair())
    assert [p.name for p in boot("a", "b").plugins] == ["kernel", "email", "auth", "files", "notifications", "search", "b", "a"]


async def test_the_plugin_list_shows_load_order_and_packaging_metadata(fake_plugins: FakeSite, tmp_path: Path) -> None:
    fake_plugins.install(*ordered_pair())
    async with start_kernel(plugins=["a", "b"], config={}, database="sqlite", workdir=tmp_path) as running:
        response = await running.client.get("/api/v1/plugins")
    assert response.status_code == 200
    listed = {p["name"]: p for p in response.json()["plugins"]}
    assert list(listed) == ["kernel", "email", "auth", "files", "notifications", "search", "b", "a"]
    assert listed["kernel"]["builtin"] is True
    assert listed["kernel"]["hooks"] == [
        "register_health_checks", "register_permissions", "register_piccolo_app", "register_routes",
    ]
    shown = ["version", "description", "distribution", "requires", "sdk_range", "builtin", "hooks"]
    assert {k: listed["a"][k] for k in shown} == {
        "version": "1.4.0", "description": "Plugin A, which needs B.", "distribution": "fake-a",
        "requires": ["b"], "sdk_range": "<1,>=0.1", "builtin": False, "hooks": ["register_routes"],
    }
    assert {k: listed["b"][k] for k in shown} == {
        "version": "2.0.1", "description": "Plugin B.", "distribution": "fake-b",
        "requires": [], "sdk_range": ">=0.1", "builtin": False, "hooks": ["lifespan"],
    }


# Through the command line ---------------------------------------------------------------


COMMANDS_TWICE = """
import click

@hookimpl
def register_commands():
    @click.command("sync")
    def first():
        pass

    @click.command("sync")
    def second():
        pass

    return [first, second]
"""


#: Failures that only a command shows: the plugin's commands are built when one is run.
COMMAND_FAILURES = [
    pytest.param(
        [FakePlugin("a", COMMANDS_TWICE)], ["a"], "plugin 'a' failed at commands: two commands are named 'sync'",
        id="two-commands-one-name",
    ),
    pytest.param(
        [FakePlugin("a", hook("async def register_commands():"))], ["a"],
        "plugin 'a' failed at commands: register_commands must be a plain function, not async",
        id="async-register_commands",
    ),
]
CASES = {case.id: case.values for case in [*FAILURES, *COMMAND_FAILURES]}


@pytest.mark.parametrize(
    ("case", "argv"),
    [
        ("import-error", ["config", "show"]),
        ("incompatible-sdk", ["migrate", "--check"]),
        ("dependency-cycle", ["serve"]),
        ("duplicate-table", ["migrate"]),
        ("two-commands-one-name", ["a", "sync"]),
        ("async-register_commands", ["a", "--help"]),
    ],
)
def test_the_command_line_shows_a_plugin_failure_as_one_line(
    fake_plugins: FakeSite, project: Project, case: str, argv: list[str]
) -> None:
    installed, enabled, message = CASES[case]
    fake_plugins.install(*installed)
    project.configure(enabled)
    assert project.fails_to_start(*argv) == message


def test_the_command_line_lists_installed_plugins_when_one_is_missing(project: Project) -> None:
    project.configure(["ghost"])
    message = project.fails_to_start("config", "show")
    assert message.startswith(
        "plugin 'ghost' failed at discover: enabled (plugins.toml [plugins] enabled) but not installed; installed plugins: "
    )
    assert "hello" in message.rpartition(": ")[2].split(", ")


def test_a_plugin_named_like_a_kernel_command_is_refused(fake_plugins: FakeSite, project: Project) -> None:
    fake_plugins.install(FakePlugin("doctor"))
    project.configure(["doctor"])
    assert project.fails_to_start("doctor") == (
        "plugin 'doctor' failed at commands: 'coderic doctor' is a kernel command; the plugin needs another name"
    )


def test_debug_shows_the_traceback_of_a_plugin_failure(fake_plugins: FakeSite, project: Project) -> None:
    fake_plugins.install(FakePlugin("a", "raise ImportError('libfoo is not installed')\n"))
    project.configure(["a"])
    result = project.run("--debug", "config", "show")
    assert result.code == 2
    assert result.err.startswith("Traceback (most recent call last):")
    assert "raise ImportError('libfoo is not installed')" in result.err
    assert "The above exception was the direct cause of the following exception" in result.err
    assert result.err.endswith("\ncoderic: error: plugin 'a' failed at import: ImportError: libfoo is not installed\n")
