"""How every sign-in ends, whatever proved the user's identity (password, GitHub, OpenID
Connect): the second factor if the user has one, then a new session.

``begin`` is called once the first factor succeeded. With 2FA on, it answers with a
short-lived challenge instead of a session: nothing else accepts that challenge, so a
half-signed-in client reaches nothing. With ``auth_require_2fa`` and 2FA off, it answers
with an enrolment challenge that only the enrolment routes accept: enabling 2FA with it
finishes the sign-in (``routes/two_factor.py``). ``finish`` creates the session: a browser session
(``mode="session"``: ``__Host-`` cookies) or a token session (``mode="token"``: an access
token and a refresh token in the body).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from coderic_sdk import Forbidden
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, RedirectResponse, Response

from . import onetime, users
from .audit import record
from .authenticate import CSRF_COOKIE, SESSION_COOKIE

if TYPE_CHECKING:
    from .service import IdentityService

SignInMode = Literal["session", "token"]
CHALLENGE_PURPOSE = "2fa"
CHALLENGE_COOKIE = "__Host-coderic_2fa"
CHALLENGE_LIFETIME = timedelta(minutes=5)
CHALLENGE_ATTEMPTS = 5
ENROL_PURPOSE = "2fa_enrol"
ENROL_LIFETIME = timedelta(minutes=15)


@dataclass
class Outcome:
    """What a sign-in step answers: a JSON body and the cookies to set or clear."""

    body: dict[str, Any]
    cookies: list[tuple[str, str, int]] = field(default_factory=list)  # name, value, max-age (0: clear)


class SignIn:
    def __init__(self, service: IdentityService) -> None:
        self.service = service

    async def begin(self, connection: HTTPConnection, user: dict[str, Any], method: str, mode: SignInMode) -> Outcome:
        """The first factor succeeded: ask for the second, or sign in."""
        if user["status"] != "active":
            await record("login.refused", connection, user["uid"], {"method": method, "reason": user["status"]})
            raise Forbidden("This account is disabled.")
        if user["totp_enabled_at"] is not None:
            await record("login.second_factor_required", connection, user["uid"], {"method": method})
            return await _challenge(CHALLENGE_PURPOSE, CHALLENGE_LIFETIME, user["uid"], method, mode,
                                    {"status": "two_factor_required", "methods": ["totp", "recovery_code"]})
        if self.service.settings.auth_require_2fa:
            await record("login.enrolment_required", connection, user["uid"], {"method": method})
            return await _challenge(ENROL_PURPOSE, ENROL_LIFETIME, user["uid"], method, mode,
                                    {"status": "two_factor_enrolment_required", "methods": ["totp"]})
        return await self.finish(connection, user["uid"], method, mode)

    async def finish(self, connection: HTTPConnection, user_id: str, method: str, mode: SignInMode) -> Outcome:
        """Every factor succeeded: a new session (a new id, whatever the client had before)."""
        service = self.service
        kind = "cookie" if mode == "session" else "token"
        session_id, cookie_token = await service.sessions.create(connection, user_id, kind=kind, method=method)
        now = datetime.now(timezone.utc)
        await users.update(user_id, last_login=now)
        await record("login.succeeded", connection, user_id, {"method": method, "session": session_id, "mode": mode})
        user = await users.by_uid(user_id)
        assert user is not None
        body: dict[str, Any] = {"status": "signed_in", "user": users.user_out(user).model_dump(mode="json"),
                                "session_id": session_id}
        cookies = [(CHALLENGE_COOKIE, "", 0)]
        if cookie_token is not None:
            csrf = service.authenticator.csrf_token(session_id)
            body["csrf_token"] = csrf
            max_age = int(service.sessions.absolute.total_seconds())
            cookies += [(SESSION_COOKIE, cookie_token, max_age), (CSRF_COOKIE, csrf, max_age)]
        else:
            body.update(await service.token_pair(user_id, session_id, now + service.sessions.absolute))
        return Outcome(body, cookies)


async def _challenge(purpose: str, lifetime: timedelta, user_id: str, method: str, mode: SignInMode,
                     body: dict[str, Any]) -> Outcome:
    """A sign-in waiting for its second factor (or its enrolment): the challenge in the body,
    and for browsers in the ``__Host-coderic_2fa`` cookie too."""
    challenge = await onetime.issue(purpose, lifetime, user_id=user_id, data={"method": method, "mode": mode})
    seconds = int(lifetime.total_seconds())
    body = {**body, "challenge": challenge, "expires_in": seconds}
    return Outcome(body, [(CHALLENGE_COOKIE, challenge, seconds)] if mode == "session" else [])


def set_cookies(response: Response, cookies: list[tuple[str, str, int]]) -> Response:
    """``__Host-`` cookies: Secure, Path=/, no Domain; HttpOnly except the CSRF token, which
    the page's script reads to echo it in ``X-CSRF-Token``."""
    for name, value, max_age in cookies:
        if max_age:
            response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=name != CSRF_COOKIE,
                                samesite="lax")
        else:
            response.delete_cookie(name, path="/", secure=True, httponly=name != CSRF_COOKIE, samesite="lax")
    return response


def json_response(outcome: Outcome, status_code: int = 200) -> Response:
    response = JSONResponse(outcome.body, status_code=status_code, headers={"Cache-Control": "no-store"})
    return set_cookies(response, outcome.cookies)


def redirect_response(outcome: Outcome, target: str) -> Response:
    """For browser flows (OAuth callbacks): cookies set, then on to ``target`` (a path of the
    platform, checked by the caller), with ``two_factor=required`` added when a code is due
    (``two_factor=enrol`` when 2FA must be set up first)."""
    if outcome.body["status"] != "signed_in":
        step = "required" if outcome.body["status"] == "two_factor_required" else "enrol"
        target += ("&" if "?" in target else "?") + "two_factor=" + step
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    return set_cookies(response, outcome.cookies)
