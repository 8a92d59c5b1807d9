"""``coderic auth ...``: the operator's commands for signing keys and sessions, offered through
the ``register_commands`` hook of the ``auth`` built-in like any plugin's commands."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from coderic_sdk import PluginContext, Problem

from .service import identity_for
from .tables import SigningKey
from .users import by_email, normalised_email

T = TypeVar("T")


def _run(plugin: PluginContext, work: Callable[[Any], Awaitable[T]]) -> T:
    async def run() -> T:
        async with plugin.kernel.started():
            return await work(identity_for(plugin.kernel))  # type: ignore[arg-type]

    return asyncio.run(run())


def commands(plugin: PluginContext) -> list[click.Command]:
    @click.command("keys")
    def keys() -> None:
        """List the keys that sign and verify access tokens."""

        async def work(service: Any) -> list[dict[str, Any]]:
            return list(await SigningKey.select(
                SigningKey.kid, SigningKey.algorithm, SigningKey.created_at, SigningKey.retired_at, SigningKey.expires_at
            ).order_by(SigningKey.created_at, ascending=False))

        for row in _run(plugin, work):
            state = "signing" if row["retired_at"] is None else f"verifying until {row['expires_at']:%Y-%m-%d %H:%M} UTC"
            click.echo(f"{row['kid']}  {row['algorithm']:<6} created {row['created_at']:%Y-%m-%d %H:%M} UTC  {state}")

    @click.command("rotate-keys")
    def rotate_keys() -> None:
        """Sign access tokens with a new key from now on (the old one verifies until its tokens expire)."""

        async def work(service: Any) -> str:
            return str(await service.keys.rotate())

        click.echo(f"new signing key {_run(plugin, work)}; other processes pick it up within 30 seconds")

    @click.command("sign-out")
    @click.argument("email")
    def sign_out(email: str) -> None:
        """End every session of the account with EMAIL (a lost device, a compromised account)."""
        address = normalised_email(email, "EMAIL")

        async def work(service: Any) -> int | None:
            user = await by_email(address)
            return None if user is None else int(await service.sessions.revoke_all(user["uid"]))

        ended = _run(plugin, work)
        if ended is None:
            raise click.ClickException(f"no account has the address {address}")
        click.echo(f"ended {ended} session(s) of {address}; access tokens already issued expire within minutes")

    def _change_role(email: str, role: str, reason: str, give: bool) -> None:
        address = normalised_email(email, "EMAIL")

        async def work(service: Any) -> str:
            user = await by_email(address)
            if user is None:
                raise click.ClickException(f"no account has the address {address}")
            permissions = plugin.kernel.permissions  # type: ignore[attr-defined]
            if give:
                await permissions.grant(user["uid"], role, reason=reason)
                return f"granted {role} to {address}"
            if not await permissions.revoke(user["uid"], role, reason=reason):
                raise click.ClickException(f"{address} does not hold {role} globally")
            return f"revoked {role} from {address}"

        try:
            click.echo(_run(plugin, work))
        except Problem as problem:
            raise click.ClickException(problem.detail) from None

    @click.command("grant")
    @click.argument("email")
    @click.argument("role")
    @click.option("--reason", required=True, help="Why: recorded in the audit trail and shown to the user.")
    def grant(email: str, role: str, reason: str) -> None:
        """Grant ROLE globally to the account with EMAIL (the first admin, say)."""
        _change_role(email, role, reason, True)

    @click.command("revoke")
    @click.argument("email")
    @click.argument("role")
    @click.option("--reason", required=True, help="Why: recorded in the audit trail and shown to the user.")
    def revoke(email: str, role: str, reason: str) -> None:
        """Revoke ROLE, granted globally, from the account with EMAIL."""
        _change_role(email, role, reason, False)

    @click.command("disable-2fa")
    @click.argument("email")
    @click.option("--reason", required=True, help="Why (who asked, how their identity was checked): audited.")
    def disable_2fa(email: str, reason: str) -> None:
        """Turn 2FA off for the account with EMAIL, whose owner lost both their authenticator and
        their recovery codes; every session of the account ends and the owner is told by email."""
        address = normalised_email(email, "EMAIL")

        async def work(service: Any) -> str:
            from . import recovery
            from .audit import record
            from .totp import totp_for

            user = await by_email(address)
            if user is None:
                raise click.ClickException(f"no account has the address {address}")
            if not await totp_for(plugin.kernel).disable(user["uid"]):  # type: ignore[arg-type]
                raise click.ClickException(f"{address} has no 2FA to turn off")
            await recovery.delete_all(user["uid"])
            await service.sessions.revoke_all(user["uid"])
            await record("2fa.disabled", None, user["uid"], {"by": "operator", "reason": reason})
            when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
            await plugin.email.send("auth.two_factor_changed", address, {
                "change": "disabled", "when": when, "device": "an administrator's command line", "ip": "-",
                "security_url": f"{plugin.kernel.config.kernel.public_url}/account/security",  # type: ignore[attr-defined]
            })
            return f"2FA is off for {address}; its sessions ended and its owner is told by email"

        click.echo(_run(plugin, work))

    return [keys, rotate_keys, sign_out, grant, revoke, disable_2fa]
