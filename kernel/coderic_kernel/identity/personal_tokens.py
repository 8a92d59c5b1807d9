"""Personal access tokens for scripts and bots: named, scoped, expiring, shown once, stored
hashed, listed and revocable. ``cdr_pat_`` marks them, so secret scanners can find leaked ones
and the authenticator tells them from JWTs without trying to parse them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .crypto import new_token, new_uid, token_hash
from .tables import PersonalToken, User

PREFIX = "cdr_pat_"
SHOWN_CHARS = 12  # "cdr_pat_" and four characters: enough to tell one's tokens apart
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TokenOwner:
    token_id: str
    user_id: str
    scopes: tuple[str, ...]


async def create(user_id: str, name: str, scopes: list[str], expires_at: datetime | None) -> tuple[dict[str, Any], str]:
    """The new token's record and the token itself (never shown again)."""
    token = new_token(PREFIX)
    row = PersonalToken(uid=new_uid(), user_id=user_id, name=name, scopes=scopes, token_hash=token_hash(token),
                        prefix=token[:SHOWN_CHARS], expires_at=expires_at)
    await row.save()
    saved = await PersonalToken.select().where(PersonalToken.uid == row.uid).first().output(load_json=True)
    assert saved is not None
    return saved, token


async def listed(user_id: str) -> list[dict[str, Any]]:
    return list(await PersonalToken.select().where(
        (PersonalToken.user_id == user_id) & PersonalToken.revoked_at.is_null()
    ).order_by(PersonalToken.created_at, ascending=False).output(load_json=True))


async def revoke(user_id: str, uid: str) -> bool:
    revoked = await PersonalToken.update({PersonalToken.revoked_at: datetime.now(timezone.utc)}).where(
        (PersonalToken.uid == uid) & (PersonalToken.user_id == user_id) & PersonalToken.revoked_at.is_null()
    ).returning(PersonalToken.uid)
    return bool(revoked)


async def revoke_all(user_id: str) -> None:
    await PersonalToken.update({PersonalToken.revoked_at: datetime.now(timezone.utc)}).where(
        (PersonalToken.user_id == user_id) & PersonalToken.revoked_at.is_null()
    )


async def owner_of(token: str) -> TokenOwner | None:
    """Who a presented token acts for, if it is live; its use recorded (once a minute)."""
    if len(token) > 100:
        return None
    row = await PersonalToken.select(
        PersonalToken.uid, PersonalToken.user_id, PersonalToken.scopes, PersonalToken.expires_at,
        PersonalToken.revoked_at, PersonalToken.last_used_at,
    ).where(PersonalToken.token_hash == token_hash(token)).first().output(load_json=True)
    now = datetime.now(timezone.utc)
    if row is None or row["revoked_at"] is not None or (row["expires_at"] is not None and row["expires_at"] <= now):
        return None
    user = await User.select(User.status).where(User.uid == row["user_id"]).first()
    if user is None or user["status"] != "active":
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_EVERY:
        await PersonalToken.update({PersonalToken.last_used_at: now}).where(PersonalToken.uid == row["uid"])
    return TokenOwner(row["uid"], row["user_id"], tuple(row["scopes"]))


def default_expiry(days: int | None) -> datetime | None:
    return None if days is None else datetime.now(timezone.utc) + timedelta(days=days)
