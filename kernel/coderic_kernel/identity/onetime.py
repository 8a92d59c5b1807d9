"""Single-use, expiring tokens (email verification, password reset, email change, a sign-in
waiting for its second factor, OAuth state). Only their hash is stored; using one marks it
used in the same statement that checks it, so two concurrent uses cannot both succeed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .crypto import new_token, token_hash
from .tables import OneTimeToken

MAX_TOKEN_CHARS = 200


@dataclass(frozen=True)
class Redeemed:
    user_id: str | None
    data: dict[str, Any]
    created_at: datetime


async def issue(purpose: str, lifetime: timedelta, *, user_id: str | None = None,
                data: dict[str, Any] | None = None, revoke_previous: bool = True) -> str:
    """A new token for ``purpose``. Earlier unused tokens of the user for the same purpose stop
    working (``revoke_previous``): only the latest reset link is good."""
    now = datetime.now(timezone.utc)
    if revoke_previous and user_id is not None:
        await OneTimeToken.update({OneTimeToken.used_at: now}).where(
            (OneTimeToken.user_id == user_id) & (OneTimeToken.purpose == purpose) & OneTimeToken.used_at.is_null()
        )
    token = new_token()
    await OneTimeToken.insert(OneTimeToken(
        purpose=purpose, token_hash=token_hash(token), user_id=user_id, data=data or {},
        created_at=now, expires_at=now + lifetime,
    ))
    return token


async def peek(purpose: str, token: str) -> Redeemed | None:
    """The token's content if it is valid now, without using it up."""
    row = await _find(purpose, token)
    return None if row is None else Redeemed(row["user_id"], row["data"], row["created_at"])


async def redeem(purpose: str, token: str) -> Redeemed | None:
    """Use the token up. ``None`` if unknown, of another purpose, expired or already used."""
    row = await _find(purpose, token)
    if row is None:
        return None
    now = datetime.now(timezone.utc)
    claimed = await OneTimeToken.update({OneTimeToken.used_at: now}).where(
        (OneTimeToken.id == row["id"]) & OneTimeToken.used_at.is_null()
    ).returning(OneTimeToken.id)
    if not claimed:  # someone else used it between the read and the update
        return None
    return Redeemed(row["user_id"], row["data"], row["created_at"])


async def count_attempt(purpose: str, token: str, limit: int) -> bool:
    """Count a failed attempt against the token (a wrong 2FA code); at ``limit`` it is used up.
    ``True`` while attempts remain."""
    row = await _find(purpose, token)
    if row is None:
        return False
    attempts = row["attempts"] + 1
    values: dict[Any, Any] = {OneTimeToken.attempts: attempts}
    if attempts >= limit:
        values[OneTimeToken.used_at] = datetime.now(timezone.utc)
    await OneTimeToken.update(values).where(OneTimeToken.id == row["id"])
    return attempts < limit


async def revoke_all(user_id: str, *purposes: str) -> None:
    now = datetime.now(timezone.utc)
    await OneTimeToken.update({OneTimeToken.used_at: now}).where(
        (OneTimeToken.user_id == user_id) & OneTimeToken.purpose.is_in(list(purposes)) & OneTimeToken.used_at.is_null()
    )


async def _find(purpose: str, token: str) -> dict[str, Any] | None:
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    row = await OneTimeToken.select().where(
        (OneTimeToken.token_hash == token_hash(token)) & (OneTimeToken.purpose == purpose)
    ).first().output(load_json=True)
    if row is None or row["used_at"] is not None or row["expires_at"] <= datetime.now(timezone.utc):
        return None
    return row
