"""Identity tables, part of the kernel's Piccolo app (``kernel_*``).

Every secret a client holds (session cookie, refresh token, personal token, one-time link
token, recovery code) is stored as its SHA-256 only: a copy of the database signs no one in.
Users are referred to by ``uid`` (32 hex characters), the ``sub`` of their tokens.
"""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

USER_STATUSES = ("active", "disabled", "deleted")


class User(Table, tablename="kernel_user"):
    """The product owner's user, plus what identity needs."""

    uid = Varchar(length=32, unique=True)
    github_id = BigInt(null=True, default=None, unique=True)
    email = Varchar(length=320, null=True, default=None, unique=True)  # normalised: see identity/emails.py
    email_verified = Boolean(default=False)
    name = Varchar(length=200, default="")
    bio = Text(default="")
    avatar_url = Varchar(length=2048, default="")
    skills = JSON(default=[])
    location = Varchar(length=200, default="")
    timezone = Varchar(length=64, default="UTC")
    language = Varchar(length=8, null=True, default=None)
    password_hash = Text(null=True, default=None)
    password_changed_at = Timestamptz(null=True, default=None)
    status = Varchar(length=10, default="active")
    totp_secret = Text(null=True, default=None)  # encrypted (identity/crypto.py)
    totp_enabled_at = Timestamptz(null=True, default=None)
    totp_last_step = BigInt(default=0)  # the last accepted time step: a code counts once
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    last_login = Timestamptz(null=True, default=None)


class LinkedIdentity(Table, tablename="kernel_identity"):
    """An external account (GitHub, an OpenID Connect provider) that signs a user in."""

    key = Varchar(length=300, unique=True)  # "<provider>:<subject>": one account per external identity
    user_id = Varchar(length=32, index=True)
    provider = Varchar(length=40)
    subject = Varchar(length=255)
    email = Varchar(length=320, null=True, default=None)
    email_verified = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    last_used_at = Timestamptz(null=True, default=None)


class Session(Table, tablename="kernel_session"):
    """One sign-in: a browser (cookie) or a token client (refresh token family)."""

    uid = Varchar(length=32, unique=True)  # public id in the session centre; `sid` of access tokens
    token_hash = Varchar(length=64, null=True, default=None, unique=True)  # cookie sessions only
    user_id = Varchar(length=32, index=True)
    kind = Varchar(length=8, default="cookie")  # cookie | token
    method = Varchar(length=40, default="password")  # how the user signed in
    ip = Varchar(length=45, default="")
    user_agent = Varchar(length=400, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()  # absolute timeout
    authenticated_at = Timestamptz(default=TimestamptzNow())  # last password/2FA proof: "recent authentication"
    revoked_at = Timestamptz(null=True, default=None, index=True)


class RefreshToken(Table, tablename="kernel_refresh_token"):
    """Opaque refresh tokens, rotated on every use; a family is one session's chain."""

    token_hash = Varchar(length=64, unique=True)
    family = Varchar(length=32, index=True)  # the session's uid
    user_id = Varchar(length=32, index=True)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class PersonalToken(Table, tablename="kernel_personal_token"):
    """Named, scoped, expiring tokens for scripts and bots."""

    uid = Varchar(length=32, unique=True)
    user_id = Varchar(length=32, index=True)
    name = Varchar(length=100)
    scopes = JSON(default=[])
    token_hash = Varchar(length=64, unique=True)
    prefix = Varchar(length=16)  # the first characters, shown in lists to tell tokens apart
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)


class OneTimeToken(Table, tablename="kernel_auth_token"):
    """Single-use, expiring secrets: email verification, password reset, email change,
    a sign-in waiting for its second factor, OAuth state."""

    purpose = Varchar(length=20)
    token_hash = Varchar(length=64, unique=True)
    user_id = Varchar(length=32, null=True, default=None, index=True)
    data = JSON(default={})
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    attempts = Integer(default=0)


class RecoveryCode(Table, tablename="kernel_recovery_code"):
    user_id = Varchar(length=32, index=True)
    code_hash = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    used_at = Timestamptz(null=True, default=None)


class AuthEvent(Table, tablename="kernel_auth_event"):
    """The audit trail: sign-ins, failures, 2FA and credential changes, token reuse."""

    kind = Varchar(length=40, index=True)
    user_id = Varchar(length=32, null=True, default=None, index=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
    ip = Varchar(length=45, default="")
    user_agent = Varchar(length=400, default="")
    request_id = Varchar(length=64, default="")
    detail = JSON(default={})


class SigningKey(Table, tablename="kernel_signing_key"):
    """Keys that sign access tokens. The newest unretired key signs; retired keys still verify
    until ``expires_at`` (retirement plus the longest access-token lifetime)."""

    kid = Varchar(length=64, unique=True)
    algorithm = Varchar(length=10)
    private_key = Text()  # encrypted JWK (identity/crypto.py)
    public_key = JSON()
    created_at = Timestamptz(default=TimestamptzNow())
    retired_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)


TABLES = [User, LinkedIdentity, Session, RefreshToken, PersonalToken, OneTimeToken, RecoveryCode, AuthEvent, SigningKey]
