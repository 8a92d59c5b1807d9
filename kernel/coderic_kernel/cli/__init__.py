"""The ``coderic`` command. Start-up errors print one line and exit 2; ``--debug`` adds the
traceback."""

from __future__ import annotations

import os
import sys
import traceback

import click

from ..errors import StartupError
from .root import cli

EXIT_STARTUP = 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args or os.environ.get("CODERIC_DEBUG") == "1"
    try:
        result = cli.main(args=args, prog_name="coderic", standalone_mode=False)
    except StartupError as exc:
        if debug:
            traceback.print_exception(exc)
        click.echo(f"coderic: error: {exc}", err=True)
        return EXIT_STARTUP
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
