"""The ``coderic`` command, run in-process in a project folder with its own ``plugins.toml``
and a SQLite database under it."""

from __future__ import annotations

import json
import re

import pytest
from coderic_kernel import __version__ as kernel_version
from fakeplugins import FakePlugin, FakeSite, Project, fake_plugins, project  # noqa: F401

HELLO_MIGRATIONS = [
    ("2026-11-28T01:41:10:351619", "Create the greeting table"),
    ("2026-11-28T01:41:25:030969", "Add the author column"),
]
KERNEL_MIGRATIONS = [
    ("2026-11-28T01:53:24:988303", "Create the job outbox"),
    ("2026-11-28T02:22:25:329399", "Create the email service's tables: messages, their events, address preferences, "
                                   "newsletter subscriptions, suppressions and newsletter issues"),
    ("2026-11-28T02:34:46:785023", "Add kernel_file: one record per stored file (owner, plugin, purpose, storage key, "
                                   "detected type, size, checksum, visibility, status)."),
    ("2026-11-30T07:39:13:743234", "Add identity: users, linked identities, sessions, refresh tokens, personal tokens, "
                                   "one-time tokens, recovery codes, the auth audit trail and signing keys."),
    ("2026-11-30T08:02:56:613020", "Add roles: custom roles, admins' changes to role permissions, and role grants "
                                   "(global or on a resource, with their history)."),
    ("2026-11-30T08:11:23:365093", "Add profiles (links, who sees each field, the uploaded avatar) and the activity "
                                   "history."),
    ("2026-11-30T08:16:26:861331", "Add data exports: the archives of their data members asked for, while they are "
                                   "built and kept."),
    ("2026-11-30T08:28:46:401466", "Notifications: inbox rows, preferences per type, quiet hours"),
    ("2026-11-30T11:49:11:054102", "Web Push: browsers subscribed to push, and the push choice per notification type"),
]
#: Every migration in the order ``coderic migrate`` lists them: the kernel's first.
MIGRATIONS = [*(("kernel", *m) for m in KERNEL_MIGRATIONS), *(("hello", *m) for m in HELLO_MIGRATIONS)]
K = len(KERNEL_MIGRATIONS)  # indexes of hello's migrations in MIGRATIONS start here
ALL = range(len(MIGRATIONS))
#: A PostgreSQL server that refuses at once: booting never waits, nothing is ever reached.
POSTGRES_URL = "postgresql://admin:s3cret@127.0.0.1:1/app"
DOCTOR_LINE = re.compile(r"^(ok   |FAIL ) [a-z_]+: \S.*$")


def migration_lines(status: str, *indexes: int) -> list[str]:
    """The lines ``coderic migrate`` prints for migrations (indexes into MIGRATIONS) with a status."""
    return [f"{status:<9} {MIGRATIONS[i][0]:<16} {MIGRATIONS[i][1]}  {MIGRATIONS[i][2]}" for i in indexes]


def plugin_rows(output: str) -> dict[str, tuple[str, str, str]]:
    """``coderic plugins list`` as name -> (version, enabled, status)."""
    header, *rows = output.splitlines()
    assert header.split() == ["NAME", "VERSION", "ENABLED", "STATUS"]
    table = {}
    for row in rows:
        name, version, enabled, status = row.split(None, 3)
        table[name] = (version, enabled, status)
    return table


# config show ---------------------------------------------------------------------------


SECRETS = """
    from coderic_sdk import PluginSettings, Secret

    class VaultSettings(PluginSettings):
        token: Secret
        upstream: str = "https://vault.example"

    @hookimpl
    def register_settings_model():
        return VaultSettings
    """


