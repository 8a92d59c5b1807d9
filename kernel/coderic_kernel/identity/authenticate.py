"""Who sent a request: a session cookie, a JWT access token or a personal access token.

Runs for every API route, just before its rate limit, so limits keyed by user see the user.
A request without credentials costs one pass over its headers. Invalid bearer credentials
are a 401 (the client must know its token is bad); an ended session cookie just means
anonymous, and the cookie is cleared by logout or the next sign-in.

Cookie-authenticated requests with an unsafe method must pass the CSRF checks: the
``X-CSRF-Token`` header must carry the session's token (an HMAC of the session id: a signed
double-submit token, also given in a readable cookie), any ``Origin`` must be the platform's
own or an allowed CORS origin, and ``Sec-Fetch-Site``, when the browser sends it, must not be
``cross-site``. Bearer requests are unaffected: browsers never add them by themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from coderic_sdk import CurrentUser, Problem, Unauthorized
from starlette.types import Scope

from ..config.model import KernelSettings
from ..config.secrets import derived_key
from . import personal_tokens
from .sessions import Sessions
from .tokens import AccessTokens

SESSION_COOKIE = "__Host-coderic_session"
CSRF_COOKIE = "__Host-coderic_csrf"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_PROBLEM = "https://coderic.org/problems/csrf"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class Authenticator:
    def __init__(self, settings: KernelSettings, sessions: Sessions, tokens: AccessTokens) -> None:
        self.sessions = sessions
        self.tokens = tokens
        self.allowed_origins = frozenset({origin_of(settings.public_url), *(o.lower() for o in settings.cors_origins if o != "*")})
        self._csrf_key = derived_key(settings, "identity.csrf")

    def csrf_token(self, session_id: str) -> str:
        digest = hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    async def authenticate(self, scope: Scope) -> CurrentUser | None:
        """The caller of an HTTP or WebSocket request, also left in ``scope["state"]``."""
        authorization = cookie = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"cookie":
                cookie = value if cookie is None else cookie + b"; " + value
        if authorization is None and cookie is None:
            return None
        if authorization is not None:
            user = await self._bearer(authorization.decode("latin-1"))
        else:
            user = await self._cookie(cookie.decode("latin-1"), scope)  # type: ignore[union-attr]
        if user is not None:
            state = scope.setdefault("state", {})
            state["user"] = user
            state["user_id"] = user.id
        return user

    async def _bearer(self, header: str) -> CurrentUser:
        scheme, _, credentials = header.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            raise Unauthorized("Send 'Authorization: Bearer <token>'.", error="invalid_request")
        if credentials.startswith(personal_tokens.PREFIX):
            owner = await personal_tokens.owner_of(credentials)
            if owner is None:
                raise Unauthorized("The personal access token is invalid, expired or revoked.", error="invalid_token")
            return CurrentUser(owner.user_id, "personal_token", None, owner.scopes)
        claims = await self.tokens.verify(credentials)
        if claims is None:
            raise Unauthorized("The access token is invalid or expired.", error="invalid_token")
        if claims.session_id in self.sessions.ended:
            raise Unauthorized("The access token's session has ended (signed out).", error="invalid_token")
        return CurrentUser(claims.user_id, "access_token", claims.session_id, claims.scopes)

    async def _cookie(self, header: str, scope: Scope) -> CurrentUser | None:
        token = session_cookie(header)
        if token is None:
            return None
        session = await self.sessions.by_cookie(token)
        if session is None:
            return None
        if scope.get("method", "GET") in UNSAFE:
            self.check_csrf(scope, session.uid)
        return CurrentUser(session.user_id, "session", session.uid)

    def check_csrf(self, scope: Scope, session_id: str) -> None:
        headers = dict(_lower(scope["headers"]))
        site = headers.get("sec-fetch-site")
        if site == "cross-site":
            raise Problem(403, "Cross-site requests cannot use the session cookie.", type=CSRF_PROBLEM)
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.allowed_origins:
            raise Problem(403, f"Origin {origin!r} may not use the session cookie.", type=CSRF_PROBLEM)
        sent = headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), self.csrf_token(session_id).encode()):
            raise Problem(
                403, "Send the session's CSRF token in the X-CSRF-Token header (it is in the __Host-coderic_csrf cookie).",
                type=CSRF_PROBLEM,
            )


def session_cookie(header: str) -> str | None:
    cookies = SimpleCookie()
    try:
        cookies.load(header)
    except Exception:  # a malformed Cookie header is as good as none
        return None
    morsel = cookies.get(SESSION_COOKIE)
    return morsel.value if morsel is not None else None


def _lower(headers: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[str, str]]:
    for name, value in headers:
        yield name.decode("latin-1").lower(), value.decode("latin-1")
