"""``GET /api/v1/me/roles``: the roles I hold, and the history of their grants and revocations
(who, when, why): a member can always see what was decided about them."""

from __future__ import annotations

from typing import Any

from coderic_sdk import RequestContext, Route, Schema

from ...admin.routes import GrantOut
from ...permissions.tables import RoleGrant
from .common import NEEDS_USER


class MyRoles(Schema):
    roles: list[str]
    grants: list[GrantOut]


async def my_roles(ctx: RequestContext[None, None, Any]) -> MyRoles:
    user = ctx.require_user()
    rows = await RoleGrant.select().where(RoleGrant.user_id == user.id).order_by(RoleGrant.id, ascending=False)
    held = await ctx.plugin.kernel.permissions.granted_roles(user.id)  # type: ignore[attr-defined]
    return MyRoles(roles=held, grants=[GrantOut(**{key: row[key] for key in GrantOut.model_fields}) for row in rows])


def routes() -> list[Route]:
    return [
        Route("GET", "/roles", my_roles, name="my_roles", response=MyRoles, prefix="me", tags=("me",),
              authenticated=True, responses=NEEDS_USER, summary="My roles",
              description="Roles held globally now, and every grant and revocation, with who made it and why."),
    ]
