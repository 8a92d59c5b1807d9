"""An access token is checked by its signature, without a database read; yet once its
session ends (logout, "sign out everywhere", a disabled account) every process refuses it:
the one that ended it at once, the others through the broadcast ``auth.sessions_ended``, and
a process started later from the database (identity/ended_sessions.py)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
from coderic_kernel.identity.ended_sessions import EndedSessions
from coderic_kernel.identity.tables import Session
from services import eventually
from test_notifications_realtime import platform


async def test_a_signed_out_token_is_refused_by_every_process_at_once(coderic_database: str, tmp_path: Path) -> None:
    async with platform(coderic_database, tmp_path) as (api, first, second):
        ana, bea = await api.create_user("ana@example.org"), await api.create_user("bea@example.org")
        as_ana, as_bea = await api.sign_in(ana), await api.sign_in(bea)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{first}", headers=as_ana.headers) as on_first, \
                httpx2.AsyncClient(base_url=f"http://127.0.0.1:{second}", headers=as_ana.headers) as on_second:
            assert (await on_second.get("/api/v1/me")).status_code == 200  # verified there, and remembered
            assert (await on_first.post("/api/v1/auth/logout")).status_code == 204
            assert (await on_first.get("/api/v1/me")).status_code == 401
            started = time.monotonic()

            async def refused_on_second() -> bool:
                return (await on_second.get("/api/v1/me")).status_code == 401

            await eventually(refused_on_second, what="the other server refusing the token")
            assert time.monotonic() - started < 5  # the broadcast, not the 30-second reload
            refused = await on_second.get("/api/v1/me")
            assert refused.json()["detail"] == "The access token's session has ended (signed out)."
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{second}", headers=as_bea.headers) as bea_client:
            assert (await bea_client.get("/api/v1/me")).status_code == 200  # nobody else's
        # A process that starts now learns of it from the database.
        fresh = EndedSessions(window_seconds=630)
        assert await fresh.load() == 1
        ended = await Session.select(Session.uid).where(Session.revoked_at.is_not_null()).first()
        assert ended is not None and ended["uid"] in fresh


def test_ended_sessions_are_forgotten_once_their_tokens_have_expired() -> None:
    ended = EndedSessions(window_seconds=60)
    ended.add(["recent"])
    ended.add(["long ago"], ended_at=time.time() - 61)
    assert "recent" in ended and "long ago" not in ended and "never" not in ended
    ended.add([f"s{n}" for n in range(300)], ended_at=time.time() - 120)  # enough additions to sweep
    assert len(ended) == 1 and "recent" in ended
