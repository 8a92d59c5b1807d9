"""Every permission, role and resource policy the enabled plugins declare, checked at boot:
names belong to their plugin, nothing is declared twice, default roles exist, and every route
names a registered permission (a typo stops boot instead of denying everyone forever)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coderic_sdk import BUILTIN_ROLES, Permission, PluginContext, ResourcePolicy, Role

from ..errors import PluginError

if TYPE_CHECKING:
    from ..plugins.hooks import PluginHooks
    from ..web.routing import MountedRoute

BUILTIN_DESCRIPTIONS = {
    "guest": "Anyone, signed in or not.",
    "member": "Every signed-in user.",
    "project_owner": "Owns one project (granted on the project).",
    "freelancer": "A freelancer verified by a moderator or an admin.",
    "mentor": "A mentor of the community.",
    "moderator": "Moderates content and verifies freelancers.",
    "admin": "Holds every permission.",
}
SCOPED_BUILTINS = frozenset({"project_owner"})


@dataclass(frozen=True)
class RoleInfo:
    name: str
    description: str
    scoped: bool
    origin: str  # "builtin", a plugin's name, or "custom"


@dataclass
class PermissionRegistry:
    permissions: dict[str, Permission] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # permission -> plugin
    roles: dict[str, RoleInfo] = field(default_factory=dict)
    policies: dict[str, ResourcePolicy] = field(default_factory=dict)

    @classmethod
    def collect(cls, hooks: PluginHooks, contexts: Sequence[PluginContext], routes: Sequence[MountedRoute]) -> PermissionRegistry:
        registry = cls()
        for name in BUILTIN_ROLES:
            registry.roles[name] = RoleInfo(name, BUILTIN_DESCRIPTIONS[name], name in SCOPED_BUILTINS, "builtin")
        for plugin in contexts:
            for role in hooks.roles(plugin):
                registry._add_role(plugin.name, role)
        for plugin in contexts:
            for permission in hooks.permissions(plugin):
                registry._add_permission(plugin.name, permission)
            for policy in hooks.resource_policies(plugin):
                registry._add_policy(plugin.name, policy)
        for mounted in routes:
            wanted = mounted.route.permission
            if wanted is not None and wanted not in registry.permissions:
                raise PluginError(mounted.plugin.name, "routes",
                                  f"route {mounted.route.name!r}: permission {wanted!r} is not registered by any plugin")
        return registry

    def _add_role(self, plugin: str, role: Role) -> None:
        if not role.name.startswith(f"{plugin}.") or role.name == f"{plugin}.":
            raise PluginError(plugin, "register", f"role {role.name!r} must be named '{plugin}.<role>'")
        if role.name in self.roles:
            raise PluginError(plugin, "register", f"role {role.name!r} is declared twice")
        self.roles[role.name] = RoleInfo(role.name, role.description, role.scoped, plugin)

    def _add_permission(self, plugin: str, permission: Permission) -> None:
        if not permission.name.startswith(f"{plugin}."):
            raise PluginError(plugin, "register", f"permission {permission.name!r} must be named '{plugin}.<action>'")
        if permission.name in self.permissions:
            raise PluginError(plugin, "register", f"permission {permission.name!r} is declared twice")
        unknown = [role for role in permission.default_roles if role not in self.roles]
        if unknown:
            raise PluginError(plugin, "register", f"permission {permission.name!r}: unknown default role(s) {unknown}")
        self.permissions[permission.name] = permission
        self.owners[permission.name] = plugin

    def _add_policy(self, plugin: str, policy: ResourcePolicy) -> None:
        if not policy.resource_type.startswith(f"{plugin}."):
            raise PluginError(plugin, "register", f"resource type {policy.resource_type!r} must start with '{plugin}.'")
        if policy.resource_type in self.policies:
            raise PluginError(plugin, "register", f"resource type {policy.resource_type!r} has two policies")
        self.policies[policy.resource_type] = policy

    def defaults(self) -> dict[str, set[str]]:
        """Role -> the permissions it holds before any admin's change."""
        matrix: dict[str, set[str]] = {name: set() for name in self.roles}
        for permission in self.permissions.values():
            for role in permission.default_roles:
                matrix[role].add(permission.name)
        return matrix
