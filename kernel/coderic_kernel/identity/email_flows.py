"""Email and password accounts: registering, proving the address, resetting and changing the
password, changing the address. The routes are ``routes/password.py`` and ``routes/email.py``.

Links in mail start with ``public_url`` (never the request's ``Host``) and lead to pages of the
front end, which send the token to the API with a ``POST``; a mail scanner that opens a link
uses nothing up. Tokens are single-use, stored hashed (``onetime.py``), and each new one
replaces the user's previous one of the same purpose:

| Link | Lifetime | The page sends the token to |
|---|---|---|
| ``<public_url>/verify-email?token=...`` | 24 hours | ``POST /api/v1/auth/verify-email`` |
| ``<public_url>/reset-password?token=...`` | 30 minutes | ``POST /api/v1/auth/password/reset/confirm`` |
| ``<public_url>/confirm-email?token=...`` | 1 hour | ``POST /api/v1/auth/email/change/confirm`` |

The functions that take an address someone typed (``register``, ``resend_verification``,
``request_reset``, ``request_email_change``) run after the answer is sent, which is the same
whether the address has an account or not: neither the answer nor its timing tells.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from coderic_sdk import Recipient
from starlette.requests import HTTPConnection

from ..email.service import service_for
from . import onetime, personal_tokens, users
from .audit import client_of, record
from .signin import CHALLENGE_PURPOSE, ENROL_PURPOSE
from .tables import LinkedIdentity, OneTimeToken, User

if TYPE_CHECKING:
    from .service import IdentityService

VERIFY = "verify_email"
RESET = "password_reset"
EMAIL_CHANGE = "email_change"
VERIFY_LIFETIME = timedelta(hours=24)
RESET_LIFETIME = timedelta(minutes=30)
EMAIL_CHANGE_LIFETIME = timedelta(hours=1)
VERIFY_PAGE = "/verify-email"
RESET_PAGE = "/reset-password"
CONFIRM_EMAIL_PAGE = "/confirm-email"
SECURITY_PAGE = "/account/security"
#: "Recent authentication" for changing the address or setting a first password.
REAUTH_WINDOW = timedelta(minutes=10)
#: Registrations never verified are forgotten after this long, freeing the address.
UNVERIFIED_RETENTION = timedelta(days=7)

EmailChange = Literal["changed", "invalid", "taken"]


# Mail ------------------------------------------------------------------------------------


def link(service: IdentityService, page: str, token: str | None = None) -> str:
    mail = service_for(service.kernel)
    return mail.link(page, token=token) if token is not None else mail.link(page)


async def _send(service: IdentityService, template: str, user: dict[str, Any], context: dict[str, Any],
                address: str | None = None) -> None:
    recipient = Recipient(address or user["email"], user["name"] or None, user["uid"], user["language"])
    await service_for(service.kernel).queue(recipient, template=template, context=context)


def _security(service: IdentityService, connection: HTTPConnection) -> dict[str, Any]:
    """What a security notice says about the request that changed the account."""
    ip, agent = client_of(connection)
    return {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "device": agent or "?",
            "ip": ip or "?", "security_url": link(service, SECURITY_PAGE)}


async def password_notice(service: IdentityService, connection: HTTPConnection, user: dict[str, Any],
                          how: Literal["changed", "reset"]) -> None:
    if user["email"]:
        await _send(service, "auth.password_changed", user, {"how": how, **_security(service, connection)})


# Registering and verifying -----------------------------------------------------------------


async def register(service: IdentityService, connection: HTTPConnection, email: str, password_hash: str,
                   name: str, language: str | None) -> None:
    """A new account (address not yet verified) and its verification link; for an address that
    has an account, a notice to it instead: whoever owns the address learns of the attempt,
    the caller learns nothing."""
    existing = await users.by_email(email)
    if existing is None:
        try:
            user = await users.create(email=email, email_verified=False, password_hash=password_hash,
                                      password_changed_at=datetime.now(timezone.utc), name=name, language=language)
        except Exception:  # the same address registered concurrently: the unique index refused this one
            existing = await users.by_email(email)
            if existing is None:
                raise
        else:
            await record("account.registered", connection, user["uid"], {"method": "password"})
            await send_verification(service, user)
            return
    await record("account.register_existing", connection, existing["uid"], {})
    if existing["status"] == "active":
        await _send(service, "auth.account_exists", existing, {"reset_url": link(service, RESET_PAGE)})


async def send_verification(service: IdentityService, user: dict[str, Any]) -> None:
    token = await onetime.issue(VERIFY, VERIFY_LIFETIME, user_id=user["uid"], data={"email": user["email"]})
    await _send(service, "email.verify_email", user, {"verify_url": link(service, VERIFY_PAGE, token)})


async def resend_verification(service: IdentityService, connection: HTTPConnection, email: str) -> None:
    """A new link for a registration not yet verified; nothing for any other address."""
    user = await users.by_email(email)
    if user is None or user["email_verified"] or user["status"] != "active" or user["password_hash"] is None:
        return
    await send_verification(service, user)
    await record("email.verification_sent", connection, user["uid"], {})


async def verify(service: IdentityService, connection: HTTPConnection, token: str) -> bool:
    """Use a verification link: the account's address is verified (and a welcome sent)."""
    redeemed = await onetime.redeem(VERIFY, token)
    user = await _holder(redeemed)
    if user is None or redeemed is None or user["email"] != redeemed.data.get("email"):
        return False
    if not user["email_verified"]:
        await users.update(user["uid"], email_verified=True)
        await record("email.verified", connection, user["uid"], {})
        await _send(service, "email.welcome", user, {})
    return True


