"""The kernel's own permissions and what roles hold them by default."""

from __future__ import annotations

from coderic_sdk import Permission

USERS_VIEW = "kernel.users.view"
USERS_MANAGE = "kernel.users.manage"
ROLES_GRANT = "kernel.roles.grant"
ROLES_MANAGE = "kernel.roles.manage"
FREELANCERS_VERIFY = "kernel.freelancers.verify"
AUDIT_VIEW = "kernel.audit.view"
PLUGINS_VIEW = "kernel.plugins.view"

KERNEL_PERMISSIONS = (
    Permission(PLUGINS_VIEW, "See the enabled plugins.", default_roles=("guest",)),
    Permission(USERS_VIEW, "List and search accounts, with their roles.", default_roles=("moderator",)),
    Permission(USERS_MANAGE, "Disable and enable accounts (disabling ends every session).", default_roles=()),
    Permission(ROLES_GRANT, "Grant and revoke any role.", default_roles=()),
    Permission(ROLES_MANAGE, "Create custom roles and change which role holds which permission.", default_roles=()),
    Permission(FREELANCERS_VERIFY, "Grant and revoke the verified freelancer role after review.",
               default_roles=("moderator",)),
    Permission(AUDIT_VIEW, "Read the audit trail of sign-ins, role changes and account changes.", default_roles=()),
)
