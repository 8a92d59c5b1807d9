"""Server-side sessions: one row per sign-in, for browsers (a cookie holding a random token)
and token clients (a refresh-token family). Logout, a password change or "sign out
everywhere" revoke rows, so they really end; their access tokens too (see ended_sessions.py).

A session ends when revoked, ``auth_session_absolute_hours`` after sign-in, or after
``auth_session_idle_minutes`` without use. ``last_seen_at`` is written at most once a minute.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from starlette.requests import HTTPConnection

from .audit import client_of
from .crypto import new_token, new_uid, token_hash
from .ended_sessions import EndedSessions
from .tables import RefreshToken, Session, User

TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ActiveSession:
    uid: str
    user_id: str
    kind: str
    authenticated_at: datetime


class Sessions:
    def __init__(self, idle: timedelta, absolute: timedelta, ended: EndedSessions) -> None:
        self.idle = idle
        self.absolute = absolute
        self.ended = ended
        #: Tells the other processes which sessions ended (set by the auth plugin at start).
        self.announce: Callable[[list[str]], Awaitable[None]] | None = None

    async def _ended(self, session_ids: list[str]) -> None:
        """Their access tokens are refused from now on, here and (announced) everywhere."""
        if session_ids:
            self.ended.add(session_ids)
            if self.announce is not None:
                await self.announce(session_ids)

    async def create(self, connection: HTTPConnection, user_id: str, *, kind: str, method: str) -> tuple[str, str | None]:
        """A new session: its uid, and for a cookie session the cookie's token (else ``None``)."""
        now = datetime.now(timezone.utc)
        ip, agent = client_of(connection)
        token = new_token() if kind == "cookie" else None
        uid = new_uid()
        await Session.insert(Session(
            uid=uid, token_hash=token_hash(token) if token else None, user_id=user_id, kind=kind, method=method,
            ip=ip, user_agent=agent, created_at=now, last_seen_at=now, authenticated_at=now, expires_at=now + self.absolute,
        ))
        return uid, token

    async def by_cookie(self, token: str) -> ActiveSession | None:
        """The live session behind a cookie token, its use recorded; ``None`` if it has ended."""
        if not token or len(token) > 100:
            return None
        row = await Session.select(
            Session.uid, Session.user_id, Session.kind, Session.last_seen_at, Session.expires_at,
            Session.authenticated_at, Session.revoked_at,
        ).where(Session.token_hash == token_hash(token)).first()
        return await self._live(row)

    async def by_uid(self, uid: str) -> ActiveSession | None:
        row = await Session.select(
            Session.uid, Session.user_id, Session.kind, Session.last_seen_at, Session.expires_at,
            Session.authenticated_at, Session.revoked_at,
        ).where(Session.uid == uid).first()
        return await self._live(row)

    async def _live(self, row: dict[str, Any] | None) -> ActiveSession | None:
        if row is None or row["revoked_at"] is not None:
            return None
        now = datetime.now(timezone.utc)
        if row["expires_at"] <= now or row["last_seen_at"] + self.idle <= now:
            return None
        if not await _user_active(row["user_id"]):
            return None
        if now - row["last_seen_at"] >= TOUCH_EVERY:
            await Session.update({Session.last_seen_at: now}).where(Session.uid == row["uid"])
        return ActiveSession(row["uid"], row["user_id"], row["kind"], row["authenticated_at"])

    async def reauthenticated(self, uid: str) -> None:
        """The user proved who they are again (password, 2FA): "recent authentication" restarts."""
        await Session.update({Session.authenticated_at: datetime.now(timezone.utc)}).where(Session.uid == uid)

    async def revoke(self, uid: str, user_id: str | None = None) -> bool:
        """End one session (and its refresh tokens). ``user_id`` restricts to that user's own."""
        now = datetime.now(timezone.utc)
        where = (Session.uid == uid) & Session.revoked_at.is_null()
        if user_id is not None:
            where &= Session.user_id == user_id
        ended = await Session.update({Session.revoked_at: now}).where(where).returning(Session.uid)
        await RefreshToken.update({RefreshToken.revoked_at: now}).where(
            (RefreshToken.family == uid) & RefreshToken.revoked_at.is_null()
        )
        await self._ended([row["uid"] for row in ended])
        return bool(ended)

    async def revoke_all(self, user_id: str, *, except_uid: str | None = None) -> int:
        """End every session of the user but ``except_uid``; how many ended."""
        now = datetime.now(timezone.utc)
        where = (Session.user_id == user_id) & Session.revoked_at.is_null()
        if except_uid is not None:
            where &= Session.uid != except_uid
        ended = await Session.update({Session.revoked_at: now}).where(where).returning(Session.uid)
        families = [row["uid"] for row in ended]
        if families:
            await RefreshToken.update({RefreshToken.revoked_at: now}).where(
                RefreshToken.family.is_in(families) & RefreshToken.revoked_at.is_null()
            )
        await self._ended(families)
        return len(families)

    async def list(self, user_id: str) -> list[dict[str, Any]]:
        """The user's live sessions, newest first (for the session centre)."""
        now = datetime.now(timezone.utc)
        rows = await Session.select().where(
            (Session.user_id == user_id) & Session.revoked_at.is_null() & (Session.expires_at > now)
            & (Session.last_seen_at > now - self.idle)
        ).order_by(Session.created_at, ascending=False)
        return list(rows)


async def _user_active(user_id: str) -> bool:
    row = await User.select(User.status).where(User.uid == user_id).first()
    return row is not None and row["status"] == "active"
