"""Deleting an account (``DELETE /api/v1/me``): at once, the account is marked ``deleted`` (no
session, personal token or sign-in works any more) and its sessions and tokens end; then the
durable ``auth.delete_account`` job calls every plugin's personal-data delete.

The job runs through the outbox, so it survives a crash: it is retried until it succeeds
(then dead-lettered, for ``coderic jobs retry``). Every delete is idempotent, so a retry redoes
what was done and goes on. Plugins are called in reverse load order and the account record
last, so each delete can still read the account. The job is queued twice: now, and again once
every access token issued before the request has expired (an access token is checked by its
signature alone, so one could still write for a few minutes); the second run removes what
such a token may have written. The member leaves the ``auth.users`` search index in the same
transaction (results hide a deleted account at once anyway: they are re-checked).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from coderic_sdk import JobContext, PluginContext
from starlette.requests import HTTPConnection

from ..errors import describe
from ..identity import personal_tokens
from ..identity.audit import record
from ..identity.service import identity_for
from ..identity.tables import AuthEvent, User
from .identity import DELETED_EVENT
from .registry import personal_data_for

if TYPE_CHECKING:
    from ..kernel import Kernel

logger = logging.getLogger("coderic.auth.deletion")
DELETE_JOB = "delete_account"
DELETE_ATTEMPTS = 12
#: The second run waits this much longer than the access tokens' lifetime.
SECOND_RUN_MARGIN = 60


async def request_deletion(plugin: PluginContext, connection: HTTPConnection, user_id: str) -> None:
    """Close the account now and queue the deletion of its data, in one transaction."""
    kernel: Kernel = plugin.kernel  # type: ignore[assignment]
    service = identity_for(kernel)
    second_run = kernel.config.kernel.auth_access_token_seconds + SECOND_RUN_MARGIN
    async with kernel.database.transaction():
        await User.update({User.status: "deleted", User.updated_at: datetime.now(timezone.utc)}).where(User.uid == user_id)
        await service.sessions.revoke_all(user_id)
        await personal_tokens.revoke_all(user_id)
        await plugin.jobs.enqueue(DELETE_JOB, {"user": user_id}, key=user_id)
        await plugin.search.delete("auth.users", user_id)  # type: ignore[attr-defined]
        await plugin.jobs.enqueue(DELETE_JOB, {"user": user_id}, key=f"{user_id}:again", delay=second_run)
        await record("account.deletion_requested", connection, user_id)  # deleted by the job, like every entry


async def delete_account(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    """The job: every plugin's delete, the account last; then one audit entry saying so."""
    user_id = str(payload["user"])
    user = await User.select(User.status).where(User.uid == user_id).first()
    if user is None or user["status"] != "deleted":
        logger.warning("not deleting the data of account %s: it is %s", user_id, user["status"] if user else "missing")
        return
    for plugin, entry in personal_data_for(ctx.plugin.kernel).delete_order():  # type: ignore[arg-type]
        try:
            await entry.delete(user_id)
        except Exception as exc:
            raise RuntimeError(f"plugin {plugin!r}: deleting personal data {entry.name!r} failed: {describe(exc)}") from exc
    if not await AuthEvent.exists().where((AuthEvent.user_id == user_id) & (AuthEvent.kind == DELETED_EVENT)):
        await record(DELETED_EVENT, None, user_id)  # no address, agent or detail: nothing personal
        logger.info("account %s deleted", user_id)
