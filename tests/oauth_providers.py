"""Local OAuth 2.0 and OpenID Connect providers for the identity tests: real HTTP on a free
127.0.0.1 port, served by uvicorn in a background thread, so the kernel's Authlib client makes
real redirects, token exchanges and API calls.

``GitHubProvider`` answers as github.com and api.github.com do for an OAuth app (authorize,
``/login/oauth/access_token`` with GitHub's 200-with-``error`` answers, ``/user``,
``/user/emails``, and the public ``/user/{id}`` and ``/users/{login}``); ``OIDCProvider`` is
a discovery-configured OpenID Connect provider with a rotating RS256 JWKS and switches that
make it issue bad ID tokens. Both approve as the user
chosen with ``login_as`` (or deny with ``denying = True``) and record every request.

Test modules import what they use: ``from oauth_providers import github_provider, oidc_provider``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

#: An ``id_token_claims`` / ``userinfo_claims`` value that removes the claim.
DROP: Any = object()
#: How ``OIDCProvider.id_token_signing`` can sign: only ``"jwks"`` is valid.
SIGNING_MODES = ("jwks", "foreign", "foreign_kid", "no_kid", "none", "hmac", "hmac_public_key")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier`` (RFC 7636 §4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def with_query(uri: str, params: dict[str, str | None]) -> str:
    """``uri`` with ``params`` (those not None) added to its query."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(key, value) for key, value in params.items() if value is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


