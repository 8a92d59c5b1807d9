"""``coderic doctor``: one line per check, non-zero exit if any fails."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import click

from ..errors import StartupError, describe
from ..kernel import Kernel
from ..web.health import run_checks
from .state import CliState, pass_state


@click.command()
@pass_state
def doctor(state: CliState) -> int:
    """Check configuration, plugins, every backend and migrations."""
    failures = 0

    def report(ok: bool, what: str, detail: str) -> None:
        nonlocal failures
        failures += 0 if ok else 1
        click.echo(f"{'ok' if ok else 'FAIL':<5} {what}: {detail}")

    configuration = _attempt(report, "configuration", state.configuration, lambda c: str(c.path or "defaults and environment"))
    if configuration is None:
        return 1
    kernel = _attempt(report, "plugins", state.kernel, lambda k: ", ".join(p.name for p in k.plugins))
    if kernel is None:
        return 1
    asyncio.run(_backends(kernel, report))
    return 1 if failures else 0


def _attempt(report: Callable[[bool, str, str], None], what: str, step: Callable[[], object], ok: Callable[[object], str]):  # type: ignore[no-untyped-def]
    try:
        result = step()
    except StartupError as exc:
        report(False, what, str(exc))
        return None
    report(True, what, ok(result))
    return result


async def _backends(kernel: Kernel, report: Callable[[bool, str, str], None]) -> None:
    try:
        async with kernel.opened():
            for name, result in (await run_checks(kernel.health_checks)).items():
                report(result == "ok", name, "reachable" if result == "ok" else result)
            pending = await kernel.migrations.pending()
            report(not pending, "migrations", "up to date" if not pending else f"{len(pending)} pending; run 'coderic migrate'")
    except StartupError as exc:
        report(False, "database", str(exc))
    except Exception as exc:
        report(False, "database", describe(exc))
