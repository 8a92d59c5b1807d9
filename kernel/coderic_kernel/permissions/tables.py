"""Role tables, part of the kernel's Piccolo app: custom roles, admins' changes to which role
holds which permission, and grants of roles to users (kept after revocation: the history of
who granted what, when and why)."""

from __future__ import annotations

from piccolo.columns import Boolean, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class CustomRole(Table, tablename="kernel_role"):
    """A role an admin created (built-in and plugin roles live in code)."""

    name = Varchar(length=64, unique=True)
    description = Text(default="")
    scoped = Boolean(default=False)
    created_by = Varchar(length=32, null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class RolePermission(Table, tablename="kernel_role_permission"):
    """An admin's decision that ``role`` holds (or does not hold) ``permission``, replacing the default."""

    key = Varchar(length=200, unique=True)  # "<role> <permission>"
    role = Varchar(length=64, index=True)
    permission = Varchar(length=120)
    allowed = Boolean()
    changed_by = Varchar(length=32, null=True, default=None)
    changed_at = Timestamptz(default=TimestamptzNow())


class RoleGrant(Table, tablename="kernel_role_grant"):
    """A role held by a user, globally (no resource) or on one resource."""

    user_id = Varchar(length=32, index=True)
    role = Varchar(length=64, index=True)
    resource_type = Varchar(length=80, null=True, default=None)
    resource_id = Varchar(length=120, null=True, default=None, index=True)
    granted_by = Varchar(length=32, null=True, default=None)
    reason = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None, index=True)
    revoked_by = Varchar(length=32, null=True, default=None)
    revoke_reason = Text(default="")


TABLES = [CustomRole, RolePermission, RoleGrant]
