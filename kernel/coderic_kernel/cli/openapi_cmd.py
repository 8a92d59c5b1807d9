"""``coderic openapi``: write the OpenAPI document the server serves at /api/v1/openapi.json."""

from __future__ import annotations

from pathlib import Path

import click

from ..web.openapi import document_bytes
from .state import CliState, pass_state


@click.command()
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the document to this file instead of standard output.",
)
@pass_state
def openapi(state: CliState, output: Path | None) -> None:
    """Write the OpenAPI 3.1 document of the kernel and every enabled plugin (JSON)."""
    content = document_bytes(state.kernel())
    if output is None:
        click.echo(content, nl=False)
        return
    output.write_bytes(content)
    click.echo(f"wrote the OpenAPI document to {output}", err=True)
