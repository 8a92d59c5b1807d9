"""Layered configuration with provenance: every value remembers where it came from.

Priority, lowest first: defaults, ``plugins.toml``, ``.env``, environment variables, and
(for tests) explicit overrides. The names:

- ``[kernel] database_url`` / ``CODERIC_DATABASE_URL``
- ``[plugins] enabled = ["projects"]`` / ``CODERIC_PLUGINS=projects,forum``
- ``[plugins.projects] key`` / ``CODERIC_PLUGINS__PROJECTS__KEY``
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from dotenv import dotenv_values
from pydantic import SecretStr, ValidationError

from ..errors import ConfigError
from .model import KernelSettings, redact_url

PREFIX = "CODERIC_"
#: Variables with our prefix that are not settings: where to read settings from, and test knobs.
NOT_SETTINGS = re.compile(r"^CODERIC_(CONFIG|ENV_FILE|DEBUG|TEST_.*)$")
PLUGIN_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT = "default"


@dataclass(frozen=True)
class Configuration:
    """The effective configuration of one kernel instance."""

    kernel: KernelSettings
    enabled: tuple[str, ...]
    plugin_values: Mapping[str, Mapping[str, Any]]
    sources: Mapping[str, str] = field(default_factory=dict)
    path: Path | None = None

    def source(self, key: str) -> str:
        """Where a dotted key (``database_url``, ``plugins.hello.greeting``) was set."""
        return self.sources.get(key, DEFAULT)

    def plugin_source(self, plugin: str, key: str) -> str:
        return self.source(f"plugins.{plugin}.{key}")


class _Layers:
    """Collects raw values by dotted key; a later layer replaces an earlier one."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}

    def set(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source


def load_configuration(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    env_file: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    read_files: bool = True,
) -> Configuration:
    """Read every layer and validate the kernel's settings (plugins validate theirs later).

    ``read_files=False`` skips ``plugins.toml`` and ``.env`` (isolated test kernels).
    """
    environ = os.environ if environ is None else environ
    layers = _Layers()
    config_path = _config_path(path, environ) if read_files else None
    if config_path is not None:
        _read_toml(config_path, layers)
    dotenv_path = Path(env_file or environ.get("CODERIC_ENV_FILE", ".env"))
    if read_files and dotenv_path.is_file():
        dotenv = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
        _read_environment(dotenv, layers, f"{dotenv_path.name} file")
    _read_environment(environ, layers, "environment")
    for key, value in (overrides or {}).items():
        layers.set(_normalise_override(key), value, "override")
    return _build(layers, config_path)


def _config_path(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    if path is not None:
        chosen = Path(path)
    elif environ.get("CODERIC_CONFIG"):
        chosen = Path(environ["CODERIC_CONFIG"])
    else:
        default = Path("plugins.toml")
        return default if default.is_file() else None
    if not chosen.is_file():
        raise ConfigError(f"configuration file {str(chosen)!r} does not exist")
    return chosen


def _read_toml(path: Path, layers: _Layers) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"kernel", "plugins"})
    if unknown:
        raise ConfigError(f"{path.name}: unknown table(s) {', '.join(f'[{t}]' for t in unknown)}; expected [kernel] and [plugins]")
    for key, value in _table(data, "kernel", path).items():
        layers.set(key, value, f"{path.name} [kernel] {key}")
    plugins = _table(data, "plugins", path)
    for key, value in plugins.items():
        if key == "enabled":
            layers.set("plugins.enabled", value, f"{path.name} [plugins] enabled")
        elif isinstance(value, dict):
            for setting, setting_value in value.items():
                layers.set(f"plugins.{key}.{setting}", setting_value, f"{path.name} [plugins.{key}] {setting}")
        else:
            raise ConfigError(
                f"{path.name}: [plugins] {key} = {value!r} is not understood; "
                "use 'enabled = [...]' or a [plugins.<name>] table"
            )


def _table(data: Mapping[str, Any], name: str, path: Path) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path.name}: '{name}' must be a table ([{name}])")
    return table


def _read_environment(environ: Mapping[str, str], layers: _Layers, source: str) -> None:
    kernel_keys = set(KernelSettings.model_fields)
    for name, value in environ.items():
        if not name.startswith(PREFIX) or NOT_SETTINGS.match(name):
            continue
        where = f"{source} {name}"
        rest = name[len(PREFIX):]
        if rest == "PLUGINS":
            layers.set("plugins.enabled", [p.strip() for p in value.split(",") if p.strip()], where)
        elif rest.startswith("PLUGINS__"):
            plugin, sep, key = rest[len("PLUGINS__"):].partition("__")
            if not sep or not plugin or not key:
                raise ConfigError(f"{where}: plugin settings are named CODERIC_PLUGINS__<PLUGIN>__<KEY>")
            layers.set(f"plugins.{plugin.lower()}.{key.lower()}", _decode(value), where)
        elif rest.lower() in kernel_keys:
            layers.set(rest.lower(), _decode(value), where)
        else:
            raise ConfigError(
                f"{where} is not a setting; kernel settings are "
                + ", ".join(sorted(f"{PREFIX}{k.upper()}" for k in kernel_keys))
                + f"; plugins are enabled with {PREFIX}PLUGINS and configured with {PREFIX}PLUGINS__<PLUGIN>__<KEY>"
            )


def _decode(value: str) -> Any:
    """Environment values are strings; JSON lists and tables are decoded for list/dict settings."""
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _normalise_override(key: str) -> str:
    return key[len("kernel."):] if key.startswith("kernel.") else key


def _build(layers: _Layers, path: Path | None) -> Configuration:
    kernel_values = {k: v for k, v in layers.values.items() if "." not in k}
    try:
        kernel = KernelSettings.model_validate(kernel_values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else _model_level_key(error["msg"])
        raise ConfigError(_invalid(key, layers, error["msg"], KernelSettings.accepted(key))) from exc

    enabled = layers.values.get("plugins.enabled", [])
    if not isinstance(enabled, list) or not all(isinstance(p, str) for p in enabled):
        raise ConfigError(_invalid("plugins.enabled", layers, "must be a list of plugin names", '["projects", "forum"]'))
    for name in enabled:
        if not PLUGIN_NAME.match(name):
            raise ConfigError(_invalid("plugins.enabled", layers, f"{name!r} is not a plugin name", "lower-case names like 'projects'"))

    plugin_values: dict[str, dict[str, Any]] = {}
    for key, value in layers.values.items():
        if key.startswith("plugins.") and key != "plugins.enabled":
            _, plugin, setting = key.split(".", 2)
            plugin_values.setdefault(plugin, {})[setting] = value
    return Configuration(
        kernel=kernel,
        enabled=tuple(dict.fromkeys(enabled)),
        plugin_values=plugin_values,
        sources=dict(layers.sources),
        path=path,
    )


def _model_level_key(message: str) -> str:
    """A rule across several keys reports the first key its message names."""
    for key in KernelSettings.model_fields:
        if key in message:
            return key
    return "?"


def _invalid(key: str, layers: _Layers, reason: str, accepted: str) -> str:
    value = layers.values.get(key, "<unset>")
    shown = redact_url(value) if isinstance(value, str) and "://" in value else value
    field = KernelSettings.model_fields.get(key)
    if field is not None and key in layers.values and SecretStr in (field.annotation, *get_args(field.annotation)):
        shown = "********"  # a secret never goes in an error (a log line)
    source = layers.sources.get(key, DEFAULT)
    return f"invalid setting {key} = {shown!r} (from {source}): {reason}; accepted: {accepted}"
