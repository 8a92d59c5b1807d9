"""Two-factor authentication: ``/api/v1/auth/2fa/...``.

Enrolment (``totp/setup``, then ``totp/enable`` with a first code) gives ten recovery codes;
``verify`` finishes a sign-in that ``signin.begin`` answered with a challenge. The challenge
is the only thing a half-signed-in client holds, and only ``verify`` accepts it (the
enrolment routes accept the enrolment challenge of ``auth_require_2fa``): it is no session
and no bearer credential. Wrong codes count against the challenge and are throttled per
account and per address (policy ``auth.two_factor``).

Changing 2FA needs proof that the user is at the keyboard: a current code, or a sign-in (or
``reauthenticate``) in the last ``RECENT`` minutes, so a stolen session cookie can neither
switch 2FA off nor enrol the thief's authenticator. Every change is audited and mailed to
the account's address (template ``auth.two_factor_changed``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from coderic_sdk import (
    Conflict, CurrentUser, FieldError, Forbidden, Problem, Recipient, RequestContext, Route, Schema, Unauthorized,
)
from pydantic import ConfigDict, Field
from starlette.responses import JSONResponse, Response

from .. import onetime, recovery, signin, users
from ..audit import client_of, record
from ..service import IdentityService
from ..totp import SETUP_LIFETIME, Totp, provisioning_uri, qr_svg, totp_for
from .common import NEEDS_USER, SignedInOut, interactive_user, service_of

RECENT = timedelta(minutes=10)
REAUTHENTICATE = "https://coderic.org/problems/reauthentication-required"
WRONG_CODE = "https://coderic.org/problems/wrong-two-factor-code"
SECURITY_PAGE = "/account/security"
#: Proofs are "a code or a recovery code", never both; the schema says so (``oneOf``/``not``).
ONE_PROOF = {"oneOf": [{"required": ["code"]}, {"required": ["recovery_code"]}]}
AT_MOST_ONE_PROOF = {"not": {"required": ["code", "recovery_code"]}}


def _optional(description: str, max_length: int) -> Any:
    """A field that may be absent but is never ``null`` (so the schema has no null default)."""
    return Field(None, max_length=max_length, description=description,
                 json_schema_extra=lambda schema: schema.pop("default", None))  # type: ignore[arg-type,misc]


class SetupIn(Schema):
    challenge: str | None = Field(
        None, max_length=200,
        description="Only when signing in under `auth_require_2fa`: the enrolment challenge (or its cookie). "
                    "Signed-in members send `{}`.",
    )


class SetupOut(Schema):
    secret: str = Field(description="The base32 secret, for typing into an authenticator app by hand.")
    otpauth_uri: str = Field(description="The `otpauth://totp/...` provisioning URI the QR code encodes.")
    qr_svg: str = Field(description="The provisioning URI as a QR code: an inline `<svg>` element.")
    expires_in: int = Field(description="Seconds left to confirm with `POST /api/v1/auth/2fa/totp/enable`.")


class EnableIn(Schema):
    code: str = Field(max_length=20, description="The 6-digit code the authenticator shows now.")
    challenge: str | None = Field(None, max_length=200, description="As for `totp/setup`.")


class RecoveryCodesOut(Schema):
    recovery_codes: list[str] = Field(description="Ten single-use codes, shown this once: store them somewhere safe.")


class EnabledOut(RecoveryCodesOut):
    sign_in: SignedInOut | None = Field(None, description="When enrolling under `auth_require_2fa`: the sign-in it finished.")


class ProofIn(Schema):
    """Exactly one of ``code`` and ``recovery_code``."""

    model_config = ConfigDict(json_schema_extra=ONE_PROOF)

    code: str = _optional("The authenticator's current 6-digit code.", 20)
    recovery_code: str = _optional("Or one of the recovery codes (it is used up).", 40)


class OptionalProofIn(ProofIn):
    """At most one of ``code`` and ``recovery_code``; with neither, a sign-in in the last 10
    minutes is the proof."""

    model_config = ConfigDict(json_schema_extra=AT_MOST_ONE_PROOF)


class VerifyIn(ProofIn):
    challenge: str = _optional(
        "The `challenge` of the sign-in answer. Browsers may leave it out: the `__Host-coderic_2fa` cookie holds it.", 200
    )


class StatusOut(Schema):
    enabled: bool
    enabled_at: datetime | None
    recovery_codes_left: int


# Helpers ------------------------------------------------------------------------------------


def _one_code(code: str | None, recovery_code: str | None, *, required: bool = True) -> None:
    if (code is not None and recovery_code is not None) or (required and code is None and recovery_code is None):
        raise Problem(422, "Send either `code` or `recovery_code`.",
                      errors=[FieldError("body.code", "send exactly one of code and recovery_code", "value_error")])


def _wrong_code(signing_in: bool = False) -> Problem:
    """401 while signing in (the credentials are wrong); 403 for a signed-in member's proof."""
    if signing_in:
        return Unauthorized("The code is wrong, expired or already used.", error="invalid_grant")
    return Problem(403, "The code is wrong, expired or already used.", type=WRONG_CODE)


