"""Refreshing tokens, signing out, and the session centre (``/api/v1/me/sessions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coderic_sdk import NotFound, Problem, RequestContext, Route, Schema, Unauthorized
from pydantic import Field
from starlette.responses import JSONResponse, Response

from ...web import convertors  # noqa: F401  # registers {name:hex32}
from ..audit import record
from ..authenticate import CSRF_COOKIE, SESSION_COOKIE
from ..signin import CHALLENGE_COOKIE, set_cookies
from .common import NEEDS_USER, TokensOut, interactive_user, service_of

SESSION_ID = r"^[0-9a-f]{32}$"
CLEARED = [(SESSION_COOKIE, "", 0), (CSRF_COOKIE, "", 0), (CHALLENGE_COOKIE, "", 0)]


class RefreshIn(Schema):
    refresh_token: str = Field(max_length=100)




class SessionOut(Schema):
    id: str
    kind: str = Field(description="`cookie` (a browser) or `token` (an app holding a refresh token).")
    method: str = Field(description="How the user signed in: `password`, `github`, an OpenID Connect provider's name.")
    ip: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool = Field(description="Whether this is the session of the request.")


class SessionList(Schema):
    sessions: list[SessionOut]


class CurrentSessionOut(Schema):
    user_id: str
    session_id: str | None
    method: str = Field(description="`session`, `access_token` or `personal_token`.")
    csrf_token: str | None = Field(None, description="For cookie sessions: the value to send in `X-CSRF-Token`.")


class RevokedOut(Schema):
    revoked: int


class SessionPath(Schema):
    session_id: str = Field(pattern=SESSION_ID)


async def refresh(ctx: RequestContext[RefreshIn, None, Any]) -> Any:
    service = service_of(ctx)
    await service.throttle(ctx.request, "refresh", "ip=" + (ctx.request.client.host if ctx.request.client else "-"))
    rotation = await service.refresh.rotate(ctx.body.refresh_token)
    if rotation.outcome == "reused":
        await record("refresh.reused", ctx.request, rotation.user_id, {"session": rotation.session_id})
        raise Unauthorized("The refresh token was already used: its session has been ended. Sign in again.",
                           error="invalid_grant")
    if rotation.outcome == "raced":
        raise Problem(409, "The refresh token was just used by another request; use the tokens that request received.")
    if rotation.outcome != "rotated":
        raise Unauthorized("The refresh token is invalid or expired. Sign in again.", error="invalid_grant")
    assert rotation.user_id is not None and rotation.session_id is not None and rotation.token is not None
    access, lifetime = service.tokens.issue(rotation.user_id, rotation.session_id)
    body = TokensOut(access_token=access, token_type="Bearer", expires_in=lifetime, refresh_token=rotation.token)
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


async def logout(ctx: RequestContext[None, None, Any]) -> Response:
    user = ctx.user
    if user is not None and user.session_id is not None:
        await service_of(ctx).sessions.revoke(user.session_id)
        await record("logout", ctx.request, user.id, {"session": user.session_id})
    return set_cookies(Response(status_code=204), CLEARED)


async def revoke_refresh_token(ctx: RequestContext[RefreshIn, None, Any]) -> Response:
    """RFC 7009-like: the answer is the same whether the token was known or not."""
    ended = await service_of(ctx).refresh.revoke(ctx.body.refresh_token)
    if ended is not None:
        await record("logout", ctx.request, None, {"session": ended, "by": "refresh_token"})
    return Response(status_code=204)


async def current_session(ctx: RequestContext[None, None, Any]) -> CurrentSessionOut:
    user = ctx.require_user()
    csrf = service_of(ctx).authenticator.csrf_token(user.session_id) if user.method == "session" and user.session_id else None
    return CurrentSessionOut(user_id=user.id, session_id=user.session_id, method=user.method, csrf_token=csrf)


async def list_sessions(ctx: RequestContext[None, None, Any]) -> SessionList:
    user = interactive_user(ctx)
    rows = await service_of(ctx).sessions.list(user.id)
    return SessionList(sessions=[
        SessionOut(id=row["uid"], kind=row["kind"], method=row["method"], ip=row["ip"], user_agent=row["user_agent"],
                   created_at=row["created_at"], last_seen_at=row["last_seen_at"], expires_at=row["expires_at"],
                   current=row["uid"] == user.session_id)
        for row in rows
    ])


async def revoke_session(ctx: RequestContext[None, None, SessionPath]) -> Response:
    user = interactive_user(ctx)
    if not await service_of(ctx).sessions.revoke(ctx.path.session_id, user_id=user.id):
        raise NotFound(f"Session {ctx.path.session_id} does not exist or has ended.")
    await record("session.revoked", ctx.request, user.id, {"session": ctx.path.session_id})
    response = Response(status_code=204)
    return set_cookies(response, CLEARED) if ctx.path.session_id == user.session_id else response


async def revoke_other_sessions(ctx: RequestContext[None, None, Any]) -> RevokedOut:
    user = interactive_user(ctx)
    count = await service_of(ctx).sessions.revoke_all(user.id, except_uid=user.session_id)
    await record("session.revoked_others", ctx.request, user.id, {"count": count})
    return RevokedOut(revoked=count)


async def sign_out_everywhere(ctx: RequestContext[None, None, Any]) -> Response:
    user = interactive_user(ctx)
    count = await service_of(ctx).sessions.revoke_all(user.id)
    await record("session.revoked_all", ctx.request, user.id, {"count": count})
    return set_cookies(Response(status_code=204), CLEARED)


def routes() -> list[Route]:
    tags = ("auth",)
    me = {"prefix": "me", "tags": ("me",), "authenticated": True, "responses": NEEDS_USER}
    return [
        Route("POST", "/token/refresh", refresh, name="refresh", body=RefreshIn, response=TokensOut, tags=tags,
              summary="Refresh tokens", rate_limit="auth.refresh",
              description="Trades a refresh token for a new access token and a new refresh token. A refresh token "
                          "works once: presenting a used one again ends its session (reuse detection).",
              responses={401: "The refresh token is invalid, expired or was reused.",
                         409: "Another request refreshed with this token a moment ago."}),
        Route("POST", "/logout", logout, name="logout", status_code=204, media_type=None, tags=tags,
              summary="Sign out",
              description="Ends the current session: the cookie's, or the access token's (with its refresh "
                          "tokens). Access tokens already issued stay valid until they expire (minutes)."),
        Route("POST", "/token/revoke", revoke_refresh_token, name="revoke_refresh_token", body=RefreshIn,
              status_code=204, media_type=None, tags=tags, rate_limit="auth.refresh", summary="Revoke a refresh token",
              description="Ends the refresh token's session (an app signing out). Answers 204 whether or not the "
                          "token was known."),
        Route("GET", "/session", current_session, name="current_session", response=CurrentSessionOut, tags=tags,
              authenticated=True, responses=NEEDS_USER, summary="The current session",
              description="Who is signed in, how, and (for cookie sessions) the CSRF token to echo."),
        Route("GET", "/sessions", list_sessions, name="list_sessions", response=SessionList,
              summary="My sessions", description="Every live sign-in of mine: browsers and apps.", **me),
        Route("DELETE", "/sessions/{session_id:hex32}", revoke_session, name="revoke_session", path_params=SessionPath,
              status_code=204, media_type=None, summary="End one of my sessions", **me),
        Route("POST", "/sessions/revoke-others", revoke_other_sessions, name="revoke_other_sessions",
              response=RevokedOut, summary="End my other sessions",
              description="Every session but the current one ends (their refresh tokens too).", **me),
        Route("DELETE", "/sessions", sign_out_everywhere, name="sign_out_everywhere", status_code=204,
              media_type=None, summary="Sign out everywhere", description="Every session ends, this one included.",
              **me),
    ]
