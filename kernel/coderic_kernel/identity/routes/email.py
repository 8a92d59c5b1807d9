"""Proving and changing the email address: ``/api/v1/auth/verify-email...`` and ``/email/change...``."""

from __future__ import annotations

from typing import Any

from coderic_sdk import FieldError, Problem, RequestContext, Route, Schema
from pydantic import Field
from starlette.responses import Response

from .. import email_flows, users
from .common import NEEDS_USER, service_of
from .password import (
    MAX_FIELD, AcceptedOut, EmailIn, accepted, active_member, email_field, invalid_link, mail_request, prove_identity,
    throttle_mail,
)


class TokenIn(Schema):
    token: str = Field(max_length=200, description="The `token` of the link in the email.")


class EmailChangeIn(Schema):
    new_email: str = email_field("The new address.")
    password: str | None = Field(
        None, max_length=MAX_FIELD,
        description="Your password. Without it, the request must come within 10 minutes of signing in.",
    )


class EmailChangedOut(Schema):
    email: str
    email_verified: bool


async def verify_email(ctx: RequestContext[TokenIn, None, Any]) -> Response:
    if not await email_flows.verify(service_of(ctx), ctx.request, ctx.body.token):
        raise invalid_link()
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


async def resend_verification(ctx: RequestContext[EmailIn, None, Any]) -> Response:
    return await mail_request(ctx, email_flows.resend_verification)


async def change_email(ctx: RequestContext[EmailChangeIn, None, Any]) -> Response:
    _, user = await active_member(ctx)
    service = service_of(ctx)
    new_email = users.normalised_email(ctx.body.new_email, "body.new_email")
    if new_email == user["email"]:
        raise Problem(422, "That is already your address.",
                      errors=[FieldError("body.new_email", "the account's current address", "unchanged")])
    await prove_identity(ctx, service, user, ctx.body.password, "body.password")
    await throttle_mail(ctx, new_email)
    return accepted(lambda: email_flows.request_email_change(service, ctx.request, user, new_email))


async def confirm_email_change(ctx: RequestContext[TokenIn, None, Any]) -> EmailChangedOut:
    outcome, address = await email_flows.confirm_email_change(service_of(ctx), ctx.request, ctx.body.token)
    if outcome == "taken":
        raise Problem(409, "Another account has this address now; the change was not made.")
    if outcome != "changed" or address is None:
        raise invalid_link()
    return EmailChangedOut(email=address, email_verified=True)


def routes() -> list[Route]:
    auth = {"tags": ("auth",)}
    throttled = {429: "Too many attempts (see `Retry-After`).",
                 503: "The rate-limit store is unreachable: refused rather than unthrottled."}
    invalid = {404: "The link is invalid, used or expired."}
    return [
        Route("POST", "/verify-email", verify_email, name="verify_email", body=TokenIn, status_code=204,
              media_type=None, rate_limit="auth.token", summary="Verify my email address",
              description="The page at `<public_url>/verify-email?token=...` sends the link's token here. Signs no "
                          "one in.", responses={**invalid, **throttled}, **auth),
        Route("POST", "/verify-email/resend", resend_verification, name="resend_verification", body=EmailIn,
              response=AcceptedOut, status_code=202, rate_limit="auth.email", summary="Send the verification link again",
              description="Answers 202 whether or not the address has an account waiting for verification.",
              responses=throttled, **auth),
        Route("POST", "/email/change", change_email, name="change_email", body=EmailChangeIn, response=AcceptedOut,
              status_code=202, rate_limit="auth.email", authenticated=True, summary="Change my email address",
              description="Sends a confirmation link to the new address; nothing changes until it is used. Needs "
                          "your password, or a sign-in in the last 10 minutes.",
              responses={**NEEDS_USER, 403: "Confirm it is you (password or a recent sign-in), or the password is "
                                            "wrong.", 422: "The address is invalid or already yours.", **throttled},
              **auth),
        Route("POST", "/email/change/confirm", confirm_email_change, name="confirm_email_change", body=TokenIn,
              response=EmailChangedOut, rate_limit="auth.token", summary="Confirm a new email address",
              description="The page at `<public_url>/confirm-email?token=...` sends the link's token here. The old "
                          "address is told of the change.",
              responses={**invalid, 409: "Another account took the address meanwhile.", **throttled}, **auth),
    ]