def _ip(ctx: RequestContext[Any, Any, Any]) -> str:
    return "ip=" + (ctx.request.client.host if ctx.request.client else "-")


class _Refused(Exception):
    """Rolls back the transaction of a check that failed; the failure is counted after it."""


def _all_or_nothing(ctx: RequestContext[Any, Any, Any]) -> Any:
    """One database transaction: a refused code (``_Refused``) leaves nothing behind."""
    return ctx.plugin.kernel.database.transaction()  # type: ignore[attr-defined]


async def _prove(totp: Totp, user: dict[str, Any], code: str | None, recovery_code: str | None) -> str | None:
    """Check (and use up) a code of the user: the kind that worked, or ``None``."""
    if code is not None:
        return "totp" if await totp.accept(user, code) else None
    if recovery_code is not None and user["totp_enabled_at"] is not None:
        return "recovery_code" if await recovery.use(user["uid"], recovery_code) else None
    return None


async def _require_recent(service: IdentityService, user: CurrentUser) -> None:
    session = await service.sessions.by_uid(user.session_id) if user.session_id else None
    if session is None or datetime.now(timezone.utc) - session.authenticated_at > RECENT:
        minutes = int(RECENT.total_seconds() // 60)
        raise Problem(403, f"Prove it is you: sign in again, or send a current code to "
                           f"POST /api/v1/auth/2fa/reauthenticate, within {minutes} minutes of this request.",
                      type=REAUTHENTICATE)


async def _user(user_id: str) -> dict[str, Any]:
    row = await users.by_uid(user_id)
    if row is None or row["status"] != "active":
        raise Unauthorized("The account is not active.")
    return row


async def _notify(ctx: RequestContext[Any, Any, Any], user: dict[str, Any], change: str, **extra: Any) -> None:
    """The ``auth.two_factor_changed`` security email, through the outbox (in the caller's transaction)."""
    if not user["email"]:
        return
    ip, agent = client_of(ctx.request)
    settings = service_of(ctx).settings
    context = {"change": change, "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "device": agent or "?", "ip": ip or "?", "security_url": settings.public_url + SECURITY_PAGE, **extra}
    recipient = Recipient(user["email"], user["name"] or None, user["uid"], user["language"])
    await ctx.plugin.email.send("two_factor_changed", recipient, context)


async def _enrolling(ctx: RequestContext[Any, Any, Any], challenge: str | None, *,
                     recent: bool) -> tuple[CurrentUser | None, str | None]:
    """Who enrols: the signed-in member (with a ``recent`` sign-in, if asked), or (under
    ``auth_require_2fa``) the holder of an enrolment challenge. Returns ``(member, None)`` or
    ``(None, challenge)``."""
    if ctx.user is not None and challenge is None:
        member = interactive_user(ctx)
        if recent:
            await _require_recent(service_of(ctx), member)
        return member, None
    challenge = challenge or ctx.request.cookies.get(signin.CHALLENGE_COOKIE)
    if not challenge:
        raise Unauthorized()
    return None, challenge


async def _challenge_owner(purpose: str, challenge: str) -> str:
    pending = await onetime.peek(purpose, challenge)
    if pending is None or pending.user_id is None:
        raise Unauthorized("The sign-in challenge is invalid, used up or expired: sign in again.", error="invalid_grant")
    return pending.user_id


# Enrolment ----------------------------------------------------------------------------------


async def status(ctx: RequestContext[None, None, Any]) -> StatusOut:
    user = await _user(interactive_user(ctx).id)
    left = await recovery.remaining(user["uid"]) if user["totp_enabled_at"] is not None else 0
    return StatusOut(enabled=user["totp_enabled_at"] is not None, enabled_at=user["totp_enabled_at"],
                     recovery_codes_left=left)


def _no_store(body: Schema) -> JSONResponse:
    """Secrets and codes: never kept by a cache on the way."""
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


async def setup(ctx: RequestContext[SetupIn, None, Any]) -> Response:
    member, challenge = await _enrolling(ctx, ctx.body.challenge, recent=True)
    user_id = member.id if member is not None else await _challenge_owner(signin.ENROL_PURPOSE, challenge or "")
    user = await _user(user_id)
    if user["totp_enabled_at"] is not None:
        raise Conflict("Two-factor authentication is on already; switch it off first to use another authenticator.")
    secret = await totp_for(ctx.plugin.kernel).start_setup(user_id)  # type: ignore[arg-type]
    uri = provisioning_uri(secret, user["email"] or user["name"] or user_id)
    return _no_store(SetupOut(secret=secret, otpauth_uri=uri, qr_svg=qr_svg(uri),
                              expires_in=int(SETUP_LIFETIME.total_seconds())))


async def enable(ctx: RequestContext[EnableIn, None, Any]) -> Response:
    service, totp = service_of(ctx), totp_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    # No recent sign-in needed: the pending setup needed one, and its secret is the proof.
    member, challenge = await _enrolling(ctx, ctx.body.challenge, recent=False)
    user_id = member.id if member is not None else await _challenge_owner(signin.ENROL_PURPOSE, challenge or "")
    await service.throttle(ctx.request, "two_factor", _ip(ctx))
    await service.throttle(ctx.request, "two_factor", "user=" + user_id)
    user = await _user(user_id)
    if user["totp_enabled_at"] is not None:
        raise Conflict("Two-factor authentication is on already.")
    if await totp.pending_setup(user_id) is None:
        raise Conflict("No authenticator is being set up (or it took over 15 minutes): start with totp/setup.")
    outcome = None
    try:
        async with _all_or_nothing(ctx):
            redeemed = None
            if challenge is not None:
                redeemed = await onetime.redeem(signin.ENROL_PURPOSE, challenge)
                if redeemed is None:
                    raise Unauthorized("The sign-in challenge is invalid, used up or expired: sign in again.")
            if not await totp.confirm_setup(user_id, ctx.body.code):
                raise _Refused
            codes = await recovery.replace(user_id)
            if member is not None and member.session_id is not None:
                await service.sessions.revoke_all(user_id, except_uid=member.session_id)  # signed in with one factor
            await record("2fa.enabled", ctx.request, user_id, {"method": "totp"})
            await _notify(ctx, user, "enabled")
            if redeemed is not None:
                outcome = await service.signin.finish(ctx.request, user_id, redeemed.data["method"], redeemed.data["mode"])
    except _Refused:
        if challenge is not None:
            await onetime.count_attempt(signin.ENROL_PURPOSE, challenge, signin.CHALLENGE_ATTEMPTS)
        await record("2fa.failed", ctx.request, user_id, {"method": "totp", "during": "enable"})
        raise _wrong_code(signing_in=challenge is not None) from None
    signed_in = SignedInOut.model_validate(outcome.body) if outcome is not None else None
    response = _no_store(EnabledOut(recovery_codes=codes, sign_in=signed_in))
    return signin.set_cookies(response, outcome.cookies) if outcome else response


async def regenerate(ctx: RequestContext[OptionalProofIn, None, Any]) -> Response:
    service, totp = service_of(ctx), totp_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    member = interactive_user(ctx)
    _one_code(ctx.body.code, ctx.body.recovery_code, required=False)
    user = await _user(member.id)
    if user["totp_enabled_at"] is None:
        raise Conflict("Two-factor authentication is off: there are no recovery codes to replace.")
    if ctx.body.code is None and ctx.body.recovery_code is None:
        await _require_recent(service, member)
    else:
        await service.throttle(ctx.request, "two_factor", "user=" + member.id)
    try:
        async with _all_or_nothing(ctx):
            proof = (ctx.body.code, ctx.body.recovery_code)
            if proof != (None, None) and await _prove(totp, user, *proof) is None:
                raise _Refused
            codes = await recovery.replace(member.id)
            await record("recovery_codes.regenerated", ctx.request, member.id)
            await _notify(ctx, user, "recovery_codes_regenerated")
    except _Refused:
        await record("2fa.failed", ctx.request, member.id, {"during": "recovery_codes"})
        raise _wrong_code() from None
    return _no_store(RecoveryCodesOut(recovery_codes=codes))


async def disable(ctx: RequestContext[None, None, Any]) -> None:
    service = service_of(ctx)
    member = interactive_user(ctx)
    if service.settings.auth_require_2fa:
        raise Forbidden("This platform requires two-factor authentication: it cannot be switched off.")
    await _require_recent(service, member)
    user = await _user(member.id)
    async with _all_or_nothing(ctx):
        if not await totp_for(ctx.plugin.kernel).disable(member.id):  # type: ignore[arg-type]
            raise Conflict("Two-factor authentication is off already.")
        await recovery.delete_all(member.id)
        await record("2fa.disabled", ctx.request, member.id)
        await _notify(ctx, user, "disabled")


async def reauthenticate(ctx: RequestContext[ProofIn, None, Any]) -> None:
    service = service_of(ctx)
    member = interactive_user(ctx)
    _one_code(ctx.body.code, ctx.body.recovery_code)
    if member.session_id is None:
        raise Forbidden("Only a session can be re-authenticated.")
    await service.throttle(ctx.request, "two_factor", "user=" + member.id)
    user = await _user(member.id)
    if user["totp_enabled_at"] is None:
        raise Conflict("Two-factor authentication is off: sign in again instead.")
    kind = await _prove(totp_for(ctx.plugin.kernel), user, ctx.body.code, ctx.body.recovery_code)  # type: ignore[arg-type]
    if kind is None:
        await record("2fa.failed", ctx.request, member.id, {"during": "reauthenticate"})
        raise _wrong_code()
    await service.sessions.reauthenticated(member.session_id)
    await record("2fa.reauthenticated", ctx.request, member.id, {"method": kind, "session": member.session_id})
    if kind == "recovery_code":
        await _recovery_code_used(ctx, user)


async def _recovery_code_used(ctx: RequestContext[Any, Any, Any], user: dict[str, Any]) -> None:
    left = await recovery.remaining(user["uid"])
    await record("2fa.recovery_code_used", ctx.request, user["uid"], {"remaining": left})
    await _notify(ctx, user, "recovery_code_used", remaining=left)


# Signing in ---------------------------------------------------------------------------------


async def verify(ctx: RequestContext[VerifyIn, None, Any]) -> Response:
    service = service_of(ctx)
    body = ctx.body
    _one_code(body.code, body.recovery_code)
    challenge = body.challenge or ctx.request.cookies.get(signin.CHALLENGE_COOKIE)
    if not challenge:
        raise Unauthorized("Send the sign-in challenge (or its cookie) with the code.", error="invalid_request")
    await service.throttle(ctx.request, "two_factor", _ip(ctx))
    user_id = await _challenge_owner(signin.CHALLENGE_PURPOSE, challenge)
    await service.throttle(ctx.request, "two_factor", "user=" + user_id)
    user = await _user(user_id)
    try:
        async with _all_or_nothing(ctx):
            redeemed = await onetime.redeem(signin.CHALLENGE_PURPOSE, challenge)
            if redeemed is None:  # a concurrent request finished it
                raise Unauthorized("The sign-in challenge is invalid, used up or expired: sign in again.")
            kind = await _prove(totp_for(ctx.plugin.kernel), user, body.code, body.recovery_code)  # type: ignore[arg-type]
            if kind is None:
                raise _Refused
            if kind == "recovery_code":
                await _recovery_code_used(ctx, user)
            outcome = await service.signin.finish(ctx.request, user_id, redeemed.data["method"], redeemed.data["mode"])
    except _Refused:
        left = await onetime.count_attempt(signin.CHALLENGE_PURPOSE, challenge, signin.CHALLENGE_ATTEMPTS)
        kind = "totp" if body.code is not None else "recovery_code"
        await record("2fa.failed", ctx.request, user_id, {"method": kind, "during": "sign_in", "challenge_left": left})
        if not left:
            raise Unauthorized("Too many wrong codes: sign in again.", error="invalid_grant") from None
        raise _wrong_code(signing_in=True) from None
    return signin.json_response(outcome)


def routes() -> list[Route]:
    tags = ("auth",)
    member = {"tags": tags, "authenticated": True, "responses": NEEDS_USER}
    proof = {403: "The code is wrong, expired or already used; or no recent sign-in; or a personal access token.",
             409: "2FA is not on.", 429: "Too many attempts."}
    return [
        Route("GET", "/2fa", status, name="two_factor_status", response=StatusOut, summary="My 2FA status",
              description="Whether 2FA is on, since when, and how many recovery codes are left.", **member),
        Route("POST", "/2fa/totp/setup", setup, name="two_factor_setup", body=SetupIn, response=SetupOut, tags=tags,
              summary="Start setting up an authenticator app",
              description="A new TOTP secret, its `otpauth://` URI and QR code. Nothing changes until "
                          "`totp/enable` confirms a code. Needs a sign-in in the last 10 minutes (or "
                          "the enrolment challenge of a sign-in under `auth_require_2fa`).",
              responses={401: "Not signed in, or the enrolment challenge is invalid.",
                         403: "Not recently authenticated.", 409: "2FA is on already."}),
        Route("POST", "/2fa/totp/enable", enable, name="two_factor_enable", body=EnableIn, response=EnabledOut,
              tags=tags, summary="Turn 2FA on",
              description="Confirms the secret of `totp/setup` with a current code: 2FA is on, every other "
                          "session ends, and ten recovery codes are returned, once.",
              responses={401: "Not signed in; or the enrolment challenge is invalid, or its code wrong.",
                         403: "The code is wrong, expired or already used.",
                         409: "2FA is on already, or no setup is pending.", 429: "Too many attempts."}),
        Route("POST", "/2fa/recovery-codes", regenerate, name="two_factor_recovery_codes", body=OptionalProofIn,
              response=RecoveryCodesOut, summary="Replace my recovery codes",
              description="Ten new codes; the old ones stop working. Send a current `code` (or a "
                          "`recovery_code`), or `{}` within 10 minutes of signing in.",
              **{**member, "responses": {**NEEDS_USER, **proof}}),
        Route("DELETE", "/2fa/totp", disable, name="two_factor_disable", status_code=204, media_type=None,
              summary="Turn 2FA off",
              description="Needs a sign-in, or `2fa/reauthenticate`, in the last 10 minutes. Refused when "
                          "the platform requires 2FA (`auth_require_2fa`).",
              **{**member, "responses": {**NEEDS_USER, 403: "Not recently authenticated, or 2FA is required.",
                                         409: "2FA is off."}}),
        Route("POST", "/2fa/reauthenticate", reauthenticate, name="two_factor_reauthenticate", body=ProofIn,
              status_code=204, media_type=None, summary="Prove it is me with a code",
              description="A current code (or a recovery code) counts as a fresh sign-in for this session: "
                          "for the next 10 minutes it may change 2FA and other sensitive settings.",
              **{**member, "responses": {**NEEDS_USER, **proof}}),
        Route("POST", "/2fa/verify", verify, name="two_factor_verify", body=VerifyIn, response=SignedInOut,
              tags=tags, summary="Finish signing in with a second factor",
              description="Sends the sign-in's challenge (or its cookie) with the authenticator's code or a "
                          "recovery code. Answers like any sign-in: a session (cookies) or tokens, as the "
                          "sign-in asked. Five wrong codes use the challenge up.",
              responses={401: "The challenge is invalid or expired, or the code is wrong.",
                         429: "Too many attempts from this address or on this account."}),
    ]
