"""Permission checks and role grants.

A decision: the plugin's resource policy may settle it (``True``/``False``); otherwise the
caller's roles do: ``guest`` for everyone, ``member`` once signed in, the roles granted
globally, and those granted on the resource. ``admin`` holds every permission. A role listed in
``auth_require_2fa_roles`` counts only while its holder has 2FA on.

Costs: the role -> permissions table is rebuilt at most every ``RELOAD_SECONDS`` (admins'
changes made in another process take that long to apply); a user's global roles are kept for
``GRANTS_SECONDS`` per process (grants and revocations made here apply at once); decisions are
remembered for the rest of the request.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from coderic_sdk import CurrentUser, Forbidden, NotFound, Problem, Resource, Unauthorized
from coderic_sdk.permissions import ADMIN, GUEST, MEMBER
from starlette.requests import HTTPConnection

from ..identity.audit import record
from ..identity.tables import User
from .registry import PermissionRegistry, RoleInfo
from .tables import CustomRole, RoleGrant, RolePermission

if TYPE_CHECKING:
    from ..kernel import Kernel

RELOAD_SECONDS = 10.0
GRANTS_SECONDS = 10.0
Decisions = dict[tuple[str | None, str, str | None, str | None], bool]
#: Decisions of the current request (``RouteHandler`` opens a fresh dict per request).
decisions: contextvars.ContextVar[Decisions | None] = contextvars.ContextVar("coderic_decisions", default=None)


class PermissionService:
    def __init__(self, kernel: Kernel, registry: PermissionRegistry) -> None:
        self.kernel = kernel
        self.registry = registry
        self.require_2fa = frozenset(kernel.config.kernel.auth_require_2fa_roles)
        self._matrix: dict[str, frozenset[str]] = {}
        self._custom: dict[str, RoleInfo] = {}
        self._loaded_at = float("-inf")
        self._global: dict[str, tuple[float, frozenset[str]]] = {}
        self._held: dict[frozenset[str], frozenset[str]] = {}  # a set of roles -> every permission they hold
        self._guest = frozenset({GUEST})

    # --- the role table -----------------------------------------------------------------------

    async def matrix(self) -> dict[str, frozenset[str]]:
        if time.monotonic() - self._loaded_at >= RELOAD_SECONDS:
            await self.reload()
        return self._matrix

    async def reload(self) -> None:
        matrix = self.registry.defaults()
        custom = {}
        for row in await CustomRole.select():
            custom[row["name"]] = RoleInfo(row["name"], row["description"], row["scoped"], "custom")
            matrix.setdefault(row["name"], set())
        for row in await RolePermission.select():
            if row["role"] in matrix and row["permission"] in self.registry.permissions:
                (matrix[row["role"]].add if row["allowed"] else matrix[row["role"]].discard)(row["permission"])
        self._matrix = {role: frozenset(permissions) for role, permissions in matrix.items()}
        self._custom = custom
        self._held = {}
        self._loaded_at = time.monotonic()

    async def roles(self) -> dict[str, RoleInfo]:
        await self.matrix()
        return {**self.registry.roles, **self._custom}

    # --- whose roles ---------------------------------------------------------------------------

    async def global_roles(self, user_id: str) -> frozenset[str]:
        cached = self._global.get(user_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        rows = await RoleGrant.select(RoleGrant.role).where(
            (RoleGrant.user_id == user_id) & RoleGrant.revoked_at.is_null() & RoleGrant.resource_type.is_null()
        )
        roles = {GUEST, MEMBER, *(row["role"] for row in rows)}
        if roles & self.require_2fa:
            user = await User.select(User.totp_enabled_at).where(User.uid == user_id).first()
            if user is None or user["totp_enabled_at"] is None:
                roles -= self.require_2fa
        result = frozenset(roles)
        if len(self._global) > 50_000:
            self._global.clear()
        self._global[user_id] = (now + GRANTS_SECONDS, result)
        return result

    async def granted_roles(self, user_id: str) -> list[str]:
        """The roles granted to the user globally that count now (``guest`` and ``member`` aside)."""
        return sorted(await self.global_roles(user_id) - {GUEST, MEMBER})

    async def scoped_roles(self, user_id: str, resource: Resource) -> set[str]:
        rows = await RoleGrant.select(RoleGrant.role).where(
            (RoleGrant.user_id == user_id) & RoleGrant.revoked_at.is_null()
            & (RoleGrant.resource_type == resource.type) & (RoleGrant.resource_id == resource.id)
        )
        return {row["role"] for row in rows} - (self.require_2fa if await self._lacks_2fa(user_id) else set())

    async def _lacks_2fa(self, user_id: str) -> bool:
        if not self.require_2fa:
            return False
        user = await User.select(User.totp_enabled_at).where(User.uid == user_id).first()
        return user is None or user["totp_enabled_at"] is None

    async def roles_of(self, user: CurrentUser | None, resource: Resource | None = None) -> set[str]:
        if user is None:
            return {GUEST}
        roles = set(await self.global_roles(user.id))
        if resource is not None:
            roles |= await self.scoped_roles(user.id, resource)
        return roles

    # --- decisions -----------------------------------------------------------------------------

    async def allowed(self, user: CurrentUser | None, permission: str, resource: Resource | None = None) -> bool:
        if permission not in self.registry.permissions:
            raise ValueError(f"permission {permission!r} is not registered by any plugin")
        if resource is None:  # the hot path: roles and the role table are usually cached
            now = time.monotonic()
            if now - self._loaded_at < RELOAD_SECONDS:
                if user is None:
                    return permission in self._holds(self._guest)
                cached = self._global.get(user.id)
                if cached is not None and cached[0] > now:
                    return ADMIN in cached[1] or permission in self._holds(cached[1])
        cache = decisions.get()
        key = (user.id if user else None, permission, resource.type if resource else None, resource.id if resource else None)
        if cache is not None and key in cache:
            return cache[key]
        verdict = await self._decide(user, permission, resource)
        if cache is not None:
            cache[key] = verdict
        return verdict

    def _holds(self, roles: frozenset[str]) -> frozenset[str]:
        held = self._held.get(roles)
        if held is None:
            held = self._held[roles] = frozenset().union(*(self._matrix.get(role, ()) for role in roles))
        return held

    async def _decide(self, user: CurrentUser | None, permission: str, resource: Resource | None) -> bool:
        if resource is not None:
            policy = self.registry.policies.get(resource.type)
            if policy is not None and policy.decide is not None:
                verdict = await policy.decide(user, permission, resource)
                if verdict is not None:
                    return bool(verdict)
        roles = await self.roles_of(user, resource)
        if ADMIN in roles:
            return True
        await self.matrix()
        return permission in self._holds(frozenset(roles))

    async def require(self, user: CurrentUser | None, permission: str, resource: Resource | None = None,
                      *, hide: bool = False) -> None:
        if await self.allowed(user, permission, resource):
            return
        if user is None:
            raise Unauthorized("Sign in to do this.")
        if resource is not None and (hide or not await self._visible(user, resource)):
            raise NotFound()
        raise Forbidden(f"You may not do this ({permission}).")

    async def _visible(self, user: CurrentUser | None, resource: Resource) -> bool:
        """Whether denying may say so (403) rather than pretend the resource does not exist (404)."""
        policy = self.registry.policies.get(resource.type)
        if policy is None or policy.visible is None:
            return False
        return bool(await policy.visible(user, resource))

    async def filter(self, user: CurrentUser | None, permission: str, resources: Iterable[Resource]) -> list[Resource]:
        return [resource for resource in resources if await self.allowed(user, permission, resource)]

    # --- grants --------------------------------------------------------------------------------

    async def grant(self, user_id: str, role: str, resource: Resource | None = None, *,
                    by: str | None = None, reason: str = "", connection: HTTPConnection | None = None) -> None:
        """``connection``: the request that asked, for the audit trail."""
        info = (await self.roles()).get(role)
        if info is None:
            raise Problem(422, f"There is no role {role!r}.")
        if info.scoped and resource is None:
            raise Problem(422, f"The role {role!r} is only granted on a resource.")
        if role in (GUEST, MEMBER):
            raise Problem(422, f"Everyone has the role {role!r}; it is not granted.")
        if not await User.exists().where(User.uid == user_id):
            raise NotFound(f"User {user_id} does not exist.")
        held = RoleGrant.select(RoleGrant.id).where(*self._grant_filter(user_id, role, resource))
        if await held.first() is not None:
            return
        await RoleGrant.insert(RoleGrant(
            user_id=user_id, role=role, resource_type=resource.type if resource else None,
            resource_id=resource.id if resource else None, granted_by=by, reason=reason,
        ))
        self._global.pop(user_id, None)
        await record("role.granted", connection, user_id, {"role": role, "resource": _shown(resource), "by": by, "reason": reason})

    async def revoke(self, user_id: str, role: str, resource: Resource | None = None, *,
                     by: str | None = None, reason: str = "", connection: HTTPConnection | None = None) -> bool:
        revoked = await RoleGrant.update({
            RoleGrant.revoked_at: datetime.now(timezone.utc), RoleGrant.revoked_by: by, RoleGrant.revoke_reason: reason,
        }).where(*self._grant_filter(user_id, role, resource)).returning(RoleGrant.id)
        self._global.pop(user_id, None)
        if revoked:
            await record("role.revoked", connection, user_id, {"role": role, "resource": _shown(resource), "by": by, "reason": reason})
        return bool(revoked)

    @staticmethod
    def _grant_filter(user_id: str, role: str, resource: Resource | None) -> list[Any]:
        where = [RoleGrant.user_id == user_id, RoleGrant.role == role, RoleGrant.revoked_at.is_null()]
        if resource is None:
            where.append(RoleGrant.resource_type.is_null())
        else:
            where += [RoleGrant.resource_type == resource.type, RoleGrant.resource_id == resource.id]
        return where

    async def holders(self, role: str, resource: Resource) -> list[str]:
        rows = await RoleGrant.select(RoleGrant.user_id).where(*self._grant_filter_any_user(role, resource)).order_by(
            RoleGrant.created_at
        )
        return [row["user_id"] for row in rows]

    @staticmethod
    def _grant_filter_any_user(role: str, resource: Resource) -> list[Any]:
        return [RoleGrant.role == role, RoleGrant.revoked_at.is_null(),
                RoleGrant.resource_type == resource.type, RoleGrant.resource_id == resource.id]

    def forget(self, user_id: str | None = None) -> None:
        """Drop cached roles (of one user, or all and the role table)."""
        if user_id is None:
            self._global.clear()
            self._loaded_at = float("-inf")
        else:
            self._global.pop(user_id, None)


def _shown(resource: Resource | None) -> str | None:
    return None if resource is None else f"{resource.type}:{resource.id}"


class PluginPermissions:
    """``plugin.permissions``: checks for anything; grants of the plugin's own roles (and of the
    scoped built-in ``project_owner`` on the plugin's own resources) only."""

    def __init__(self, service: PermissionService, plugin: str, builtin: bool) -> None:
        self.service = service
        self.plugin = plugin
        self.builtin = builtin

    async def allowed(self, user: CurrentUser | None, permission: str, resource: Resource | None = None) -> bool:
        return await self.service.allowed(user, permission, resource)

    async def require(self, user: CurrentUser | None, permission: str, resource: Resource | None = None,
                      *, hide: bool = False) -> None:
        await self.service.require(user, permission, resource, hide=hide)

    async def filter(self, user: CurrentUser | None, permission: str, resources: Iterable[Resource]) -> list[Resource]:
        return await self.service.filter(user, permission, resources)

    def _may_grant(self, role: str, resource: Resource | None) -> None:
        own_role = role.startswith(f"{self.plugin}.")
        own_scoped = role == "project_owner" and resource is not None and resource.type.startswith(f"{self.plugin}.")
        if not (self.builtin or own_role or own_scoped):
            raise PermissionError(f"plugin {self.plugin!r} may not grant or revoke {role!r}")

    async def grant(self, user_id: str, role: str, resource: Resource | None = None, *,
                    by: str | None = None, reason: str = "") -> None:
        self._may_grant(role, resource)
        await self.service.grant(user_id, role, resource, by=by, reason=reason)

    async def revoke(self, user_id: str, role: str, resource: Resource | None = None, *,
                     by: str | None = None, reason: str = "") -> bool:
        self._may_grant(role, resource)
        return await self.service.revoke(user_id, role, resource, by=by, reason=reason)

    async def holders(self, role: str, resource: Resource) -> list[str]:
        return await self.service.holders(role, resource)