def test_config_show_redacts_secrets_and_says_where_values_came_from(project: Project, fake_plugins: FakeSite) -> None:
    fake_plugins.install(FakePlugin("vault", SECRETS))
    project.configure(["vault"], database_url=POSTGRES_URL, extra="""
        [plugins.vault]
        token = "t0ken"
        upstream = "https://robot:pa55@vault.example"
        """)
    result = project.run("config", "show")
    assert result.code == 0, result
    assert result.lines[0] == "# configuration file: plugins.toml"
    shown = {line.split(" = ")[0].strip(): line.split(" = ", 1)[1] for line in result.lines[1:]}
    assert shown["database_url"].split() == [
        '"postgresql://admin:********@127.0.0.1:1/app"', "#", "plugins.toml", "[kernel]", "database_url",
    ]
    assert shown["log_level"].split() == ['"INFO"', "#", "default"]
    assert shown["plugins.enabled"].split() == ['["vault"]', "#", "plugins.toml", "[plugins]", "enabled"]
    assert shown["plugins.vault.token"].split() == ['"********"', "#", "plugins.toml", "[plugins.vault]", "token"]
    assert shown["plugins.vault.upstream"].split()[0] == '"https://robot:********@vault.example"'
    for secret in ("s3cret", "t0ken", "pa55"):
        assert secret not in result.out


