"""Email and password: ``/api/v1/auth/register``, ``/login`` and ``/password/...``.

Guessing is throttled per client address (the route's policy, counted before anything else)
and per account: per account and address, then per account from anywhere (policies
``auth.login_account`` and ``auth.login_account_daily``, keyed by the address typed, whether
it has an account or not). All fail closed. A throttled account waits one interval of the
policy, never longer: an attacker can slow a victim's password sign-in while the attack
lasts, never lock it for good (docs/auth.md, "Throttling sign-in and email").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from coderic_sdk import CurrentUser, FieldError, Problem, RequestContext, Route, Schema, Unauthorized
from pydantic import Field
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response

from .. import email_flows, password_policy, users
from ..audit import client_of, record
from ..passwords import hash_password_async, needs_rehash, verify_password_async
from ..service import IdentityService
from ..signin import json_response
from .common import NEEDS_USER, SIGN_IN_RESPONSES, interactive_user, service_of

logger = logging.getLogger("coderic.auth")
#: Longest password field accepted at all; the policy's limit (128 code points) is for new passwords.
MAX_FIELD = 4096
EMAIL_NOT_VERIFIED = "https://coderic.org/problems/email-not-verified"
WRONG_PASSWORD = "https://coderic.org/problems/wrong-password"
INVALID_LINK = "https://coderic.org/problems/invalid-link"
REAUTHENTICATE = "https://coderic.org/problems/reauthentication-required"  # as routes/two_factor.py
#: What ``normalise_address`` accepts, for the OpenAPI document: an ASCII local part, any domain.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[^\x00-\x20\x7f-\x9f@.\"(),:;<>\[\]\\]+"
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$"
ACCEPTED = {"detail": "If the address can be used, a message is on its way to it. Check your email."}


class AcceptedOut(Schema):
    detail: str = Field(description="The same whether or not the address has an account.")


def email_field(description: str = "An email address.") -> Any:
    return Field(max_length=320, pattern=EMAIL_PATTERN, description=description)


class RegisterIn(Schema):
    email: str = email_field()
    password: str = Field(max_length=MAX_FIELD, description="12 to 128 characters, any Unicode; see docs/auth.md.")
    name: str = Field("", max_length=200)
    language: Literal["es", "en"] | None = Field(None, description="For email; `null`: the platform default.")


class LoginIn(Schema):
    email: str = email_field()
    password: str = Field(max_length=MAX_FIELD)
    mode: Literal["session", "token"] = Field(
        "session", description="`session`: cookies for a browser; `token`: an access and a refresh token in the body."
    )


class EmailIn(Schema):
    email: str = email_field()


class ResetIn(Schema):
    token: str = Field(max_length=200, description="The `token` of the link in the reset email.")
    password: str = Field(max_length=MAX_FIELD, description="The new password.")


class ChangePasswordIn(Schema):
    current_password: str | None = Field(
        None, max_length=MAX_FIELD,
        description="Required when the account has a password. An account without one (signed up with GitHub) "
                    "sets its first password within 10 minutes of signing in instead.",
    )
    new_password: str = Field(max_length=MAX_FIELD)


class PasswordChangedOut(Schema):
    other_sessions_ended: int = Field(description="Sessions (browsers and apps) signed out by the change.")


def accepted(work: Callable[[], Awaitable[None]]) -> Response:
    """202 with the same body for every address; ``work`` (whatever depends on the address)
    runs after the answer has gone, so its duration tells the caller nothing either."""
    return JSONResponse(ACCEPTED, status_code=202, headers={"Cache-Control": "no-store"},
                        background=BackgroundTask(_after_answer, work))


async def _after_answer(work: Callable[[], Awaitable[None]]) -> None:
    try:
        await work()
    except Exception:  # the answer has gone: log, and let the member ask again
        logger.exception("auth: email work after the answer failed")


async def throttle_guess(ctx: RequestContext[Any, Any, Any], account: str) -> None:
    """Count a password guess against ``account`` (a normalised address): from this client
    address, then from anywhere."""
    service = service_of(ctx)
    ip, _ = client_of(ctx.request)
    await service.throttle(ctx.request, "login_account", f"{account}|{ip}")
    await service.throttle(ctx.request, "login_account_daily", account)


async def throttle_mail(ctx: RequestContext[Any, Any, Any], address: str) -> None:
    """Count a message asked for ``address``: register, resend, reset and email change share it,
    so no address can be flooded with mail."""
    await service_of(ctx).throttle(ctx.request, "email_address", address)


async def check_new_password(service: IdentityService, password: str, *, email: str | None, name: str | None,
                             field: str) -> None:
    await password_policy.check(password, service.settings.auth_password_list, email=email, name=name, field=field)


async def register(ctx: RequestContext[RegisterIn, None, Any]) -> Response:
    service = service_of(ctx)
    email = users.normalised_email(ctx.body.email)
    name = ctx.body.name.strip()
    await check_new_password(service, ctx.body.password, email=email, name=name, field="body.password")
    await throttle_mail(ctx, email)
    password_hash = await hash_password_async(ctx.body.password)  # for every address, known or not: as long for both
    return accepted(lambda: email_flows.register(service, ctx.request, email, password_hash, name, ctx.body.language))


async def login(ctx: RequestContext[LoginIn, None, Any]) -> Response:
    service = service_of(ctx)
    email = users.normalised_email(ctx.body.email)
    await throttle_guess(ctx, email)
    user = await users.by_email(email)
    stored = user["password_hash"] if user is not None else None
    # Unknown address, no password, wrong password: one answer, one hash verification each.
    if not await verify_password_async(stored, ctx.body.password):
        reason = "unknown_account" if user is None else "no_password" if stored is None else "wrong_password"
        await record("login.failed", ctx.request, user["uid"] if user else None,
                     {"method": "password", "reason": reason, "email": email})
        raise Unauthorized("The email address or the password is wrong.")
    assert user is not None and stored is not None
    if needs_rehash(stored):
        await users.update(user["uid"], password_hash=await hash_password_async(ctx.body.password))
        await record("password.rehashed", ctx.request, user["uid"], {})
    if not user["email_verified"] and user["status"] == "active":
        await record("login.refused", ctx.request, user["uid"], {"method": "password", "reason": "email_not_verified"})
        raise Problem(403, "Confirm your email address first: open the link we sent you, or ask for a new one at "
                           "POST /api/v1/auth/verify-email/resend.", type=EMAIL_NOT_VERIFIED)
    return json_response(await service.signin.begin(ctx.request, user, "password", ctx.body.mode))


async def mail_request(ctx: RequestContext[EmailIn, None, Any], flow: Callable[..., Awaitable[None]]) -> Response:
    """Mail asked for an address someone typed: ``flow(service, request, address)`` after the
    same 202 for every address."""
    service = service_of(ctx)
    email = users.normalised_email(ctx.body.email)
    await throttle_mail(ctx, email)
    return accepted(lambda: flow(service, ctx.request, email))


async def request_reset(ctx: RequestContext[EmailIn, None, Any]) -> Response:
    return await mail_request(ctx, email_flows.request_reset)


async def confirm_reset(ctx: RequestContext[ResetIn, None, Any]) -> Response:
    service = service_of(ctx)
    user = await email_flows.reset_holder(ctx.body.token)
    if user is None:
        raise invalid_link()
    await check_new_password(service, ctx.body.password, email=user["email"], name=user["name"], field="body.password")
    password_hash = await hash_password_async(ctx.body.password)
    if await email_flows.reset(service, ctx.request, ctx.body.token, password_hash) is None:
        raise invalid_link()  # used by a concurrent request meanwhile
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


async def active_member(ctx: RequestContext[Any, Any, Any]) -> tuple[CurrentUser, dict[str, Any]]:
    """The caller, signed in themselves (no personal token), and their active account."""
    caller = interactive_user(ctx)
    user = await users.by_uid(caller.id)
    if user is None or user["status"] != "active":
        raise Unauthorized("The account is not active.")
    return caller, user


async def change_password(ctx: RequestContext[ChangePasswordIn, None, Any]) -> PasswordChangedOut:
    caller, user = await active_member(ctx)
    service = service_of(ctx)
    await check_new_password(service, ctx.body.new_password, email=user["email"], name=user["name"],
                             field="body.new_password")
    await prove_identity(ctx, service, user, ctx.body.current_password, "body.current_password",
                         required=user["password_hash"] is not None)
    password_hash = await hash_password_async(ctx.body.new_password)
    ended = await email_flows.change_password(service, ctx.request, user, caller.session_id, password_hash)
    return PasswordChangedOut(other_sessions_ended=ended)


async def prove_identity(ctx: RequestContext[Any, Any, Any], service: IdentityService, user: dict[str, Any],
                         password: str | None, field: str, *, required: bool = False) -> None:
    """The member is at the keyboard: ``password`` is theirs (throttled like a sign-in), or,
    with no password given and none ``required``, they signed in (or proved themselves) in
    the last 10 minutes."""
    if password is None:
        if required:
            raise Problem(422, "Give your current password.", errors=[FieldError(field, "required", "missing")])
        if not await email_flows.recently_authenticated(service, ctx.require_user().session_id):
            raise Problem(403, "Confirm it is you: send your password, or sign in again, within 10 minutes of this request.",
                          type=REAUTHENTICATE)
        return
    await throttle_guess(ctx, user["email"] or user["uid"])
    if not await verify_password_async(user["password_hash"], password):
        await record("password.check_failed", ctx.request, user["uid"], {"field": field.rsplit(".", 1)[-1]})
        raise Problem(403, "The password is wrong.", type=WRONG_PASSWORD,
                      errors=[FieldError(field, "wrong password", "wrong_password")])
    session_id = ctx.require_user().session_id
    if session_id is not None:
        await service.sessions.reauthenticated(session_id)


def invalid_link() -> Problem:
    return Problem(404, "The link is invalid, used or expired: ask for a new one.", type=INVALID_LINK)


def routes() -> list[Route]:
    auth = {"tags": ("auth",)}
    me = {"tags": ("auth",), "authenticated": True}
    throttled = {429: "Too many attempts (see `Retry-After`).",
                 503: "The rate-limit store is unreachable: refused rather than unthrottled."}
    return [
        Route("POST", "/register", register, name="register", body=RegisterIn, response=AcceptedOut, status_code=202,
              rate_limit="auth.email", summary="Create an account with email and password",
              description="Answers 202 whether or not the address has an account. A new address gets a link to "
                          "verify it (needed to sign in with the password); an address with an account gets a notice "
                          "instead.", responses={422: "The password breaks a rule (`errors` says which).", **throttled},
              **auth),
        Route("POST", "/login", login, name="login", body=LoginIn, responses={
                  **SIGN_IN_RESPONSES, 401: "The email address or the password is wrong (the same for unknown addresses).",
                  403: "The address is not verified yet, or the account is disabled.", **throttled},
              rate_limit="auth.login", summary="Sign in with email and password",
              description="Signs in, or asks for the second factor (`two_factor_required`). A browser uses "
                          "`mode: session` (cookies), an app `mode: token`.", **auth),
        Route("POST", "/password/reset", request_reset, name="request_password_reset", body=EmailIn,
              response=AcceptedOut, status_code=202, rate_limit="auth.email", summary="Ask for a password reset link",
              description="Answers 202 whether or not the address has an account; the link works once, for 30 "
                          "minutes.", responses=throttled, **auth),
        Route("POST", "/password/reset/confirm", confirm_reset, name="confirm_password_reset", body=ResetIn,
              status_code=204, media_type=None, rate_limit="auth.token", summary="Choose a new password with a reset link",
              description="Sets the password, verifies the address, and signs out every session (apps too). Signs "
                          "no one in: sign in afterwards (with the second factor, if on).",
              responses={404: "The link is invalid, used or expired.", 422: "The password breaks a rule.", **throttled},
              **auth),
        Route("POST", "/password/change", change_password, name="change_password", body=ChangePasswordIn,
              response=PasswordChangedOut, summary="Change my password",
              description="Needs the current password. Every other session ends; this one stays signed in. "
                          "Personal access tokens cannot do this.",
              responses={**NEEDS_USER, 403: "The current password is wrong, or a personal token was used.",
                         422: "The new password breaks a rule.", **throttled}, **me),
    ]
