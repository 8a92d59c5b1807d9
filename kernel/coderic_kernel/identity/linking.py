"""Which account an external identity (a GitHub account, an OpenID Connect ``sub``) signs in to.

- An identity already linked signs in to its account.
- A new identity joins an existing account only when both sides have the email verified:
  the provider says so (``email_verified``, GitHub's verified primary address) and the
  account proved it. An unverified email never links: whoever controls a provider account
  could otherwise claim any address. Operators can turn email linking off per provider.
- Otherwise a new account is made, filled from the provider's profile (name, bio,
  location, avatar). It gets the email only when the provider verified it and no account
  has it yet.
- While signed in, a member links an identity explicitly; one already linked to another
  account is refused, as is a second account of the same provider.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from coderic_sdk import Problem

from . import users
from .oauth import GITHUB, ExternalProfile, Provider, SignInFailed
from .tables import LinkedIdentity, User

PROFILE_FIELDS = ("name", "bio", "location", "avatar_url")


def identity_key(provider: str, subject: str) -> str:
    return f"{provider}:{subject}"


async def identities_of(user_id: str) -> list[dict[str, Any]]:
    return await LinkedIdentity.select().where(LinkedIdentity.user_id == user_id).order_by(  # type: ignore[no-any-return]
        LinkedIdentity.created_at
    )


async def sign_in_account(profile: ExternalProfile, provider: Provider) -> tuple[dict[str, Any], str]:
    """The account the identity signs in to, and how it was found: ``identity`` (linked
    before), ``email`` (linked now through a verified email) or ``created``."""
    key = identity_key(profile.provider, profile.subject)
    linked = await LinkedIdentity.select(LinkedIdentity.user_id).where(LinkedIdentity.key == key).first()
    if linked is not None:
        await _touch(key, profile)
        user = await users.by_uid(linked["user_id"])
        if user is None:
            raise SignInFailed("account_missing", f"identity {key} points at no account")
        return user, "identity"
    if profile.github_id is not None:  # an account that has the GitHub id but no identity row yet (imported)
        owner = await User.select(User.uid).where(User.github_id == profile.github_id).first()
        if owner is not None:
            await link(profile, owner["uid"], fill=True)
            user = await users.by_uid(owner["uid"])
            assert user is not None
            return user, "identity"
    email = _normalised(profile.email) if profile.email_verified else None
    if email is not None and provider.link_by_email:
        existing = await users.by_email(email)
        if existing is not None and existing["email_verified"] and existing["status"] == "active":
            await link(profile, existing["uid"], fill=True)
            return existing, "email"
    if email is not None and await users.by_email(email) is not None:
        email = None  # taken by an account that did not prove it, or that cannot link: not given to a second one
    values = {field: getattr(profile, field) for field in PROFILE_FIELDS}
    values["name"] = profile.name or profile.login
    created = await users.create(email=email, email_verified=email is not None, github_id=profile.github_id, **values)
    await _insert_identity(profile, created["uid"])
    return created, "created"


async def link(profile: ExternalProfile, user_id: str, *, fill: bool = False, refresh: bool = False) -> None:
    """Link the identity to the account (already linked to it: nothing to add). ``fill``
    copies the provider's profile into empty fields; ``refresh`` overwrites them with it."""
    key = identity_key(profile.provider, profile.subject)
    linked = await LinkedIdentity.select(LinkedIdentity.user_id).where(LinkedIdentity.key == key).first()
    if linked is not None and linked["user_id"] != user_id:
        raise SignInFailed("identity_in_use", f"{key} belongs to another account")
    if linked is None:
        other = await LinkedIdentity.select(LinkedIdentity.subject).where(
            (LinkedIdentity.user_id == user_id) & (LinkedIdentity.provider == profile.provider)
        ).first()
        if other is not None:
            raise SignInFailed("provider_already_linked", f"the account has another {profile.provider} identity")
        await _insert_identity(profile, user_id)
    else:
        await _touch(key, profile)
    user = await users.by_uid(user_id)
    assert user is not None
    changes: dict[str, Any] = {}
    if profile.github_id is not None and user["github_id"] != profile.github_id:
        changes["github_id"] = profile.github_id
    for field in PROFILE_FIELDS:
        value = profile.name or profile.login if field == "name" else getattr(profile, field)
        if value and (refresh or (fill and not user[field])):
            changes[field] = value
    if changes:
        await users.update(user_id, **changes)


async def unlink(user_id: str, provider: str) -> bool:
    """Remove the account's identity at ``provider``; 409 when it is the last way to sign in.
    ``False`` when there was none."""
    identities = await identities_of(user_id)
    chosen = [row for row in identities if row["provider"] == provider]
    if not chosen:
        return False
    user = await users.by_uid(user_id)
    has_password = user is not None and user["password_hash"] is not None
    if not has_password and len(identities) == len(chosen):
        raise Problem(409, f"{provider} is your only way to sign in: set a password or link another account first.")
    await LinkedIdentity.delete().where((LinkedIdentity.user_id == user_id) & (LinkedIdentity.provider == provider))
    if provider == GITHUB:
        await users.update(user_id, github_id=None)
    return True


async def _insert_identity(profile: ExternalProfile, user_id: str) -> None:
    now = datetime.now(timezone.utc)
    await LinkedIdentity.insert(LinkedIdentity(
        key=identity_key(profile.provider, profile.subject), user_id=user_id, provider=profile.provider,
        subject=profile.subject, email=_normalised(profile.email), email_verified=profile.email_verified,
        created_at=now, last_used_at=now,
    ))


async def _touch(key: str, profile: ExternalProfile) -> None:
    await LinkedIdentity.update({
        LinkedIdentity.last_used_at: datetime.now(timezone.utc), LinkedIdentity.email: _normalised(profile.email),
        LinkedIdentity.email_verified: profile.email_verified,
    }).where(LinkedIdentity.key == key)


def _normalised(email: str | None) -> str | None:
    if email is None:
        return None
    try:
        return users.normalised_email(email)
    except Problem:
        return None