def test_config_show_json(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    project.configure(["hello"], database_url=POSTGRES_URL)
    monkeypatch.setenv("CODERIC_PLUGINS__HELLO__GREETING", "hola")
    result = project.run("config", "show", "--json")
    assert result.code == 0, result
    shown = json.loads(result.out)
    assert shown["database_url"] == {
        "value": "postgresql://admin:********@127.0.0.1:1/app", "source": "plugins.toml [kernel] database_url",
    }
    assert shown["plugins.enabled"] == {"value": ["hello"], "source": "plugins.toml [plugins] enabled"}
    assert shown["plugins.hello.greeting"] == {"value": "hola", "source": "environment CODERIC_PLUGINS__HELLO__GREETING"}
    assert shown["plugins.hello.max_greetings"] == {"value": 100, "source": "default"}


def test_config_show_redacts_a_password_given_as_a_query_parameter(project: Project) -> None:
    project.configure(database_url="postgresql://admin@127.0.0.1:1/app?password=s3cret")
    result = project.run("config", "show")
    assert result.code == 0, result
    assert "s3cret" not in result.out


# plugins list --------------------------------------------------------------------------


def test_plugins_list_shows_the_kernel_and_a_disabled_plugin(project: Project) -> None:
    result = project.run("plugins", "list")
    assert result.code == 0, result
    rows = plugin_rows(result.out)
    assert rows["kernel"] == (kernel_version, "yes", "built in")
    assert rows["hello"] == ("0.1.0", "no", "disabled")


def test_plugins_list_shows_an_enabled_plugin_loaded(project: Project) -> None:
    project.configure(["hello"])
    result = project.run("plugins", "list")
    assert result.code == 0, result
    assert plugin_rows(result.out)["hello"] == ("0.1.0", "yes", "loaded")


def test_plugins_list_shows_why_a_plugin_failed(project: Project, fake_plugins: FakeSite) -> None:
    fake_plugins.install(FakePlugin("zeta", version="3.2.1"))
    project.configure(["hello", "zeta"], extra="[plugins.hello]\nmax_greetings = 0\n")
    result = project.run("plugins", "list")
    assert result.code == 1, result
    rows = plugin_rows(result.out)
    assert rows["hello"] == (
        "0.1.0", "yes",
        "failed at settings: max_greetings: Input should be greater than or equal to 1 "
        "(from plugins.toml [plugins.hello] max_greetings)",
    )
    assert rows["zeta"] == ("3.2.1", "yes", "not loaded (another plugin failed)")


# doctor --------------------------------------------------------------------------------


def test_doctor_reports_pending_migrations_then_passes_once_migrated(project: Project) -> None:
    project.configure(["hello"])
    before = project.run("doctor")
    assert before.code == 1, before
    assert all(DOCTOR_LINE.match(line) for line in before.lines), before.out
    assert before.lines == [
        "ok    configuration: plugins.toml",
        "ok    plugins: kernel, email, auth, files, notifications, search, hello",
        "ok    database: reachable",
        f"FAIL  migrations: {len(MIGRATIONS)} pending; run 'coderic migrate'",
    ]
    assert project.run("migrate").code == 0
    after = project.run("doctor")
    assert after.code == 0, after
    assert after.lines[-1] == "ok    migrations: up to date"
    assert [line.split()[0] for line in after.lines] == ["ok"] * 4


def test_doctor_fails_when_plugin_settings_are_invalid(project: Project) -> None:
    project.configure(["hello"], extra="[plugins.hello]\ngreeting = 5\n")
    result = project.run("doctor")
    assert result.code == 1, result
    assert result.lines == [
        "ok    configuration: plugins.toml",
        "FAIL  plugins: plugin 'hello' failed at settings: greeting: Input should be a valid string "
        "(from plugins.toml [plugins.hello] greeting)",
    ]


def test_doctor_fails_when_the_configuration_is_invalid(project: Project) -> None:
    (project.root / "plugins.toml").write_text("[kernel\n", encoding="utf-8")
    result = project.run("doctor")
    assert result.code == 1, result
    assert len(result.lines) == 1
    assert result.lines[0].startswith("FAIL  configuration: plugins.toml is not valid TOML: ")


def test_doctor_fails_when_the_database_is_unreachable(project: Project) -> None:
    (project.root / "blocker").write_text("a file where a folder should be", encoding="utf-8")
    project.configure(database_url=f"sqlite:///{project.root / 'blocker' / 'coderic.db'}")
    result = project.run("doctor")
    assert result.code == 1, result
    assert result.lines[:2] == ["ok    configuration: plugins.toml", "ok    plugins: kernel, email, auth, files, notifications, search"]
    assert result.lines[2].startswith("FAIL  database: ")
    assert all(DOCTOR_LINE.match(line) for line in result.lines), result.out


# migrate -------------------------------------------------------------------------------


def test_migrate_check_fails_while_migrations_are_pending(project: Project) -> None:
    project.configure(["hello"])
    pending = project.run("migrate", "--check")
    assert (pending.code, pending.lines) == (1, [*migration_lines("pending", *ALL), f"{len(ALL)} migration(s) pending"])
    applied = project.run("migrate")
    assert (applied.code, applied.lines) == (0, [*migration_lines("applied", *ALL), f"Applied {len(ALL)} migration(s)."])
    done = project.run("migrate", "--check")
    assert (done.code, done.lines) == (0, ["No migrations pending."])
    again = project.run("migrate")
    assert (again.code, again.lines) == (0, ["No migrations pending."])


def test_migrate_list_shows_each_migration_and_whether_it_is_applied(project: Project) -> None:
    project.configure(["hello"])
    assert project.run("migrate", "--list").lines == migration_lines("pending", *ALL)
    project.run("migrate")
    listed = project.run("migrate", "--list")
    assert (listed.code, listed.lines) == (0, migration_lines("applied", *ALL))


def test_migrate_backwards_reverses_the_newest_then_all(project: Project) -> None:
    project.configure(["hello"])
    project.run("migrate")
    newest = project.run("migrate", "hello", "--backwards", "1")
    assert (newest.code, newest.lines) == (0, [*migration_lines("reversed", K + 1), "Reversed 1 migration(s) of hello."])
    assert project.run("migrate", "--list").lines == [*migration_lines("applied", *ALL[:-1]), *migration_lines("pending", K + 1)]
    project.run("migrate")
    every = project.run("migrate", "hello", "--backwards", "all")
    assert (every.code, every.lines) == (0, [*migration_lines("reversed", K + 1, K), "Reversed 2 migration(s) of hello."])
    assert project.run("migrate", "--check").code == 1


def test_migrate_backwards_to_an_id_that_is_not_applied_names_the_applied_ones(project: Project) -> None:
    project.configure(["hello"])
    project.run("migrate")
    assert project.fails_to_start("migrate", "hello", "--backwards", "2020-01-01") == (
        "plugin 'hello' failed at migrate: migration '2020-01-01' is not applied; "
        f"applied: {HELLO_MIGRATIONS[0][0]}, {HELLO_MIGRATIONS[1][0]}"
    )


def test_migrate_backwards_needs_a_plugin(project: Project) -> None:
    project.configure(["hello"])
    result = project.run("migrate", "--backwards", "1")
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith("Usage: coderic migrate [OPTIONS] [PLUGIN]\n")
    assert result.err.endswith("Error: --backwards needs the PLUGIN whose migrations to reverse\n")


def test_migrate_refuses_a_plugin_without_migrations(project: Project) -> None:
    """A typo in the plugin name must not pass as "nothing to do"."""
    project.configure(["hello"])
    message = project.fails_to_start("migrate", "helo")
    assert message.startswith("plugin 'helo' failed at migrate: ")
    assert "hello" in message


# Plugin commands, help, serve ----------------------------------------------------------


def test_a_plugin_command_runs_with_the_plugins_settings(project: Project) -> None:
    project.configure(["hello"], extra='[plugins.hello]\ngreeting = "hola"\n')
    result = project.run("hello", "greet", "Ana")
    assert (result.code, result.out, result.err) == (0, "hola, Ana!\n", "")


def test_a_disabled_plugin_has_no_commands(project: Project) -> None:
    result = project.run("hello", "greet", "Ana")
    assert result.code == 2
    assert "No such command 'hello'" in result.err


def test_help_lists_kernel_and_plugin_commands(project: Project) -> None:
    project.configure(["hello"])
    result = project.run("--help")
    assert result.code == 0, result
    assert "Kernel commands:" in result.out and "Plugin commands:" in result.out
    assert re.search(r"^  hello +commands of the hello plugin", result.out, re.MULTILINE)


@pytest.mark.parametrize("broken", ["[kernel\n", "[kernel]\ndatabase_url = 'mysql://x'\n", "[nonsense]\n"])
def test_help_works_when_the_configuration_is_invalid(project: Project, broken: str) -> None:
    (project.root / "plugins.toml").write_text(broken, encoding="utf-8")
    result = project.run("--help")
    assert result.code == 0, result
    assert result.out.startswith("Usage: coderic [OPTIONS] COMMAND [ARGS]...")
    for command in ("serve", "migrate", "plugins", "config", "doctor"):
        assert re.search(rf"^  {command} ", result.out, re.MULTILINE), command
    # Only the built-ins' commands are offered: no enabled plugin can be read from a broken file.
    assert result.out.split("Plugin commands:")[1].split() == [
        "auth", "commands", "of", "the", "auth", "plugin", "('coderic", "auth", "--help')",
        "notifications", "commands", "of", "the", "notifications", "plugin", "('coderic", "notifications", "--help')",
        "search", "commands", "of", "the", "search", "plugin", "('coderic", "search", "--help')",
    ]


def test_an_invalid_configuration_stops_a_command_with_one_line(project: Project) -> None:
    project.configure(database_url="postgresql://admin:s3cret@/app")
    assert project.fails_to_start("config", "show") == (
        "invalid setting database_url = 'postgresql://admin:********@/app' (from plugins.toml [kernel] database_url): "
        "Value error, a PostgreSQL URL needs a host; accepted: "
        "sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user:password@host:5432/name"
    )


def test_serve_refuses_pending_migrations(project: Project, keep_logging: None) -> None:
    project.configure(["hello"])
    names = [f"{plugin}:{migration_id}" for plugin, migration_id, _ in MIGRATIONS]
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")  # the first five, then an ellipsis
    assert project.fails_to_start("serve", "--port", "0") == (
        f"{len(MIGRATIONS)} migration(s) pending ({shown}); run 'coderic migrate' or start with 'coderic serve --migrate'"
    )


def test_serve_refuses_several_workers_without_redis(project: Project, keep_logging: None) -> None:
    project.configure([])
    message = project.fails_to_start("serve", "--workers", "2", "--port", "0")
    assert message.startswith("--workers 2 needs redis_url:")