# Resetting the password ----------------------------------------------------------------------


async def request_reset(service: IdentityService, connection: HTTPConnection, email: str) -> None:
    """A reset link, for an active account whose address is verified or which registered with a
    password (its owner proves the address by using the link). An account made by a provider
    with an unverified address gets none: the address may not be its owner's."""
    user = await users.by_email(email)
    if user is None or user["status"] != "active" or not (user["email_verified"] or user["password_hash"]):
        await record("password.reset_requested", connection, user["uid"] if user else None, {"sent": False})
        return
    token = await onetime.issue(RESET, RESET_LIFETIME, user_id=user["uid"], data={"email": email})
    context = {"reset_url": link(service, RESET_PAGE, token), "expires_minutes": int(RESET_LIFETIME.total_seconds() // 60)}
    await _send(service, "email.password_reset", user, context)
    await record("password.reset_requested", connection, user["uid"], {"sent": True})


async def reset_holder(token: str) -> dict[str, Any] | None:
    """The account a reset link is good for, without using it up (to check the new password
    against the account before the link is spent)."""
    found = await onetime.peek(RESET, token)
    user = await _holder(found)
    return user if user is not None and found is not None and user["email"] == found.data.get("email") else None


async def reset(service: IdentityService, connection: HTTPConnection, token: str, password_hash: str) -> dict[str, Any] | None:
    """Use a reset link: the new password, the address verified (the link proved it), every
    session, refresh token and personal access token ended (a reset may follow a takeover, and
    a thief's token must not outlive it), every other pending link and sign-in challenge void.
    Signs no one in: the next sign-in asks for the second factor as usual."""
    redeemed = await onetime.redeem(RESET, token)
    user = await _holder(redeemed)
    if user is None or redeemed is None or user["email"] != redeemed.data.get("email"):
        return None
    await users.update(user["uid"], password_hash=password_hash, password_changed_at=datetime.now(timezone.utc),
                       email_verified=True)
    await onetime.revoke_all(user["uid"], RESET, EMAIL_CHANGE, VERIFY, CHALLENGE_PURPOSE, ENROL_PURPOSE)
    ended = await service.sessions.revoke_all(user["uid"])
    await personal_tokens.revoke_all(user["uid"])
    await record("password.reset", connection, user["uid"], {"sessions_ended": ended})
    await password_notice(service, connection, user, "reset")
    return user


async def change_password(service: IdentityService, connection: HTTPConnection, user: dict[str, Any],
                          session_id: str | None, password_hash: str) -> int:
    """Set the new password; every other session and its refresh tokens end, and pending reset
    and email-change links stop working. How many sessions ended."""
    await users.update(user["uid"], password_hash=password_hash, password_changed_at=datetime.now(timezone.utc))
    await onetime.revoke_all(user["uid"], RESET, EMAIL_CHANGE)
    ended = await service.sessions.revoke_all(user["uid"], except_uid=session_id)
    if session_id is not None:
        await service.sessions.reauthenticated(session_id)
    await record("password.changed" if user["password_hash"] else "password.set", connection, user["uid"],
                 {"sessions_ended": ended})
    await password_notice(service, connection, user, "changed")
    return ended


async def recently_authenticated(service: IdentityService, session_id: str | None) -> bool:
    """Whether the session signed in (or proved it is its member again) within ``REAUTH_WINDOW``."""
    session = await service.sessions.by_uid(session_id) if session_id else None
    return session is not None and datetime.now(timezone.utc) - session.authenticated_at <= REAUTH_WINDOW


# Changing the address ------------------------------------------------------------------------


async def request_email_change(service: IdentityService, connection: HTTPConnection, user: dict[str, Any],
                               new_email: str) -> None:
    """A confirmation link to the new address, unless another account has it (then nothing:
    the caller is not told whose address it is)."""
    if await users.by_email(new_email) is not None:
        await record("email.change_refused", connection, user["uid"], {"reason": "address_taken"})
        return
    token = await onetime.issue(EMAIL_CHANGE, EMAIL_CHANGE_LIFETIME, user_id=user["uid"],
                                data={"email": new_email, "old": user["email"]})
    context = {"confirm_url": link(service, CONFIRM_EMAIL_PAGE, token),
               "expires_minutes": int(EMAIL_CHANGE_LIFETIME.total_seconds() // 60)}
    await _send(service, "auth.confirm_email_change", user, context, address=new_email)
    await record("email.change_requested", connection, user["uid"], {"new": new_email})


async def confirm_email_change(service: IdentityService, connection: HTTPConnection,
                               token: str) -> tuple[EmailChange, str | None]:
    """Use a confirmation link: the new address replaces the old one, verified, and the old one
    is told (``email_changed``). Pending reset and verification links (sent to the old
    address) stop working. Also answers the new address."""
    redeemed = await onetime.redeem(EMAIL_CHANGE, token)
    user = await _holder(redeemed)
    if user is None or redeemed is None or user["email"] != redeemed.data.get("old"):
        return "invalid", None
    new_email = str(redeemed.data["email"])
    if await users.by_email(new_email) is not None:
        return "taken", new_email
    try:
        await users.update(user["uid"], email=new_email, email_verified=True)
    except Exception:  # taken between the check and the update
        if await users.by_email(new_email) is not None:
            return "taken", new_email
        raise
    await onetime.revoke_all(user["uid"], RESET, VERIFY, EMAIL_CHANGE)
    await record("email.changed", connection, user["uid"], {"old": user["email"], "new": new_email})
    if user["email"]:
        await _send(service, "email.email_changed", user, {"new_address": new_email, **_security(service, connection)})
    return "changed", new_email


# Housekeeping -----------------------------------------------------------------------------------


async def forget_unverified(now: datetime) -> int:
    """Delete registrations whose address was never verified within ``UNVERIFIED_RETENTION``:
    they never signed in (password sign-in needs a verified address), and someone who
    registered an address that is not theirs should not keep it from its owner. How many."""
    rows = await User.select(User.uid).where(
        (User.email_verified == False) & User.password_hash.is_not_null() & User.last_login.is_null()  # noqa: E712
        & (User.created_at < now - UNVERIFIED_RETENTION)
    )
    candidates = [row["uid"] for row in rows]
    if not candidates:
        return 0
    linked = {row["user_id"] for row in await LinkedIdentity.select(LinkedIdentity.user_id).where(
        LinkedIdentity.user_id.is_in(candidates))}
    doomed = [uid for uid in candidates if uid not in linked]
    if doomed:
        await OneTimeToken.delete().where(OneTimeToken.user_id.is_in(doomed))
        await User.delete().where(User.uid.is_in(doomed))
    return len(doomed)


async def _holder(redeemed: onetime.Redeemed | None) -> dict[str, Any] | None:
    """The active account a one-time token was issued for."""
    if redeemed is None or redeemed.user_id is None:
        return None
    user = await users.by_uid(redeemed.user_id)
    return user if user is not None and user["status"] == "active" else None
