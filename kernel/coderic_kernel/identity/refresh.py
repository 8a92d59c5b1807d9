"""Opaque refresh tokens, rotated on every use, with reuse detection.

Each token belongs to a family: the session (``kind="token"``) it was issued for. Using a
token marks it used and issues its successor. Presenting a used token again means two
parties hold it: the whole family (the session) is revoked, unless the reuse comes within
``grace`` of the rotation, which is what concurrent refreshes of one honest client look like;
such a request is refused without revoking anything. Tokens also end with their session
(idle and absolute timeouts, logout).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

from .crypto import new_token, token_hash
from .sessions import Sessions
from .tables import RefreshToken

PREFIX = "cdr_rt_"


@dataclass(frozen=True)
class Rotation:
    outcome: Literal["rotated", "invalid", "reused", "raced"]
    user_id: str | None = None
    session_id: str | None = None
    token: str | None = None


class RefreshTokens:
    def __init__(self, sessions: Sessions, grace: timedelta) -> None:
        self.sessions = sessions
        self.grace = grace

    async def issue(self, user_id: str, session_id: str, expires_at: datetime) -> str:
        token = new_token(PREFIX)
        await RefreshToken.insert(RefreshToken(
            token_hash=token_hash(token), family=session_id, user_id=user_id, expires_at=expires_at,
        ))
        return token

    async def rotate(self, token: str) -> Rotation:
        if not token.startswith(PREFIX) or len(token) > 100:
            return Rotation("invalid")
        row = await RefreshToken.select().where(RefreshToken.token_hash == token_hash(token)).first()
        if row is None or row["revoked_at"] is not None:
            return Rotation("invalid")
        now = datetime.now(timezone.utc)
        if row["used_at"] is not None:
            if now - row["used_at"] <= self.grace:
                return Rotation("raced", row["user_id"], row["family"])
            await self.sessions.revoke(row["family"])
            return Rotation("reused", row["user_id"], row["family"])
        if row["expires_at"] <= now:
            return Rotation("invalid")
        session = await self.sessions.by_uid(row["family"])  # checks idle/absolute timeouts and the user
        if session is None:
            return Rotation("invalid")
        claimed = await RefreshToken.update({RefreshToken.used_at: now}).where(
            (RefreshToken.id == row["id"]) & RefreshToken.used_at.is_null()
        ).returning(RefreshToken.id)
        if not claimed:  # a concurrent refresh won
            return Rotation("raced", row["user_id"], row["family"])
        successor = await self.issue(row["user_id"], row["family"], row["expires_at"])
        return Rotation("rotated", row["user_id"], row["family"], successor)

    async def revoke(self, token: str) -> str | None:
        """Revoke the token's session (logout with a refresh token); its session id, if any."""
        if not token.startswith(PREFIX) or len(token) > 100:
            return None
        row = await RefreshToken.select(RefreshToken.family).where(RefreshToken.token_hash == token_hash(token)).first()
        if row is None:
            return None
        await self.sessions.revoke(row["family"])
        return str(row["family"])
