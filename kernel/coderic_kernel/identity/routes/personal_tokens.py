"""Personal access tokens: ``/api/v1/me/tokens``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coderic_sdk import FieldError, NotFound, Problem, RequestContext, Route, Schema
from coderic_sdk.auth import valid_scope
from pydantic import Field

from .. import personal_tokens
from ...web import convertors  # noqa: F401  # registers {name:hex32}
from ..audit import record
from .common import NEEDS_USER, interactive_user

MAX_TOKENS = 50


class TokenIn(Schema):
    name: str = Field(min_length=1, max_length=100, description="What the token is for, to recognise it later.")
    scopes: list[str] = Field(
        min_length=1, max_length=20,
        description="`read` (GET on any route), `write` (any method), or one plugin's: `projects:read`, `projects:write`.",
    )
    expires_in_days: int | None = Field(90, ge=1, le=366, description="Days until it stops working; `null`: never (not advised).")


class TokenOut(Schema):
    id: str
    name: str
    scopes: list[str]
    prefix: str = Field(description="The token's first characters, to tell tokens apart.")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class CreatedTokenOut(TokenOut):
    token: str = Field(description="The token itself. It is shown this once: store it now.")


class TokenList(Schema):
    tokens: list[TokenOut]


class TokenPath(Schema):
    token_id: str = Field(pattern=r"^[0-9a-f]{32}$")


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["uid"], "name": row["name"], "scopes": row["scopes"], "prefix": row["prefix"],
            "created_at": row["created_at"], "expires_at": row["expires_at"], "last_used_at": row["last_used_at"]}


async def create_token(ctx: RequestContext[TokenIn, None, Any]) -> CreatedTokenOut:
    user = interactive_user(ctx)
    bad = [FieldError(f"body.scopes.{i}", "not a scope: read, write, <plugin>:read or <plugin>:write", "value_error")
           for i, scope in enumerate(ctx.body.scopes) if not valid_scope(scope)]
    if bad:
        raise Problem(422, "The request body is invalid.", errors=bad)
    if len(await personal_tokens.listed(user.id)) >= MAX_TOKENS:
        raise Problem(409, f"You have {MAX_TOKENS} tokens already; revoke one first.")
    row, token = await personal_tokens.create(
        user.id, ctx.body.name.strip(), list(dict.fromkeys(ctx.body.scopes)),
        personal_tokens.default_expiry(ctx.body.expires_in_days),
    )
    await record("personal_token.created", ctx.request, user.id, {"token": row["uid"], "scopes": row["scopes"]})
    return CreatedTokenOut(**_out(row), token=token)


async def list_tokens(ctx: RequestContext[None, None, Any]) -> TokenList:
    user = interactive_user(ctx)
    return TokenList(tokens=[TokenOut(**_out(row)) for row in await personal_tokens.listed(user.id)])


async def revoke_token(ctx: RequestContext[None, None, TokenPath]) -> None:
    user = interactive_user(ctx)
    if not await personal_tokens.revoke(user.id, ctx.path.token_id):
        raise NotFound(f"Token {ctx.path.token_id} does not exist or is revoked.")
    await record("personal_token.revoked", ctx.request, user.id, {"token": ctx.path.token_id})


def routes() -> list[Route]:
    me = {"prefix": "me", "tags": ("me",), "authenticated": True, "responses": NEEDS_USER}
    return [
        Route("POST", "/tokens", create_token, name="create_token", body=TokenIn, response=CreatedTokenOut,
              status_code=201, summary="Create a personal access token",
              description="For scripts and bots: `Authorization: Bearer cdr_pat_...`. Shown once, stored hashed.", **me),
        Route("GET", "/tokens", list_tokens, name="list_tokens", response=TokenList, summary="My personal access tokens",
              **me),
        Route("DELETE", "/tokens/{token_id:hex32}", revoke_token, name="revoke_token", path_params=TokenPath, status_code=204,
              media_type=None, summary="Revoke a personal access token", **me),
    ]
