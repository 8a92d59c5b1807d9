"""``coderic plugin new <name>``: start a plugin package (see ``coderic_kernel/scaffold``)."""

from __future__ import annotations

from pathlib import Path

import click

from ..scaffold import ScaffoldError, generate


@click.group()
def plugin() -> None:
    """Write plugins: start a new plugin package."""


@plugin.command()
@click.argument("name")
@click.option("--directory", "-d", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write it (default: ./coderic-<name>).")
@click.option("--description", default="", help="One line saying what the plugin does.")
def new(name: str, directory: Path | None, description: str) -> None:
    """Generate an installable plugin package NAME: tables, a migration, routes, permissions, tests."""
    destination = directory or Path(f"coderic-{name.replace('_', '-')}")
    try:
        written = generate(name, destination, description=description)
    except ScaffoldError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"wrote the plugin {name!r} to {destination}/ ({len(written)} files)")
    click.echo(f"next: cd {destination} && pip install -e '.[test]' && pytest")
