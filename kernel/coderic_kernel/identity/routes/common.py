"""What the identity routes share: the service, the caller, the response schemas."""

from __future__ import annotations

from typing import Any, Literal

from coderic_sdk import CurrentUser, Forbidden, RequestContext, Schema
from pydantic import Field

from ..service import IdentityService, identity_for
from ..users import UserOut

#: Documented on routes that need a signed-in user.
NEEDS_USER: dict[int, Any] = {401: "No user is signed in, or the credentials are invalid or expired."}


def service_of(ctx: RequestContext[Any, Any, Any]) -> IdentityService:
    return identity_for(ctx.plugin.kernel)  # type: ignore[arg-type]  # the kernel's own plugin


def interactive_user(ctx: RequestContext[Any, Any, Any]) -> CurrentUser:
    """The caller, who must have signed in themselves (session or access token): personal
    tokens never manage identity, so a leaked one cannot mint more or change a password."""
    user = ctx.require_user()
    if user.method == "personal_token":
        raise Forbidden("Personal access tokens cannot manage sign-in, sessions or tokens.")
    return user


class TokensOut(Schema):
    access_token: str = Field(description="A JWT (`typ` `at+jwt`), sent as `Authorization: Bearer <token>`.")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="Seconds the access token is valid for.")
    refresh_token: str = Field(description="Single-use: each refresh returns a new one. Keep it secret.")


class SignedInOut(Schema):
    """The answer of a successful sign-in step."""

    status: Literal["signed_in"]
    user: UserOut
    session_id: str
    csrf_token: str | None = Field(None, description="Session mode: echo it in `X-CSRF-Token` on unsafe requests.")
    access_token: str | None = Field(None, description="Token mode: the access token.")
    token_type: Literal["Bearer"] | None = None
    expires_in: int | None = None
    refresh_token: str | None = Field(None, description="Token mode: the refresh token.")


class ChallengeOut(Schema):
    """The first factor was right; a second factor is due."""

    status: Literal["two_factor_required"]
    challenge: str = Field(description="Send it with the code to `POST /api/v1/auth/2fa/verify`.")
    expires_in: int
    methods: list[str]


class EnrolmentOut(Schema):
    """The first factor was right, but the platform requires 2FA and the account has none yet."""

    status: Literal["two_factor_enrolment_required"]
    challenge: str = Field(
        description="Send it to `POST /api/v1/auth/2fa/totp/setup`, then with a code to `/totp/enable`, which signs in."
    )
    expires_in: int
    methods: list[str]


SIGN_IN_RESPONSES: dict[int, Any] = {200: SignedInOut | ChallengeOut | EnrolmentOut}