class LoopbackServer:
    """A Starlette app served by uvicorn on a free 127.0.0.1 port, in its own thread."""

    def __init__(self, app: Starlette, name: str = "loopback") -> None:
        self.app = app
        self.name = name
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # a restart keeps its port
        self.port = int(listener.getsockname()[1])
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name=self.name, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                listener.close()
                raise RuntimeError(f"{self.name} did not start on 127.0.0.1:{self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


@dataclass
class ProviderUser:
    """An account at the provider. ``id`` is GitHub's numeric id or the OIDC ``sub``."""

    id: str
    login: str
    email: str | None = None
    email_verified: bool = True
    name: str | None = None
    bio: str | None = None
    location: str | None = None
    avatar_url: str | None = None
    #: GitHub: whether ``/user`` shows the primary email (it is null when private).
    public_email: bool = False
    #: GitHub: more ``/user/emails`` entries, as ``{"email": ..., "verified": ...}``.
    other_emails: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Grant:
    """One authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    user: ProviderUser
    code_challenge: str | None
    nonce: str | None
    expires_at: float
    used: bool = False
    tokens: list[str] = field(default_factory=list)


@dataclass
class AccessToken:
    token: str
    user: ProviderUser
    scopes: frozenset[str]
    expires_at: float | None
    revoked: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


class Provider:
    """What both personalities share: users, the signed-in user, codes, tokens, the request log."""

    name = "provider"

    def __init__(
        self,
        *,
        client_id: str = "coderic-test-client",
        client_secret: str | None = None,
        redirect_uris: Iterable[str] = (),
        users: Iterable[ProviderUser] = (),
        require_pkce: bool = True,
        code_lifetime: float = 600,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        #: Registered callback URLs; empty accepts any (the token exchange still needs the same one).
        self.redirect_uris = list(redirect_uris)
        self.require_pkce = require_pkce
        self.code_lifetime = code_lifetime
        self.clock: Callable[[], float] = time.time
        self.users: dict[str, ProviderUser] = {}
        self.current: ProviderUser | None = None
        #: When true, the authorization endpoint answers ``error=access_denied``.
        self.denying = False
        self.requests: list[RecordedRequest] = []
        self.grants: list[Grant] = []
        self.tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()
        for user in users:
            self.add_user(user)
        self.server = LoopbackServer(Starlette(routes=self.routes()), name=f"{self.name}-provider")

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def routes(self) -> list[Route]:
        raise NotImplementedError

    # -- what tests call -------------------------------------------------------------------------

    def add_user(self, user: ProviderUser | None = None, **fields: Any) -> ProviderUser:
        user = user or ProviderUser(**fields)
        self.users[user.id] = user
        return user

    def login_as(self, user: ProviderUser | str | None) -> ProviderUser | None:
        """The user who approves the next authorizations (None: nobody is signed in)."""
        self.current = self.users[user] if isinstance(user, str) else user
        if self.current is not None:
            self.users.setdefault(self.current.id, self.current)
        return self.current

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [recorded for recorded in self.requests if recorded.path == path]

    def expire_codes(self) -> None:
        with self._lock:
            for grant in self.grants:
                grant.expires_at = 0

    def revoke_tokens(self) -> None:
        with self._lock:
            for token in self.tokens.values():
                token.revoked = True

    # -- helpers for the endpoints ---------------------------------------------------------------

    async def record(self, request: Request) -> dict[str, str]:
        form: dict[str, str] = {}
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = {key: str(value) for key, value in (await request.form()).items()}
        self.requests.append(RecordedRequest(
            request.method, request.url.path, dict(request.query_params), form, dict(request.headers),
        ))
        return form

    def issue_code(self, *, client_id: str, redirect_uri: str, scope: str, state: str | None,
                   code_challenge: str | None, nonce: str | None = None) -> Grant:
        assert self.current is not None
        grant = Grant(
            code=secrets.token_urlsafe(20), client_id=client_id, redirect_uri=redirect_uri, scope=scope,
            state=state, user=self.current, code_challenge=code_challenge, nonce=nonce,
            expires_at=self.clock() + self.code_lifetime,
        )
        with self._lock:
            self.grants.append(grant)
        return grant

    def take_grant(self, code: str, client_id: str) -> Grant | None:
        """The grant of ``code``, spent; None when unknown, expired or already used. Using a
        code twice also revokes the tokens issued for it (RFC 6749 §4.1.2)."""
        with self._lock:
            grant = next((g for g in self.grants if hmac.compare_digest(g.code, code)), None)
            if grant is None or grant.client_id != client_id:
                return None
            if grant.used:
                for token in grant.tokens:
                    self.tokens[token].revoked = True
                return None
            grant.used = True
            return grant if grant.expires_at > self.clock() else None

    @staticmethod
    def pkce_ok(grant: Grant, verifier: str | None) -> bool:
        if grant.code_challenge is None:
            return True
        return verifier is not None and hmac.compare_digest(s256(verifier), grant.code_challenge)

    def issue_token(self, grant: Grant, prefix: str, lifetime: float | None) -> AccessToken:
        scopes = frozenset(grant.scope.replace(",", " ").split())
        expires = None if lifetime is None else self.clock() + lifetime
        token = AccessToken(prefix + secrets.token_urlsafe(27), grant.user, scopes, expires)
        with self._lock:
            self.tokens[token.token] = token
            grant.tokens.append(token.token)
        return token

    def bearer(self, request: Request, schemes: tuple[str, ...] = ("bearer",)) -> AccessToken | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in schemes:
            return None
        token = self.tokens.get(value.strip())
        if token is None or token.revoked:
            return None
        if token.expires_at is not None and token.expires_at <= self.clock():
            return None
        return token

    @staticmethod
    def redirect(uri: str, **params: str | None) -> RedirectResponse:
        return RedirectResponse(with_query(uri, params), status_code=302)

    def no_user(self) -> Response:
        return PlainTextResponse(f"nobody is signed in at the {self.name} provider: call login_as()", 403)


# -- GitHub ---------------------------------------------------------------------------------------

GITHUB_DOCS = "https://docs.github.com"


class GitHubProvider(Provider):
    """github.com's OAuth app endpoints and the two API calls a sign-in makes. The site and the API
    share one origin here: ``authorize_url``, ``access_token_url`` and ``api_url`` are what the
    kernel's settings point at."""

    name = "github"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/login/oauth/authorize"

    @property
    def access_token_url(self) -> str:
        return f"{self.url}/login/oauth/access_token"

    @property
    def api_url(self) -> str:
        return self.url

    def routes(self) -> list[Route]:
        return [
            Route("/login/oauth/authorize", self.authorize),
            Route("/login/oauth/access_token", self.access_token, methods=["POST"]),
            Route("/user", self.user),
            Route("/user/emails", self.emails),
            Route("/user/{account_id:int}", self.public_user),
            Route("/users/{login}", self.public_user),
        ]

    async def authorize(self, request: Request) -> Response:
        await self.record(request)
        query = request.query_params
        if query.get("client_id") != self.client_id:
            return PlainTextResponse("Not Found", 404)
        state = query.get("state")
        redirect_uri = query.get("redirect_uri") or (self.redirect_uris[0] if self.redirect_uris else "")
        if not redirect_uri:
            return PlainTextResponse("no redirect_uri and no registered callback URL", 400)
        if self.redirect_uris and redirect_uri not in self.redirect_uris:
            # GitHub sends the user to the registered callback URL with the error.
            return self.redirect(
                self.redirect_uris[0], error="redirect_uri_mismatch",
                error_description="The redirect_uri MUST match the registered callback URL for this application.",
                error_uri=f"{GITHUB_DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors",
                state=state,
            )
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method", "S256")
        if (challenge and method != "S256") or (self.require_pkce and not challenge):
            return self.redirect(redirect_uri, error="invalid_request",
                                 error_description="PKCE with code_challenge_method S256 is required.", state=state)
        if self.denying:
            return self.redirect(
                redirect_uri, error="access_denied",
                error_description="The user has denied your application access.",
                error_uri=f"{GITHUB_DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors",
                state=state,
            )
        if self.current is None:
            return self.no_user()
        grant = self.issue_code(client_id=self.client_id, redirect_uri=redirect_uri, scope=query.get("scope", ""),
                                state=state, code_challenge=challenge)
        return self.redirect(redirect_uri, code=grant.code, state=state)

    async def access_token(self, request: Request) -> Response:
        form = await self.record(request)
        as_json = "application/json" in request.headers.get("accept", "")

        def answer(payload: dict[str, str]) -> Response:
            if as_json:
                return JSONResponse(payload)
            return Response(urlencode(payload), media_type="application/x-www-form-urlencoded")

        def error(code: str, description: str) -> Response:
            # GitHub answers 200 with the error in the body.
            return answer({"error": code, "error_description": description,
                           "error_uri": f"{GITHUB_DOCS}/apps/managing-oauth-apps/"
                                        f"troubleshooting-oauth-app-access-token-request-errors"})

        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if client_id != self.client_id or not hmac.compare_digest(secret, self.client_secret):
            return error("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
        grant = self.take_grant(form.get("code", ""), client_id)
        if grant is None or not self.pkce_ok(grant, form.get("code_verifier")):
            return error("bad_verification_code", "The code passed is incorrect or expired.")
        if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return error("redirect_uri_mismatch",
                         "The redirect_uri MUST match the registered callback URL for this application.")
        token = self.issue_token(grant, "gho_", lifetime=None)
        return answer({"access_token": token.token, "token_type": "bearer", "scope": ",".join(sorted(token.scopes))})

    def api_token(self, request: Request) -> AccessToken | Response:
        if not request.headers.get("user-agent"):
            return PlainTextResponse(
                "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
                403,
            )
        token = self.bearer(request, schemes=("bearer", "token"))
        if token is None:
            return JSONResponse({"message": "Bad credentials", "documentation_url": f"{GITHUB_DOCS}/rest",
                                 "status": "401"}, 401)
        return token

    @staticmethod
    def scope_headers(token: AccessToken, accepted: str) -> dict[str, str]:
        return {"X-OAuth-Scopes": ", ".join(sorted(token.scopes)), "X-Accepted-OAuth-Scopes": accepted}

    def user_json(self, user: ProviderUser) -> dict[str, Any]:
        return {
            "login": user.login,
            "id": int(user.id) if user.id.isdigit() else user.id,
            "node_id": b64url(f"04:User{user.id}".encode()),
            "avatar_url": user.avatar_url or f"https://avatars.githubusercontent.com/u/{user.id}?v=4",
            "html_url": f"https://github.com/{user.login}",
            "type": "User",
            "site_admin": False,
            "name": user.name,
            "company": None,
            "blog": "",
            "location": user.location,
            "email": user.email if user.public_email else None,
            "hireable": None,
            "bio": user.bio,
            "twitter_username": None,
            "public_repos": 0,
            "followers": 0,
            "following": 0,
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z",
        }

    async def user(self, request: Request) -> Response:
        await self.record(request)
        token = self.api_token(request)
        if isinstance(token, Response):
            return token
        return JSONResponse(self.user_json(token.user), headers=self.scope_headers(token, ""))

    async def public_user(self, request: Request) -> Response:
        """A public profile, by id (``/user/{id}``) or login (``/users/{login}``): no token needed."""
        await self.record(request)
        wanted = request.path_params
        found = next((user for user in self.users.values()
                      if str(wanted.get("account_id")) == user.id or wanted.get("login") == user.login), None)
        if found is None:
            return JSONResponse({"message": "Not Found", "documentation_url": f"{GITHUB_DOCS}/rest/users/users",
                                 "status": "404"}, 404)
        return JSONResponse(self.user_json(found))

    async def emails(self, request: Request) -> Response:
        await self.record(request)
        token = self.api_token(request)
        if isinstance(token, Response):
            return token
        headers = self.scope_headers(token, "user, user:email")
        if not token.scopes & {"user", "user:email"}:
            return JSONResponse({"message": "Not Found", "documentation_url": f"{GITHUB_DOCS}/rest/users/emails",
                                 "status": "404"}, 404, headers=headers)
        user = token.user
        listed = []
        if user.email is not None:
            listed.append({"email": user.email, "primary": True, "verified": user.email_verified,
                           "visibility": "public" if user.public_email else "private"})
        listed += [{"email": extra["email"], "primary": False, "verified": bool(extra.get("verified", False)),
                    "visibility": None} for extra in user.other_emails]
        return JSONResponse(listed, headers=headers)


# -- OpenID Connect -------------------------------------------------------------------------------

def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


def compact(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A JWS compact serialization built by hand, for the algorithms joserfc refuses to make."""
    def part(value: dict[str, Any]) -> str:
        return b64url(json.dumps(value, separators=(",", ":")).encode())
    signing_input = f"{part(header)}.{part(claims)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


class OIDCProvider(Provider):
    """An OpenID Connect provider found through ``discovery_url``. The issuer is the server's URL.

    Fault switches for negative tests (all reset by ``reset_faults``):
    ``id_token_claims`` overrides claims of the ID tokens it issues (``DROP`` removes one);
    ``id_token_signing`` picks a signing mode from ``SIGNING_MODES``; ``userinfo_claims``
    overrides what ``/userinfo`` answers.
    """

    name = "oidc"

    def __init__(self, *, id_token_lifetime: int = 300, access_token_lifetime: int = 3600, **kwargs: Any) -> None:
        self.id_token_lifetime = id_token_lifetime
        self.access_token_lifetime = access_token_lifetime
        self._key_number = 1
        self.keys: list[RSAKey] = [rsa_key("key-1")]
        self.signing_key = self.keys[0]
        self.id_token_claims: dict[str, Any] = {}
        self.id_token_signing = "jwks"
        self.userinfo_claims: dict[str, Any] = {}
        #: Every ID token issued, as sent.
        self.id_tokens: list[str] = []
        super().__init__(**kwargs)

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def rotate_key(self) -> RSAKey:
        """Publish a new key and sign with it from now on; the old ones stay published."""
        self._key_number += 1
        key = rsa_key(f"key-{self._key_number}")
        self.keys.append(key)
        self.signing_key = key
        return key

    def drop_old_keys(self) -> None:
        self.keys = [self.signing_key]

    def reset_faults(self) -> None:
        self.id_token_claims, self.userinfo_claims, self.id_token_signing = {}, {}, "jwks"

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/openid-configuration", self.configuration),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
            Route("/userinfo", self.userinfo, methods=["GET", "POST"]),
        ]

    async def configuration(self, request: Request) -> Response:
        await self.record(request)
        return JSONResponse({
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "email",
                                 "email_verified", "name", "preferred_username", "picture"],
        })

    async def jwks(self, request: Request) -> Response:
        await self.record(request)
        return JSONResponse({"keys": [key.as_dict(private=False) for key in self.keys]})

    async def authorize(self, request: Request) -> Response:
        await self.record(request)
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        registered = not self.redirect_uris or redirect_uri in self.redirect_uris
        if query.get("client_id") != self.client_id or not redirect_uri or not registered:
            # Never redirect to an unverified URI (RFC 6749 §4.1.2.1): an error page instead.
            return PlainTextResponse("invalid client_id or redirect_uri", 400)
        state = query.get("state")
        if query.get("response_type") != "code":
            return self.redirect(redirect_uri, error="unsupported_response_type", state=state)
        if "openid" not in query.get("scope", "").split():
            return self.redirect(redirect_uri, error="invalid_scope", error_description="openid is required",
                                 state=state)
        challenge, method = query.get("code_challenge"), query.get("code_challenge_method", "plain")
        if (challenge and method != "S256") or (self.require_pkce and not challenge):
            return self.redirect(redirect_uri, error="invalid_request",
                                 error_description="PKCE with code_challenge_method S256 is required", state=state)
        if self.denying:
            return self.redirect(redirect_uri, error="access_denied", state=state)
        if self.current is None:
            return self.no_user()
        grant = self.issue_code(client_id=self.client_id, redirect_uri=redirect_uri, scope=query["scope"],
                                state=state, code_challenge=challenge, nonce=query.get("nonce"))
        return self.redirect(redirect_uri, code=grant.code, state=state)

    def client_from(self, request: Request, form: dict[str, str]) -> tuple[str | None, bool]:
        """The authenticated client id (None when authentication fails) and whether Basic was used."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return None, True
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
            basic = True
        else:
            client_id, secret, basic = form.get("client_id", ""), form.get("client_secret", ""), False
        if client_id == self.client_id and hmac.compare_digest(secret, self.client_secret):
            return client_id, basic
        return None, basic

    async def token(self, request: Request) -> Response:
        form = await self.record(request)
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}

        def error(code: str, status: int = 400, **extra: str) -> Response:
            return JSONResponse({"error": code}, status, headers={**headers, **extra})

        client_id, basic = self.client_from(request, form)
        if client_id is None:
            return error("invalid_client", 401, **({"WWW-Authenticate": 'Basic realm="token"'} if basic else {}))
        if form.get("grant_type") != "authorization_code":
            return error("unsupported_grant_type")
        grant = self.take_grant(form.get("code", ""), client_id)
        if (grant is None or form.get("redirect_uri") != grant.redirect_uri
                or not self.pkce_ok(grant, form.get("code_verifier"))):
            return error("invalid_grant")
        token = self.issue_token(grant, "at_", lifetime=self.access_token_lifetime)
        id_token = self.id_token(grant, token)
        self.id_tokens.append(id_token)
        return JSONResponse({
            "access_token": token.token, "token_type": "Bearer", "expires_in": self.access_token_lifetime,
            "id_token": id_token, "scope": grant.scope,
        }, headers=headers)

    def user_claims(self, user: ProviderUser, scopes: frozenset[str]) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": user.id}
        if "email" in scopes and user.email is not None:
            claims.update(email=user.email, email_verified=user.email_verified)
        if "profile" in scopes:
            claims.update(name=user.name, preferred_username=user.login, picture=user.avatar_url)
            claims = {key: value for key, value in claims.items() if value is not None}
        return claims

    @staticmethod
    def overridden(claims: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
        claims = {**claims, **overrides}
        return {key: value for key, value in claims.items() if value is not DROP}

    def id_token(self, grant: Grant, token: AccessToken) -> str:
        now = int(self.clock())
        digest = hashlib.sha256(token.token.encode("ascii")).digest()
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": grant.client_id, "exp": now + self.id_token_lifetime, "iat": now,
            "auth_time": now, "at_hash": b64url(digest[:16]),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        claims.update(self.user_claims(grant.user, token.scopes))
        return self.sign(self.overridden(claims, self.id_token_claims))

    def sign(self, claims: dict[str, Any]) -> str:
        mode, key = self.id_token_signing, self.signing_key
        if mode == "jwks":
            return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
        if mode == "no_kid":
            return jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, key)
        if mode == "foreign":  # a key that is not in the JWKS, under its own kid
            return jwt.encode({"alg": "RS256", "kid": "foreign-key", "typ": "JWT"}, claims, rsa_key("foreign-key"))
        if mode == "foreign_kid":  # a key that is not in the JWKS, claiming the published kid
            return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, rsa_key(key.kid))
        if mode == "none":
            return compact({"alg": "none", "typ": "JWT"}, claims, lambda _: b"")
        if mode == "hmac":  # HS256 keyed with the client secret
            secret = self.client_secret.encode()
            return compact({"alg": "HS256", "typ": "JWT"}, claims,
                           lambda data: hmac.new(secret, data, hashlib.sha256).digest())
        if mode == "hmac_public_key":  # the algorithm-confusion attack: HS256 keyed with the public key
            pem = key.get_op_key("verify").public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            return compact({"alg": "HS256", "kid": key.kid, "typ": "JWT"}, claims,
                           lambda data: hmac.new(pem, data, hashlib.sha256).digest())
        raise ValueError(f"unknown id_token_signing {mode!r}; one of {', '.join(SIGNING_MODES)}")

    async def userinfo(self, request: Request) -> Response:
        await self.record(request)
        token = self.bearer(request)
        if token is None:
            return JSONResponse({"error": "invalid_token"}, 401,
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return JSONResponse(self.overridden(self.user_claims(token.user, token.scopes), self.userinfo_claims))


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture
def github_provider() -> Iterator[GitHubProvider]:
    """A running GitHub stand-in with nobody signed in."""
    with GitHubProvider() as provider:
        yield provider


@pytest.fixture
def oidc_provider() -> Iterator[OIDCProvider]:
    """A running OpenID Connect provider with nobody signed in."""
    with OIDCProvider() as provider:
        yield provider
