"""Sessions that ended while access tokens issued for them may still be unexpired.

An access token is checked by its signature alone (no database read per request), so on its
own it would outlive a logout, "sign out everywhere" or a disabled account by up to its
lifetime. Every process therefore keeps the ids of the sessions ended in the last
lifetime (plus the verification leeway) and refuses their tokens: one dict lookup per
request. The process that ends a session adds it at once; the others hear of it through the
broadcast event ``auth.sessions_ended`` (Redis pub/sub) and, for what they missed (a lost
subscription, a command-line ``coderic auth sign-out`` without Redis), from the database,
read at start, after a lost subscription and every ``RELOAD_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from .tables import Session

RELOAD_SECONDS = 30.0
PRUNE_EVERY = 256  # additions between sweeps of the expired entries


class EndedSessions:
    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self._until: dict[str, float] = {}  # session id -> when its last token has expired
        self._added = 0

    def __contains__(self, session_id: object) -> bool:
        until = self._until.get(session_id)  # type: ignore[call-overload]
        return until is not None and until > time.time()

    def __len__(self) -> int:
        return len(self._until)

    def add(self, session_ids: Iterable[str], ended_at: float | None = None) -> None:
        until = (time.time() if ended_at is None else ended_at) + self.window
        for session_id in session_ids:
            if self._until.get(session_id, 0.0) < until:
                self._until[session_id] = until
            self._added += 1
        if self._added >= PRUNE_EVERY:
            self._added = 0
            now = time.time()
            self._until = {sid: t for sid, t in self._until.items() if t > now}

    async def load(self) -> int:
        """Add the sessions the database says ended within the window; how many."""
        since = datetime.now(timezone.utc) - timedelta(seconds=self.window)
        rows = await Session.select(Session.uid, Session.revoked_at).where(Session.revoked_at >= since)
        for row in rows:
            self.add([row["uid"]], row["revoked_at"].timestamp())
        return len(rows)
