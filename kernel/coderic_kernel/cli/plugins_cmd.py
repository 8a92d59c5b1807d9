"""``coderic plugins list``: what is installed, what is enabled, and whether it loads."""

from __future__ import annotations

import click

from ..errors import PluginError
from ..plugins.builtin import BUILTINS
from ..plugins.discovery import discover_installed
from .state import CliState, pass_state


@click.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@pass_state
def list_plugins(state: CliState) -> int:
    """List built-in and installed plugins with version, enabled flag and load status."""
    enabled = state.configuration().enabled
    failure: PluginError | None = None
    try:
        state.kernel()
    except PluginError as exc:
        failure = exc
    rows = [(b.name, b.info().version, "yes", "built in") for b in BUILTINS]
    installed = discover_installed()
    for name in sorted(set(installed) | set(enabled)):
        candidates = installed.get(name, [])
        version = ", ".join(c.info.version for c in candidates) or "-"
        if failure is not None and failure.plugin == name:
            status = f"failed at {failure.phase}: {failure.reason}"
        elif name not in enabled:
            status = "disabled"
        elif failure is not None:
            status = "not loaded (another plugin failed)"
        else:
            status = "loaded"
        rows.append((name, version, "yes" if name in enabled else "no", status))
    width = max(len(r[0]) for r in rows)
    click.echo(f"{'NAME':<{width}}  {'VERSION':<10} {'ENABLED':<8} STATUS")
    for name, version, on, status in rows:
        click.echo(f"{name:<{width}}  {version:<10} {on:<8} {status}")
    return 1 if failure is not None else 0
