"""The admin API, ``/api/v1/admin/...``: accounts, roles and their permissions, the audit
trail. Every route needs a kernel permission (admins hold all of them; admins count as
admins only while their 2FA is on, see ``auth_require_2fa_roles``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from coderic_sdk import Conflict, FieldError, NotFound, Problem, RequestContext, Resource, Route, Schema
from pydantic import Field

from ..identity import personal_tokens
from ..identity.audit import record
from ..identity.service import identity_for
from ..identity.tables import AuthEvent, User
from ..permissions.tables import CustomRole, RoleGrant, RolePermission
from .permissions import AUDIT_VIEW, FREELANCERS_VERIFY, ROLES_GRANT, ROLES_MANAGE, USERS_MANAGE, USERS_VIEW

USER_ID = r"^[0-9a-f]{32}$"
ROLE_NAME = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$"


# --- schemas -------------------------------------------------------------------------------


class GrantOut(Schema):
    id: int
    role: str
    resource_type: str | None
    resource_id: str | None
    granted_by: str | None
    reason: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    revoke_reason: str


class AdminUserOut(Schema):
    id: str
    email: str | None
    email_verified: bool
    name: str
    status: str = Field(description="`active`, `disabled` or `deleted`.")
    two_factor_enabled: bool
    roles: list[str] = Field(description="Roles held globally now.")
    created_at: datetime
    last_login: datetime | None


class AdminUserList(Schema):
    users: list[AdminUserOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; `null`: no more.")


class AdminUserDetail(AdminUserOut):
    grants: list[GrantOut] = Field(description="Every grant, current and revoked, newest first.")


class UsersQuery(Schema):
    q: str | None = Field(None, max_length=200, description="Part of the email or name.")
    status: str | None = Field(None, pattern=r"^(active|disabled|deleted)$")
    role: str | None = Field(None, pattern=ROLE_NAME, description="Only holders of this role (globally).")
    cursor: str | None = Field(None, pattern=r"^\d+$")
    limit: int = Field(50, ge=1, le=200)


class UserPath(Schema):
    user_id: str = Field(pattern=USER_ID)


class ReasonIn(Schema):
    reason: str = Field(min_length=1, max_length=1000, description="Why: recorded in the audit trail.")


class GrantIn(Schema):
    role: str = Field(pattern=ROLE_NAME)
    resource_type: str | None = Field(None, max_length=80, description="With `resource_id`: the grant is on that resource only.")
    resource_id: str | None = Field(None, max_length=120)
    reason: str = Field(min_length=1, max_length=1000)


class RoleOut(Schema):
    name: str
    description: str
    scoped: bool = Field(description="Granted on a resource only.")
    origin: str = Field(description="`builtin`, the plugin that brings it, or `custom`.")
    permissions: list[str] = Field(description="What it holds now (defaults with admins' changes).")


class RoleList(Schema):
    roles: list[RoleOut]


class RoleIn(Schema):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,40}$", description="Lower case; plugin roles' dotted names are taken.")
    description: str = Field("", max_length=500)
    scoped: bool = False


class RolePermissionPath(Schema):
    role: str = Field(pattern=ROLE_NAME)
    permission: str = Field(max_length=120)


class AllowedIn(Schema):
    allowed: bool = Field(description="Whether the role holds the permission, whatever its default.")


class PermissionOut(Schema):
    name: str
    description: str
    plugin: str
    default_roles: list[str]


class PermissionList(Schema):
    permissions: list[PermissionOut]


class AuditQuery(Schema):
    user_id: str | None = Field(None, pattern=USER_ID)
    kind: str | None = Field(None, max_length=40, description="`login.failed`, or a prefix ending in `.`: `role.`.")
    cursor: str | None = Field(None, pattern=r"^\d+$")
    limit: int = Field(100, ge=1, le=500)


class AuditEntry(Schema):
    id: int
    kind: str
    user_id: str | None
    at: datetime
    ip: str
    user_agent: str
    request_id: str
    detail: dict[str, Any]


class AuditList(Schema):
    events: list[AuditEntry]
    next_cursor: str | None


# --- helpers -------------------------------------------------------------------------------


def _grant_out(row: dict[str, Any]) -> GrantOut:
    return GrantOut(**{key: row[key] for key in GrantOut.model_fields})


async def _user(user_id: str) -> dict[str, Any]:
    row = await User.select().where(User.uid == user_id).first()
    if row is None:
        raise NotFound(f"User {user_id} does not exist.")
    return row  # type: ignore[no-any-return]


async def _out(row: dict[str, Any], ctx: RequestContext[Any, Any, Any]) -> dict[str, Any]:
    roles = await ctx.plugin.kernel.permissions.granted_roles(row["uid"])  # type: ignore[attr-defined]
    return {"id": row["uid"], "email": row["email"], "email_verified": row["email_verified"], "name": row["name"],
            "status": row["status"], "two_factor_enabled": row["totp_enabled_at"] is not None, "roles": roles,
            "created_at": row["created_at"], "last_login": row["last_login"]}


def _service(ctx: RequestContext[Any, Any, Any]) -> Any:
    return ctx.plugin.kernel.permissions  # type: ignore[attr-defined]  # the kernel's own plugin


# --- accounts ------------------------------------------------------------------------------


async def list_users(ctx: RequestContext[None, UsersQuery, Any]) -> AdminUserList:
    query = ctx.query
    where = []
    if query.q:
        pattern = "%" + query.q.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        if ctx.plugin.kernel.database.dialect == "postgresql":
            where.append(User.email.ilike(pattern) | User.name.ilike(pattern))
        else:  # SQLite's LIKE already ignores ASCII case (and it has no ILIKE)
            where.append(User.email.like(pattern) | User.name.like(pattern))
    if query.status:
        where.append(User.status == query.status)
    if query.role:
        holders = RoleGrant.select(RoleGrant.user_id).where(
            (RoleGrant.role == query.role) & RoleGrant.revoked_at.is_null() & RoleGrant.resource_type.is_null()
        )
        where.append(User.uid.is_in([row["user_id"] for row in await holders] or [""]))
    if query.cursor:
        where.append(User.id < int(query.cursor))
    select = User.select().order_by(User.id, ascending=False).limit(query.limit + 1)
    rows = await (select.where(*where) if where else select)
    page = rows[: query.limit]
    users = [AdminUserOut(**await _out(row, ctx)) for row in page]
    return AdminUserList(users=users, next_cursor=str(page[-1]["id"]) if len(rows) > query.limit else None)


async def show_user(ctx: RequestContext[None, None, UserPath]) -> AdminUserDetail:
    row = await _user(ctx.path.user_id)
    grants = await RoleGrant.select().where(RoleGrant.user_id == row["uid"]).order_by(RoleGrant.id, ascending=False)
    return AdminUserDetail(**await _out(row, ctx), grants=[_grant_out(g) for g in grants])


async def disable_user(ctx: RequestContext[ReasonIn, None, UserPath]) -> AdminUserDetail:
    admin = ctx.require_user()
    row = await _user(ctx.path.user_id)
    if row["uid"] == admin.id:
        raise Conflict("You cannot disable your own account.")
    if row["status"] == "deleted":
        raise Conflict("The account is deleted.")
    await User.update({User.status: "disabled", User.updated_at: datetime.now(timezone.utc)}).where(User.uid == row["uid"])
    service = identity_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    await service.sessions.revoke_all(row["uid"])
    await personal_tokens.revoke_all(row["uid"])
    await record("account.disabled", ctx.request, row["uid"], {"by": admin.id, "reason": ctx.body.reason})
    return await show_user(ctx)  # type: ignore[arg-type]


async def enable_user(ctx: RequestContext[ReasonIn, None, UserPath]) -> AdminUserDetail:
    admin = ctx.require_user()
    row = await _user(ctx.path.user_id)
    if row["status"] == "deleted":
        raise Conflict("The account is deleted; it cannot be enabled.")
    await User.update({User.status: "active", User.updated_at: datetime.now(timezone.utc)}).where(User.uid == row["uid"])
    await record("account.enabled", ctx.request, row["uid"], {"by": admin.id, "reason": ctx.body.reason})
    return await show_user(ctx)  # type: ignore[arg-type]


# --- role grants ---------------------------------------------------------------------------


def _resource(body: GrantIn) -> Resource | None:
    if (body.resource_type is None) != (body.resource_id is None):
        missing = "body.resource_id" if body.resource_id is None else "body.resource_type"
        raise Problem(422, "A resource needs both its type and its id.",
                      errors=[FieldError(missing, "required with the other resource field", "missing")])
    return None if body.resource_type is None else Resource(body.resource_type, body.resource_id)  # type: ignore[arg-type]


async def grant_role(ctx: RequestContext[GrantIn, None, UserPath]) -> AdminUserDetail:
    await _user(ctx.path.user_id)
    await _service(ctx).grant(ctx.path.user_id, ctx.body.role, _resource(ctx.body), by=ctx.require_user().id,
                              reason=ctx.body.reason, connection=ctx.request)
    return await show_user(ctx)  # type: ignore[arg-type]


async def revoke_role(ctx: RequestContext[GrantIn, None, UserPath]) -> AdminUserDetail:
    await _user(ctx.path.user_id)
    if not await _service(ctx).revoke(ctx.path.user_id, ctx.body.role, _resource(ctx.body), by=ctx.require_user().id,
                                      reason=ctx.body.reason, connection=ctx.request):
        raise NotFound(f"The user does not hold {ctx.body.role!r} there.")
    return await show_user(ctx)  # type: ignore[arg-type]


async def verify_freelancer(ctx: RequestContext[ReasonIn, None, UserPath]) -> AdminUserDetail:
    await _user(ctx.path.user_id)
    await _service(ctx).grant(ctx.path.user_id, "freelancer", by=ctx.require_user().id, reason=ctx.body.reason,
                              connection=ctx.request)
    return await show_user(ctx)  # type: ignore[arg-type]


async def unverify_freelancer(ctx: RequestContext[ReasonIn, None, UserPath]) -> AdminUserDetail:
    await _user(ctx.path.user_id)
    if not await _service(ctx).revoke(ctx.path.user_id, "freelancer", by=ctx.require_user().id, reason=ctx.body.reason,
                                      connection=ctx.request):
        raise NotFound("The user is not a verified freelancer.")
    return await show_user(ctx)  # type: ignore[arg-type]


# --- roles and their permissions ----------------------------------------------------------


async def list_roles(ctx: RequestContext[None, None, Any]) -> RoleList:
    service = _service(ctx)
    roles = await service.roles()
    matrix = await service.matrix()
    everything = sorted(service.registry.permissions)
    return RoleList(roles=[
        RoleOut(name=info.name, description=info.description, scoped=info.scoped, origin=info.origin,
                permissions=everything if name == "admin" else sorted(matrix.get(name, ())))
        for name, info in roles.items()
    ])


async def create_role(ctx: RequestContext[RoleIn, None, Any]) -> RoleOut:
    service = _service(ctx)
    if ctx.body.name in await service.roles():
        raise Conflict(f"A role named {ctx.body.name!r} exists.")
    await CustomRole.insert(CustomRole(name=ctx.body.name, description=ctx.body.description, scoped=ctx.body.scoped,
                                       created_by=ctx.require_user().id))
    await record("role.created", ctx.request, ctx.require_user().id, {"role": ctx.body.name})
    service.forget()
    return RoleOut(name=ctx.body.name, description=ctx.body.description, scoped=ctx.body.scoped, origin="custom",
                   permissions=[])


async def _role_and_permission(ctx: RequestContext[Any, None, RolePermissionPath]) -> tuple[str, str]:
    service = _service(ctx)
    role, permission = ctx.path.role, ctx.path.permission
    if role not in await service.roles():
        raise NotFound(f"There is no role {role!r}.")
    if role == "admin":
        raise Conflict("The admin role holds every permission; that cannot change.")
    if permission not in service.registry.permissions:
        raise NotFound(f"There is no permission {permission!r}.")
    return role, permission


async def set_role_permission(ctx: RequestContext[AllowedIn, None, RolePermissionPath]) -> RoleOut:
    role, permission = await _role_and_permission(ctx)
    key = f"{role} {permission}"
    values = {RolePermission.allowed: ctx.body.allowed, RolePermission.changed_by: ctx.require_user().id,
              RolePermission.changed_at: datetime.now(timezone.utc)}
    if await RolePermission.exists().where(RolePermission.key == key):
        await RolePermission.update(values).where(RolePermission.key == key)
    else:
        await RolePermission.insert(RolePermission(key=key, role=role, permission=permission, allowed=ctx.body.allowed,
                                                   changed_by=ctx.require_user().id))
    await record("role.permission_changed", ctx.request, ctx.require_user().id,
                 {"role": role, "permission": permission, "allowed": ctx.body.allowed})
    return await _role_out(ctx, role)


async def reset_role_permission(ctx: RequestContext[None, None, RolePermissionPath]) -> RoleOut:
    role, permission = await _role_and_permission(ctx)
    await RolePermission.delete().where(RolePermission.key == f"{role} {permission}")
    await record("role.permission_reset", ctx.request, ctx.require_user().id, {"role": role, "permission": permission})
    return await _role_out(ctx, role)


async def _role_out(ctx: RequestContext[Any, Any, Any], role: str) -> RoleOut:
    service = _service(ctx)
    service.forget()
    info = (await service.roles())[role]
    matrix = await service.matrix()
    return RoleOut(name=role, description=info.description, scoped=info.scoped, origin=info.origin,
                   permissions=sorted(matrix.get(role, ())))


async def list_permissions(ctx: RequestContext[None, None, Any]) -> PermissionList:
    registry = _service(ctx).registry
    return PermissionList(permissions=[
        PermissionOut(name=name, description=p.description, plugin=registry.owners[name], default_roles=list(p.default_roles))
        for name, p in sorted(registry.permissions.items())
    ])


# --- the audit trail -----------------------------------------------------------------------


async def audit_log(ctx: RequestContext[None, AuditQuery, Any]) -> AuditList:
    query = ctx.query
    where = []
    if query.user_id:
        where.append(AuthEvent.user_id == query.user_id)
    if query.kind:
        where.append(AuthEvent.kind.like(query.kind.replace("%", "") + "%") if query.kind.endswith(".")
                     else AuthEvent.kind == query.kind)
    if query.cursor:
        where.append(AuthEvent.id < int(query.cursor))
    select = AuthEvent.select().order_by(AuthEvent.id, ascending=False).limit(query.limit + 1).output(load_json=True)
    rows = await (select.where(*where) if where else select)
    page = rows[: query.limit]
    return AuditList(events=[AuditEntry(**{key: row[key] for key in AuditEntry.model_fields}) for row in page],
                     next_cursor=str(page[-1]["id"]) if len(rows) > query.limit else None)


def routes() -> list[Route]:
    admin = {"prefix": "admin", "tags": ("admin",), "authenticated": True}
    user = {"path_params": UserPath, **admin}
    return [
        Route("GET", "/users", list_users, name="admin_list_users", query=UsersQuery, response=AdminUserList,
              permission=USERS_VIEW, summary="Accounts", description="Newest first; search by email or name.", **admin),
        Route("GET", "/users/{user_id}", show_user, name="admin_show_user", response=AdminUserDetail,
              permission=USERS_VIEW, summary="One account, with every role grant", **user),
        Route("POST", "/users/{user_id}/disable", disable_user, name="admin_disable_user", body=ReasonIn,
              response=AdminUserDetail, permission=USERS_MANAGE, summary="Disable an account",
              description="The account can no longer sign in; every session, refresh token and personal token ends.",
              **user),
        Route("POST", "/users/{user_id}/enable", enable_user, name="admin_enable_user", body=ReasonIn,
              response=AdminUserDetail, permission=USERS_MANAGE, summary="Enable an account", **user),
        Route("POST", "/users/{user_id}/roles", grant_role, name="admin_grant_role", body=GrantIn,
              response=AdminUserDetail, permission=ROLES_GRANT, summary="Grant a role",
              description="Globally, or on one resource. Recorded with who and why; the user sees it at /me/roles.",
              **user),
        Route("POST", "/users/{user_id}/roles/revoke", revoke_role, name="admin_revoke_role", body=GrantIn,
              response=AdminUserDetail, permission=ROLES_GRANT, summary="Revoke a role", **user),
        Route("POST", "/users/{user_id}/freelancer", verify_freelancer, name="admin_verify_freelancer", body=ReasonIn,
              response=AdminUserDetail, permission=FREELANCERS_VERIFY, summary="Verify a freelancer",
              description="Grants the `freelancer` role after review (moderators may); the reason is recorded.",
              **user),
        Route("POST", "/users/{user_id}/freelancer/revoke", unverify_freelancer, name="admin_unverify_freelancer",
              body=ReasonIn, response=AdminUserDetail, permission=FREELANCERS_VERIFY,
              summary="Withdraw a freelancer's verification", **user),
        Route("GET", "/roles", list_roles, name="admin_list_roles", response=RoleList, permission=ROLES_MANAGE,
              summary="Roles and what they hold", **admin),
        Route("POST", "/roles", create_role, name="admin_create_role", body=RoleIn, response=RoleOut, status_code=201,
              permission=ROLES_MANAGE, summary="Create a custom role", **admin),
        Route("PUT", "/roles/{role}/permissions/{permission}", set_role_permission, name="admin_set_role_permission",
              path_params=RolePermissionPath, body=AllowedIn, response=RoleOut, permission=ROLES_MANAGE,
              summary="Give or take a permission from a role", description="Replaces the plugin's default.", **admin),
        Route("DELETE", "/roles/{role}/permissions/{permission}", reset_role_permission,
              name="admin_reset_role_permission", path_params=RolePermissionPath, response=RoleOut,
              permission=ROLES_MANAGE, summary="Back to the plugin's default", **admin),
        Route("GET", "/permissions", list_permissions, name="admin_list_permissions", response=PermissionList,
              permission=ROLES_MANAGE, summary="Every permission of every enabled plugin", **admin),
        Route("GET", "/audit", audit_log, name="admin_audit_log", query=AuditQuery, response=AuditList,
              permission=AUDIT_VIEW, summary="The audit trail", description="Newest first.", **admin),
    ]
