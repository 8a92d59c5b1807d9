"""``coderic migrate``: apply, check, list or reverse plugin migrations."""

from __future__ import annotations

import asyncio

import click

from ..database.migrations import MigrationState
from ..kernel import Kernel
from .state import CliState, pass_state


@click.command()
@click.argument("plugin", required=False)
@click.option("--check", is_flag=True, help="Exit 1 if any migration is pending; change nothing.")
@click.option("--list", "show", is_flag=True, help="List every migration and whether it is applied.")
@click.option(
    "--backwards", "backwards_to", metavar="ID",
    help="Reverse PLUGIN's migrations newest first, down to ID included ('1': the newest, 'all': every one).",
)
@pass_state
def migrate(state: CliState, plugin: str | None, check: bool, show: bool, backwards_to: str | None) -> int:
    """Apply pending migrations of every plugin (or of PLUGIN), in dependency order."""
    if backwards_to is not None and plugin is None:
        raise click.UsageError("--backwards needs the PLUGIN whose migrations to reverse")
    return asyncio.run(_migrate(state.kernel(), plugin, check, show, backwards_to))


async def _migrate(kernel: Kernel, plugin: str | None, check: bool, show: bool, backwards_to: str | None) -> int:
    async with kernel.opened():
        runner = kernel.migrations
        if plugin is not None:
            runner.require(plugin)  # a misspelt name must not pass as "nothing pending"
        if show:
            for migration in await runner.status():
                if plugin is None or migration.plugin == plugin:
                    _echo(migration, "applied" if migration.applied else "pending")
            return 0
        if check:
            pending = [m for m in await runner.pending() if plugin is None or m.plugin == plugin]
            for migration in pending:
                _echo(migration, "pending")
            click.echo(f"{len(pending)} migration(s) pending" if pending else "No migrations pending.")
            return 1 if pending else 0
        if backwards_to is not None:
            assert plugin is not None
            reversed_ = await runner.backwards(plugin, backwards_to)
            for migration in reversed_:
                _echo(migration, "reversed")
            click.echo(f"Reversed {len(reversed_)} migration(s) of {plugin}.")
            return 0
        applied = await runner.forwards(plugin)
        for migration in applied:
            _echo(migration, "applied")
        click.echo(f"Applied {len(applied)} migration(s)." if applied else "No migrations pending.")
        return 0


def _echo(migration: MigrationState, status: str) -> None:
    click.echo(f"{status:<9} {migration.plugin:<16} {migration.id}  {migration.description}")
