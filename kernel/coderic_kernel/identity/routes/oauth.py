"""Signing in with GitHub and OpenID Connect providers, and linking them to an account.

A browser goes to ``GET /api/v1/auth/oauth/{provider}/start?next=/path``: the kernel keeps
the flow's ``state`` server-side (single use, ``auth_oauth_state_minutes``), with the PKCE
verifier, the ``nonce`` and the post-login target, bound to the browser by a random value in
the ``__Host-coderic_oauth`` cookie, and redirects to the provider. The provider sends the
browser to ``.../callback``, whose URL is built from ``public_url``, never from the request.
The callback spends the state, checks the browser's binding, exchanges the code and ends
like every sign-in (``signin.py``: 2FA, then a session), redirecting to the target. A failure
redirects to the target (``/`` when the state is not good) with ``sign_in_error=<reason>``.

Signed-in members link an identity with ``POST /api/v1/me/identities/{provider}`` (the same
flow, ending in a link instead of a sign-in), list them, and unlink all but the last way to
sign in.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from coderic_sdk import FieldError, NotFound, Problem, RequestContext, Route, Schema
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, RedirectResponse, Response

from .. import linking, onetime
from ..audit import record
from ..crypto import same, token_hash
from ..oauth import Provider, SignInFailed
from ..service import IdentityService
from ..signin import redirect_response, set_cookies
from .common import NEEDS_USER, interactive_user, service_of

logger = logging.getLogger("coderic.auth.oauth")

STATE_PURPOSE = "oauth_state"
BINDING_COOKIE = "__Host-coderic_oauth"
PROVIDER_NAME = r"^[a-z][a-z0-9-]{0,39}$"
MAX_TARGET_CHARS = 2000


# -- schemas --------------------------------------------------------------------------------------

class ProviderPath(Schema):
    provider: str = Field(pattern=PROVIDER_NAME)


class StartQuery(Schema):
    next: str = Field("/", max_length=MAX_TARGET_CHARS,
                      description="Where to go once signed in: a path of this site (`/projects?tab=mine`).")


class CallbackQuery(BaseModel):
    """What the provider sends back; other parameters (``iss``, ``session_state``) are ignored."""

    model_config = ConfigDict(extra="ignore")

    state: str = Field("", max_length=200)
    code: str = Field("", max_length=2000)
    error: str = Field("", max_length=200)


class ProviderOut(Schema):
    name: str = Field(description="`github`, or the operator's name for an OpenID Connect provider.")
    label: str = Field(description="What a sign-in button says.")
    kind: str = Field(description="`github` or `oidc`.")
    start_url: str = Field(description="Send the browser here (add `?next=/path`) to sign in.")


class ProviderList(Schema):
    providers: list[ProviderOut]


class IdentityOut(Schema):
    provider: str
    subject: str = Field(description="The account's id at the provider.")
    email: str | None
    email_verified: bool
    created_at: datetime
    last_used_at: datetime | None


class IdentityList(Schema):
    identities: list[IdentityOut]
    available: list[str] = Field(description="Providers not linked yet.")


class LinkIn(Schema):
    next: str = Field("/", max_length=MAX_TARGET_CHARS, description="Where the browser returns afterwards.")
    refresh_profile: bool = Field(
        False, description="Copy name, bio, location and avatar from the provider over the current ones."
    )


class LinkOut(Schema):
    authorize_url: str = Field(description="Send the browser here; it comes back to `next` with `linked=<provider>`.")


# -- helpers --------------------------------------------------------------------------------------

def safe_target(value: str, field: str) -> str:
    """``value`` if it is a path of this site, else a 422: no scheme, no host, no ``//`` or
    ``\\`` (which browsers read as another host), no control characters."""
    parts = urlsplit(value)
    if (not value.startswith("/") or value.startswith("//") or "\\" in value or parts.scheme or parts.netloc
            or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)):
        raise Problem(422, "The target must be a path of this site.",
                      errors=[FieldError(field, "a path starting with a single '/'", "value_error")])
    return value


def with_param(target: str, **params: str) -> str:
    return target + ("&" if "?" in target else "?") + urlencode(params)


def provider_of(service: IdentityService, name: str) -> Provider:
    provider = service.oauth.get(name)
    if provider is None:
        raise NotFound(f"No sign-in provider is called {name!r}.")
    return provider


def callback_url(service: IdentityService, provider: str) -> str:
    return f"{service.settings.public_url}/api/v1/auth/oauth/{provider}/callback"


async def begin_flow(ctx: RequestContext[Any, Any, Any], provider: Provider, target: str,
                     link: dict[str, Any] | None = None) -> tuple[str, list[tuple[str, str, int]]]:
    """A new state for the flow, and the authorization URL and the binding cookie."""
    service = service_of(ctx)
    lifetime = timedelta(minutes=service.settings.auth_oauth_state_minutes)
    binding = ctx.request.cookies.get(BINDING_COOKIE, "")
    if not 40 <= len(binding) <= 60:  # reused while valid, so two tabs can sign in at once
        binding = secrets.token_urlsafe(32)
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(24)
    data = {"provider": provider.name, "verifier": verifier, "nonce": nonce, "next": target,
            "binding": token_hash(binding), **(link or {})}
    state = await onetime.issue(STATE_PURPOSE, lifetime, data=data, revoke_previous=False)
    try:
        url = await provider.authorization_url(callback_url(service, provider.name), state, verifier, nonce)
    except SignInFailed as exc:
        logger.warning("provider %s: %s", provider.name, exc)
        raise Problem(502, f"{provider.label} cannot be reached; try again later.") from None
    return url, [(BINDING_COOKIE, binding, int(lifetime.total_seconds()))]


# -- handlers -------------------------------------------------------------------------------------

async def list_providers(ctx: RequestContext[None, None, None]) -> ProviderList:
    service = service_of(ctx)
    return ProviderList(providers=[
        ProviderOut(name=p.name, label=p.label, kind=p.kind, start_url=f"/api/v1/auth/oauth/{p.name}/start")
        for p in service.oauth.values()
    ])


async def start(ctx: RequestContext[None, StartQuery, ProviderPath]) -> Response:
    provider = provider_of(service_of(ctx), ctx.path.provider)
    url, cookies = await begin_flow(ctx, provider, safe_target(ctx.query.next, "query.next"))
    return set_cookies(RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"}), cookies)


async def callback(ctx: RequestContext[None, CallbackQuery, ProviderPath]) -> Response:
    service = service_of(ctx)
    provider = provider_of(service, ctx.path.provider)
    target = "/"

    async def failed(reason: str, user_id: str | None = None, detail: str = "") -> Response:
        logger.info("sign-in with %s failed: %s %s", provider.name, reason, detail)
        await record("login.failed", ctx.request, user_id, {"method": provider.name, "reason": reason})
        return RedirectResponse(with_param(target, sign_in_error=reason), status_code=303,
                                headers={"Cache-Control": "no-store"})

    redeemed = await onetime.redeem(STATE_PURPOSE, ctx.query.state) if ctx.query.state else None
    if redeemed is None or redeemed.data.get("provider") != provider.name:
        return await failed("state_invalid")
    data = redeemed.data
    if not same(token_hash(ctx.request.cookies.get(BINDING_COOKIE, "")), data["binding"]):
        return await failed("state_invalid", detail="the state was started in another browser")
    target = data["next"]
    link_user = data.get("link_user")
    if ctx.query.error or not ctx.query.code:
        reason = "access_denied" if ctx.query.error == "access_denied" else "provider_error"
        return await failed(reason, link_user, ctx.query.error)
    try:
        profile = await provider.complete(ctx.query.code, callback_url(service, provider.name), data["verifier"],
                                          data["nonce"])
        if link_user is not None:
            session = await service.sessions.by_uid(data["link_session"])
            if session is None or session.user_id != link_user:
                raise SignInFailed("session_ended", "the session that started the link has ended")
            await linking.link(profile, link_user, refresh=bool(data.get("refresh_profile")))
            await record("identity.linked", ctx.request, link_user, {"provider": provider.name, "by": "request"})
            return RedirectResponse(with_param(target, linked=provider.name), status_code=303,
                                    headers={"Cache-Control": "no-store"})
        user, found = await linking.sign_in_account(profile, provider)
    except SignInFailed as exc:
        return await failed(exc.reason, link_user, exc.detail)
    if found != "identity":
        await record("identity.linked", ctx.request, user["uid"], {"provider": provider.name, "by": found})
    if user["status"] != "active":
        return await failed("account_disabled", user["uid"])
    outcome = await service.signin.begin(ctx.request, user, provider.name, "session")
    return redirect_response(outcome, target)


async def list_identities(ctx: RequestContext[None, None, None]) -> IdentityList:
    user = interactive_user(ctx)
    rows = await linking.identities_of(user.id)
    linked = {row["provider"] for row in rows}
    return IdentityList(
        identities=[IdentityOut(provider=row["provider"], subject=row["subject"], email=row["email"],
                                email_verified=row["email_verified"], created_at=row["created_at"],
                                last_used_at=row["last_used_at"]) for row in rows],
        available=[name for name in service_of(ctx).oauth if name not in linked],
    )


async def start_link(ctx: RequestContext[LinkIn, None, ProviderPath]) -> Response:
    user = interactive_user(ctx)
    provider = provider_of(service_of(ctx), ctx.path.provider)
    link = {"link_user": user.id, "link_session": user.session_id, "refresh_profile": ctx.body.refresh_profile}
    url, cookies = await begin_flow(ctx, provider, safe_target(ctx.body.next, "body.next"), link)
    body = LinkOut(authorize_url=url).model_dump()
    return set_cookies(JSONResponse(body, headers={"Cache-Control": "no-store"}), cookies)


async def unlink(ctx: RequestContext[None, None, ProviderPath]) -> Response:
    user = interactive_user(ctx)
    if not await linking.unlink(user.id, ctx.path.provider):
        raise NotFound(f"No {ctx.path.provider} account is linked to yours.")
    await record("identity.unlinked", ctx.request, user.id, {"provider": ctx.path.provider})
    return Response(status_code=204)


def routes() -> list[Route]:
    auth = {"tags": ("auth",), "path_params": ProviderPath, "rate_limit": "auth.oauth"}
    me = {"prefix": "me", "tags": ("me",), "authenticated": True, "responses": NEEDS_USER}
    redirect = {"status_code": 303, "media_type": None}
    return [
        Route("GET", "/providers", list_providers, name="providers", response=ProviderList, tags=("auth",),
              summary="Sign-in providers", description="GitHub and the OpenID Connect providers configured."),
        Route("GET", "/oauth/{provider}/start", start, name="oauth_start", query=StartQuery, **auth, **redirect,
              summary="Sign in with a provider",
              description="Redirects the browser to the provider. `next` must be a path of this site.",
              responses={303: "To the provider.", 404: "No such provider.", 422: "`next` is not a path of this site.",
                         502: "The provider's discovery document cannot be fetched."}),
        Route("GET", "/oauth/{provider}/callback", callback, name="oauth_callback", query=CallbackQuery, **auth,
              **redirect, summary="Where the provider sends the browser back",
              description="Ends the sign-in (or link) and redirects to `next`: signed in (session cookies set), "
                          "with `two_factor=required`, with `linked=<provider>`, or with `sign_in_error=<reason>`.",
              responses={303: "To `next`, or to `/` when the state is not good."}),
        Route("GET", "/identities", list_identities, name="identities", response=IdentityList,
              summary="My linked sign-in accounts", **me),
        Route("POST", "/identities/{provider}", start_link, name="link_identity", body=LinkIn, response=LinkOut,
              path_params=ProviderPath, rate_limit="auth.oauth", summary="Link a provider's account to mine",
              description="Answers the provider URL to send the browser to; the callback links the account it "
                          "signs in with, unless another member has it.", **me),
        Route("DELETE", "/identities/{provider}", unlink, name="unlink_identity", path_params=ProviderPath,
              status_code=204, media_type=None, summary="Unlink a provider's account",
              description="Refused (409) when it is the last way to sign in: set a password or link another first.",
              **me),
    ]
