"""Configuration: layers in order of priority, where each value came from, and one-line errors
that name the key, the value's source and what is accepted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.config import Configuration, load_configuration
from coderic_kernel.errors import ConfigError
from fakeplugins import FakePlugin, FakeSite, boot, fake_plugins  # noqa: F401

DATABASE_URL_FORMS = (
    "sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user:password@host:5432/name"
)


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so no ``plugins.toml`` or ``.env`` of the repository is read."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(
    toml: str | None = None,
    *,
    dotenv: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Configuration:
    """Load with the given ``plugins.toml`` and ``.env`` written into the working directory."""
    if toml is not None:
        Path("plugins.toml").write_text(toml, encoding="utf-8")
    if dotenv is not None:
        Path(".env").write_text(dotenv, encoding="utf-8")
    return load_configuration(environ=environ or {}, overrides=overrides)


def error(**kwargs: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load(**kwargs)
    message = str(caught.value)
    assert "\n" not in message
    return message


# Layers ---------------------------------------------------------------------------------

#: The same three settings in every layer, lowest priority first.
LAYERS: list[dict[str, Any]] = [
    {
        "toml": '[kernel]\nmax_body_bytes = 2048\n[plugins]\nenabled = ["hello"]\n[plugins.hello]\ngreeting = "toml"\n',
    },
    {"dotenv": "CODERIC_MAX_BODY_BYTES=3072\nCODERIC_PLUGINS=hello,a\nCODERIC_PLUGINS__HELLO__GREETING=dotenv\n"},
    {"environ": {"CODERIC_MAX_BODY_BYTES": "4096", "CODERIC_PLUGINS": "hello,b", "CODERIC_PLUGINS__HELLO__GREETING": "env"}},
    {"overrides": {"max_body_bytes": 5120, "plugins.enabled": ["c"], "plugins.hello.greeting": "override"}},
]

#: What wins when the layers up to and including one are present: value and source of each key.
WINNERS = [
    (
        {"max_body_bytes": 1_048_576, "enabled": (), "greeting": None},
        {"max_body_bytes": "default", "plugins.enabled": "default", "plugins.hello.greeting": "default"},
    ),
    (
        {"max_body_bytes": 2048, "enabled": ("hello",), "greeting": "toml"},
        {
            "max_body_bytes": "plugins.toml [kernel] max_body_bytes",
            "plugins.enabled": "plugins.toml [plugins] enabled",
            "plugins.hello.greeting": "plugins.toml [plugins.hello] greeting",
        },
    ),
    (
        {"max_body_bytes": 3072, "enabled": ("hello", "a"), "greeting": "dotenv"},
        {
            "max_body_bytes": ".env file CODERIC_MAX_BODY_BYTES",
            "plugins.enabled": ".env file CODERIC_PLUGINS",
            "plugins.hello.greeting": ".env file CODERIC_PLUGINS__HELLO__GREETING",
        },
    ),
    (
        {"max_body_bytes": 4096, "enabled": ("hello", "b"), "greeting": "env"},
        {
            "max_body_bytes": "environment CODERIC_MAX_BODY_BYTES",
            "plugins.enabled": "environment CODERIC_PLUGINS",
            "plugins.hello.greeting": "environment CODERIC_PLUGINS__HELLO__GREETING",
        },
    ),
    (
        {"max_body_bytes": 5120, "enabled": ("c",), "greeting": "override"},
        {"max_body_bytes": "override", "plugins.enabled": "override", "plugins.hello.greeting": "override"},
    ),
]


@pytest.mark.parametrize(("top", "winner"), list(enumerate(WINNERS)), ids=["defaults", "toml", "dotenv", "environment", "overrides"])
def test_each_layer_takes_priority_over_those_below(top: int, winner: tuple[dict[str, Any], dict[str, str]]) -> None:
    layers = {name: value for layer in LAYERS[:top] for name, value in layer.items()}
    config = load(**layers)
    values, sources = winner
    assert config.kernel.max_body_bytes == values["max_body_bytes"]
    assert config.enabled == values["enabled"]
    assert config.plugin_values.get("hello", {}).get("greeting") == values["greeting"]
    assert {key: config.source(key) for key in sources} == sources


def test_a_key_keeps_the_source_of_the_layer_that_set_it() -> None:
    config = load(
        '[kernel]\nlog_level = "WARNING"\nmax_body_bytes = 2048\n',
        environ={"CODERIC_MAX_BODY_BYTES": "4096"},
    )
    assert (config.kernel.log_level, config.source("log_level")) == ("WARNING", "plugins.toml [kernel] log_level")
    assert (config.kernel.max_body_bytes, config.source("max_body_bytes")) == (4096, "environment CODERIC_MAX_BODY_BYTES")
    assert (config.kernel.environment, config.source("environment")) == ("development", "default")
    assert config.path == Path("plugins.toml")


def test_coderic_config_and_env_file_choose_the_files(elsewhere: Path) -> None:
    (elsewhere / "site.toml").write_text("[kernel]\nmax_body_bytes = 2048\n", encoding="utf-8")
    (elsewhere / "site.env").write_text("CODERIC_LOG_LEVEL=ERROR\n", encoding="utf-8")
    config = load(
        "[kernel]\nmax_body_bytes = 9999\n",
        dotenv="CODERIC_LOG_LEVEL=DEBUG\n",
        environ={"CODERIC_CONFIG": "site.toml", "CODERIC_ENV_FILE": "site.env"},
    )
    assert (config.kernel.max_body_bytes, config.source("max_body_bytes")) == (2048, "site.toml [kernel] max_body_bytes")
    assert (config.kernel.log_level, config.source("log_level")) == ("ERROR", "site.env file CODERIC_LOG_LEVEL")


def test_a_missing_configuration_file_is_an_error() -> None:
    assert error(environ={"CODERIC_CONFIG": "nowhere.toml"}) == "configuration file 'nowhere.toml' does not exist"


def test_read_files_false_ignores_plugins_toml_and_dotenv() -> None:
    Path("plugins.toml").write_text("[kernel]\nmax_body_bytes = 2048\n", encoding="utf-8")
    Path(".env").write_text("CODERIC_LOG_LEVEL=ERROR\n", encoding="utf-8")
    config = load_configuration(environ={}, read_files=False)
    assert (config.kernel.max_body_bytes, config.kernel.log_level, config.path) == (1_048_576, "INFO", None)


# Environment variables --------------------------------------------------------------------


def test_variables_that_are_not_settings_are_ignored() -> None:
    environ = {
        "CODERIC_TEST_DATABASES": "sqlite,postgresql",
        "CODERIC_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1/postgres",
        "CODERIC_DEBUG": "1",
        "CODERIC_CONFIG": "",
        "CODERICX": "not ours",
        "OTHER_PLUGINS": "hello",
    }
    config = load(environ=environ)
    assert config.enabled == ()
    assert config.sources == {}


def test_an_unknown_coderic_variable_is_refused_with_the_known_ones() -> None:
    message = error(environ={"CODERIC_DATABSE_URL": "sqlite:///x.db"})
    assert message.startswith("environment CODERIC_DATABSE_URL is not a setting; kernel settings are ")
    listed = re.match(r".* kernel settings are ([A-Z0-9_]+(?:, [A-Z0-9_]+)*)", message)
    assert listed is not None, message
    known = listed.group(1).split(", ")
    assert {"CODERIC_DATABASE_URL", "CODERIC_LOG_LEVEL", "CODERIC_MAX_BODY_BYTES"} <= set(known)
    assert known == sorted(known)


def test_the_known_variables_include_the_plugin_ones() -> None:
    """A typo of ``CODERIC_PLUGINS`` must be answered with the right name."""
    message = error(environ={"CODERIC_PLUGIN": "hello"})
    assert message.startswith("environment CODERIC_PLUGIN is not a setting")
    assert "CODERIC_PLUGINS" in re.findall(r"CODERIC_[A-Z_]+\b", message)
    assert "CODERIC_PLUGINS__<PLUGIN>__<KEY>" in message


def test_an_unknown_variable_in_dotenv_names_the_file() -> None:
    assert error(dotenv="CODERIC_LOGLEVEL=DEBUG\n").startswith(".env file CODERIC_LOGLEVEL is not a setting; ")


def test_a_plugin_variable_needs_plugin_and_key() -> None:
    assert error(environ={"CODERIC_PLUGINS__HELLO": "hola"}) == (
        "environment CODERIC_PLUGINS__HELLO: plugin settings are named CODERIC_PLUGINS__<PLUGIN>__<KEY>"
    )


def test_coderic_plugins_is_a_comma_separated_list() -> None:
    config = load(environ={"CODERIC_PLUGINS": " hello , forum,,hello, "})
    assert config.enabled == ("hello", "forum")
    assert config.source("plugins.enabled") == "environment CODERIC_PLUGINS"


def test_a_plugin_variable_reaches_the_plugins_settings() -> None:
    kernel = boot(environ={"CODERIC_PLUGINS": "hello", "CODERIC_PLUGINS__HELLO__GREETING": "hola"})
    assert kernel.plugin("hello").settings.greeting == "hola"
    assert kernel.config.plugin_source("hello", "greeting") == "environment CODERIC_PLUGINS__HELLO__GREETING"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ('["a", "b"]', ["a", "b"]),
        ('{"every": 5}', {"every": 5}),
        ("[not json", "[not json"),
        ("5", "5"),
    ],
)
def test_plugin_variables_holding_json_lists_and_tables_are_decoded(raw: str, value: Any) -> None:
    config = load(environ={"CODERIC_PLUGINS__HELLO__VALUE": raw})
    assert config.plugin_values["hello"]["value"] == value


def test_a_json_list_from_the_environment_validates_as_a_list_setting(fake_plugins: FakeSite) -> None:
    fake_plugins.install(FakePlugin("tags", """
        from coderic_sdk import PluginSettings

        class TagSettings(PluginSettings):
            names: list[str] = []

        @hookimpl
        def register_settings_model():
            return TagSettings
        """))
    kernel = boot("tags", environ={"CODERIC_PLUGINS__TAGS__NAMES": '["urgent", "later"]'})
    assert kernel.plugin("tags").settings.names == ["urgent", "later"]


# Invalid values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        pytest.param(
            {"environ": {"CODERIC_DATABASE_URL": "mysql://x"}},
            "invalid setting database_url = 'mysql://x' (from environment CODERIC_DATABASE_URL): "
            f"Value error, unsupported scheme 'mysql'; accepted: {DATABASE_URL_FORMS}",
            id="database-url-scheme",
        ),
        pytest.param(
            {"toml": "[kernel]\ndatabase_pool_max = 0\n"},
            "invalid setting database_pool_max = 0 (from plugins.toml [kernel] database_pool_max): "
            "Input should be greater than or equal to 1; accepted: a whole number (ge 1)",
            id="pool-max-zero",
        ),
        pytest.param(
            {"dotenv": "CODERIC_MIGRATE_ON_START=maybe\n"},
            "invalid setting migrate_on_start = 'maybe' (from .env file CODERIC_MIGRATE_ON_START): "
            "Input should be a valid boolean, unable to interpret input; accepted: true or false",
            id="boolean",
        ),
        pytest.param(
            {"overrides": {"log_level": "verbose"}},
            "invalid setting log_level = 'verbose' (from override): "
            "Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'; accepted: one of DEBUG, INFO, WARNING, ERROR",
            id="choice",
        ),
        pytest.param(
            {"environ": {"CODERIC_PLUGINS": "hello,Forum"}},
            "invalid setting plugins.enabled = ['hello', 'Forum'] (from environment CODERIC_PLUGINS): "
            "'Forum' is not a plugin name; accepted: lower-case names like 'projects'",
            id="plugin-name",
        ),
        pytest.param(
            {"toml": '[plugins]\nenabled = "hello"\n'},
            "invalid setting plugins.enabled = 'hello' (from plugins.toml [plugins] enabled): "
            "must be a list of plugin names; accepted: [\"projects\", \"forum\"]",
            id="enabled-not-a-list",
        ),
    ],
)
def test_an_invalid_value_names_key_source_and_what_is_accepted(layers: dict[str, Any], message: str) -> None:
    assert error(**layers) == message


def test_an_unknown_kernel_key_in_toml_lists_the_known_keys() -> None:
    message = error(toml='[kernel]\ndatabse_url = "sqlite:///x.db"\n')
    assert message.startswith(
        "invalid setting databse_url = 'sqlite:///x.db' (from plugins.toml [kernel] databse_url): "
        "Extra inputs are not permitted; accepted: one of the known keys: "
    )
    assert "database_url" in message.rpartition("known keys: ")[2].split(", ")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://admin:s3cret@/app",  # no host
        "postgresql://admin:s3cret@[db/app",  # not a URL at all
    ],
)
def test_a_database_password_never_appears_in_an_error(url: str) -> None:
    message = error(environ={"CODERIC_DATABASE_URL": url})
    assert message.startswith("invalid setting database_url = 'postgresql://admin:")
    assert "s3cret" not in message
    assert "(from environment CODERIC_DATABASE_URL)" in message


def test_a_sqlite_database_in_memory_is_refused() -> None:
    assert "an in-memory database cannot be shared between connections" in error(
        environ={"CODERIC_DATABASE_URL": "sqlite:///:memory:"}
    )


# plugins.toml --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        pytest.param(
            "[kernal]\nlog_level = 'DEBUG'\n[extra]\n",
            "plugins.toml: unknown table(s) [extra], [kernal]; expected [kernel] and [plugins]",
            id="unknown-table",
        ),
        pytest.param("kernel = 5\n", "plugins.toml: 'kernel' must be a table ([kernel])", id="kernel-not-a-table"),
        pytest.param(
            "[plugins]\nhello = true\n",
            "plugins.toml: [plugins] hello = True is not understood; use 'enabled = [...]' or a [plugins.<name>] table",
            id="plugins-scalar",
        ),
    ],
)
def test_a_misshapen_plugins_toml_is_refused(toml: str, message: str) -> None:
    assert error(toml=toml) == message


def test_malformed_toml_is_refused_with_where() -> None:
    message = error(toml="[kernel]\nlog_level = \n")
    assert message.startswith("plugins.toml is not valid TOML: ")
    assert "line 2" in message
