"""``coderic config show``: the effective configuration, secrets redacted, with sources."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import BaseModel, SecretStr

from ..config import DatabaseURL
from ..config.model import redact_url
from .state import CliState, pass_state

REDACTED = "********"


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
def show(state: CliState, as_json: bool) -> None:
    """Print every setting, where its value came from, with secrets redacted."""
    configuration = state.configuration()
    rows: list[tuple[str, Any, str]] = [
        (key, _shown(value), configuration.source(key)) for key, value in _fields(configuration.kernel)
    ]
    rows.append(("plugins.enabled", list(configuration.enabled), configuration.source("plugins.enabled")))
    kernel = state.kernel()
    for name in configuration.enabled:
        for key, value in _fields(kernel.plugin(name).settings):
            rows.append((f"plugins.{name}.{key}", _shown(value), configuration.plugin_source(name, key)))
    if as_json:
        click.echo(json.dumps({key: {"value": value, "source": source} for key, value, source in rows}, indent=2))
        return
    width = max(len(key) for key, _, _ in rows)
    if configuration.path is not None:
        click.echo(f"# configuration file: {configuration.path}")
    for key, value, source in rows:
        click.echo(f"{key:<{width}} = {json.dumps(value):<40} # {source}")


def _fields(model: BaseModel) -> list[tuple[str, Any]]:
    return [(name, getattr(model, name)) for name in type(model).model_fields]


def _shown(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return REDACTED if value.get_secret_value() else ""
    if isinstance(value, DatabaseURL):
        return value.redacted()
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if isinstance(value, (list, tuple)):
        return [_shown(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _shown(v) for k, v in value.items()}
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return str(value)
