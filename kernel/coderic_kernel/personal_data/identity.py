"""The ``auth`` built-in's personal data: the account, how it signs in, its audit trail, its
role grants and its data exports.

Exports never carry a secret or its hash: no password hash, 2FA secret, token or recovery-code
hash. Deleting keeps the ``kernel_user`` row, so that ids other rows hold still point
somewhere, with every personal field cleared and the status ``deleted``; everything else
about the user is deleted, audit entries included (one ``account.deleted`` entry, with no
address, agent or detail, is what remains).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from coderic_sdk import PersonalData
from piccolo.columns.combination import WhereRaw

from ..identity.tables import (
    AuthEvent, LinkedIdentity, OneTimeToken, PersonalToken, RecoveryCode, RefreshToken, Session, User,
)
from ..permissions.tables import RoleGrant
from .common import plain, rows
from .tables import DataExport

if TYPE_CHECKING:
    from ..kernel import Kernel

DELETED_EVENT = "account.deleted"
#: What a deleted account's row keeps: its id, its creation time and this.
CLEARED: dict[str, Any] = {
    "email": None, "email_verified": False, "github_id": None, "name": "", "bio": "", "avatar_url": "", "skills": [],
    "location": "", "timezone": "UTC", "language": None, "password_hash": None, "password_changed_at": None,
    "totp_secret": None, "totp_enabled_at": None, "totp_last_step": 0, "last_login": None, "status": "deleted",
}


def declarations(kernel: Kernel) -> list[PersonalData]:
    async def delete_account(user_id: str) -> None:
        await _delete_account(kernel, user_id)

    async def delete_roles(user_id: str) -> None:
        await RoleGrant.delete().where(RoleGrant.user_id == user_id)
        kernel.permissions._global.pop(user_id, None)  # this process's cache of global roles

    return [
        PersonalData("roles", export_roles, delete_roles, "Roles granted to the member, with their history."),
        PersonalData("account", export_account, delete_account,
                     "The account, linked sign-in identities, sessions, personal tokens, 2FA, audit trail, exports."),
    ]


async def export_account(user_id: str) -> dict[str, Any]:
    user = await User.select().where(User.uid == user_id).first().output(load_json=True)
    if user is None or user["status"] == "deleted":
        return {}
    account = {key: plain(user[key]) for key in (
        "uid", "email", "email_verified", "name", "bio", "avatar_url", "skills", "location", "timezone", "language",
        "github_id", "status", "created_at", "updated_at", "last_login", "password_changed_at", "totp_enabled_at",
    )}
    account["id"] = account.pop("uid")
    account["has_password"] = user["password_hash"] is not None
    codes = await RecoveryCode.select(RecoveryCode.used_at).where(RecoveryCode.user_id == user_id)
    return {
        "account": account,
        "linked_identities": rows(
            await LinkedIdentity.select().where(LinkedIdentity.user_id == user_id).order_by(LinkedIdentity.id),
            "provider", "subject", "email", "email_verified", "created_at", "last_used_at",
        ),
        "sessions": rows(
            await Session.select().where(Session.user_id == user_id).order_by(Session.id),
            "uid", "kind", "method", "ip", "user_agent", "created_at", "last_seen_at", "expires_at", "revoked_at",
            rename={"uid": "id"},
        ),
        "personal_tokens": rows(
            await PersonalToken.select().where(PersonalToken.user_id == user_id).order_by(PersonalToken.id).output(load_json=True),
            "uid", "name", "scopes", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at", rename={"uid": "id"},
        ),
        "recovery_codes": {"total": len(codes), "unused": sum(1 for code in codes if code["used_at"] is None)},
        "pending_links": rows(
            await OneTimeToken.select().where(OneTimeToken.user_id == user_id).order_by(OneTimeToken.id),
            "purpose", "created_at", "expires_at", "used_at",
        ),
        "audit": rows(
            await AuthEvent.select().where(AuthEvent.user_id == user_id).order_by(AuthEvent.id).output(load_json=True),
            "kind", "at", "ip", "user_agent", "detail",
        ),
        "data_exports": rows(
            await DataExport.select().where(DataExport.user_id == user_id).order_by(DataExport.id),
            "uid", "status", "created_at", "finished_at", "expires_at", rename={"uid": "id"},
        ),
    }


async def _delete_account(kernel: Kernel, user_id: str) -> None:
    from .exports import remove_export

    user = await User.select(*(getattr(User, key) for key in CLEARED)).where(User.uid == user_id).first().output(load_json=True)
    addresses = {row["email"] for row in await LinkedIdentity.select(LinkedIdentity.email).where(
        (LinkedIdentity.user_id == user_id) & LinkedIdentity.email.is_not_null()
    )}
    if user is not None and user["email"]:
        addresses.add(user["email"])
    for export in await DataExport.objects().where(DataExport.user_id == user_id):
        await remove_export(kernel, export)
    for table in (RefreshToken, Session, PersonalToken, OneTimeToken, RecoveryCode, LinkedIdentity):
        await table.delete().where(table.user_id == user_id)  # type: ignore[attr-defined]
    await AuthEvent.delete().where((AuthEvent.user_id == user_id) & (AuthEvent.kind != DELETED_EVENT))
    for address in addresses:  # failed sign-ins with the address, made before the account existed
        await AuthEvent.delete().where(
            AuthEvent.user_id.is_null() & WhereRaw("CAST(detail AS TEXT) LIKE {} ESCAPE '!'", f'%"{_like(address)}"%')
        )
    if user is not None and any(user[key] != value for key, value in CLEARED.items()):  # once: a retry changes nothing
        values = {**CLEARED, "updated_at": datetime.now(timezone.utc)}
        await User.update({getattr(User, key): value for key, value in values.items()}).where(User.uid == user_id)


async def export_roles(user_id: str) -> list[dict[str, Any]]:
    found = await RoleGrant.select().where(RoleGrant.user_id == user_id).order_by(RoleGrant.id)
    return rows(found, "role", "resource_type", "resource_id", "granted_by", "reason", "created_at", "revoked_at",
                "revoked_by", "revoke_reason")


def _like(text: str) -> str:
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
