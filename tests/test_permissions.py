"""Roles and permissions (issue 8): deny by default, roles globally and on resources, custom
roles, admins changing plugin defaults, a plugin deciding for its own resources, 403 vs 404,
2FA for admins, and the admin API.

The ``vault`` fake plugin declares permissions with default roles, a scoped role of its own,
a resource policy (public vaults are visible to all, private ones only to their holders) and
routes that name permissions on a vault from the path.
"""

from __future__ import annotations

from typing import Any

import pytest
from coderic_kernel.identity.tables import AuthEvent, User
from coderic_sdk import Resource
from fakeplugins import FakePlugin, FakeSite, Project, boot_error, fake_plugins, project  # noqa: F401

VAULT = FakePlugin("vault", """
from coderic_sdk import Permission, ResourcePolicy, Role, Route, from_path

PUBLIC = {"1", "2"}  # vaults 1 and 2 are public; any other id is private


async def decide(user, permission, resource):
    if permission == "vault.read" and resource.id in PUBLIC:
        return True
    if resource.id == "frozen":
        return False  # nobody writes to a frozen vault, whatever their roles
    return None


async def visible(user, resource):
    return resource.id in PUBLIC


async def show(ctx):
    return {"vault": ctx.path.get("vault_id")}


@hookimpl
def register_roles():
    return [Role("vault.keeper", "Keeps one vault.", scoped=True, resource_type="vault.vault")]


@hookimpl
def register_permissions():
    return [
        Permission("vault.read", "Read a vault.", default_roles=("vault.keeper", "project_owner")),
        Permission("vault.write", "Write to a vault.", default_roles=("vault.keeper",)),
        Permission("vault.audit", "Audit every vault.", default_roles=("moderator",)),
        Permission("vault.list", "List vaults.", default_roles=("member",)),
    ]


@hookimpl
def register_resource_policies():
    return [ResourcePolicy("vault.vault", decide=decide, visible=visible)]


@hookimpl
def register_routes():
    vault = from_path("vault.vault", "vault_id")
    return [
        Route("GET", "/vaults", show, name="list", permission="vault.list"),
        Route("GET", "/vaults/{vault_id}", show, name="read", permission="vault.read", resource=vault),
        Route("POST", "/vaults/{vault_id}", show, name="write", permission="vault.write", resource=vault),
        Route("GET", "/audit", show, name="audit", permission="vault.audit"),
    ]
""")


@pytest.fixture
def coderic_plugins(fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(VAULT)
    return ["vault"]


async def client_for(kernel: Any, *roles: str, email: str | None = None) -> tuple[str, Any]:
    user = await kernel.create_user(email, roles=list(roles))
    return user, await kernel.sign_in(user)


async def test_deny_by_default_guests_get_401_members_what_members_hold(coderic_kernel: Any) -> None:
    guest = coderic_kernel.client
    assert (await guest.get("/api/v1/vault/vaults")).status_code == 401
    _, member = await client_for(coderic_kernel)
    assert (await member.get("/api/v1/vault/vaults")).status_code == 200
    assert (await member.get("/api/v1/vault/audit")).status_code == 403
    _, moderator = await client_for(coderic_kernel, "moderator")
    assert (await moderator.get("/api/v1/vault/audit")).status_code == 200


async def test_scoped_grants_count_on_their_resource_only(coderic_kernel: Any) -> None:
    keeper, client = await client_for(coderic_kernel)
    vault = coderic_kernel.plugin("vault")
    await vault.permissions.grant(keeper, "vault.keeper", Resource("vault.vault", "a"), reason="created it")
    assert (await client.post("/api/v1/vault/vaults/a")).status_code == 200
    # Keeper of vault a, not of vault b: b is private and not theirs, so it does not exist for them.
    assert (await client.post("/api/v1/vault/vaults/b")).status_code == 404
    assert (await client.get("/api/v1/vault/vaults/b")).status_code == 404
    # A public vault they do not keep: they may read it (the plugin says so) but not write: 403.
    assert (await client.get("/api/v1/vault/vaults/1")).status_code == 200
    assert (await client.post("/api/v1/vault/vaults/1")).status_code == 403
    # The plugin's own "no" beats every role, admins' included.
    await vault.permissions.grant(keeper, "vault.keeper", Resource("vault.vault", "frozen"), reason="test")
    assert (await client.post("/api/v1/vault/vaults/frozen")).status_code == 404
    _, admin = await client_for(coderic_kernel, "admin")
    assert (await admin.post("/api/v1/vault/vaults/frozen")).status_code == 404
    assert (await admin.post("/api/v1/vault/vaults/b")).status_code == 200
    assert await vault.permissions.holders("vault.keeper", Resource("vault.vault", "a")) == [keeper]


async def test_a_built_in_scoped_role_on_a_plugins_resource(coderic_kernel: Any) -> None:
    owner, client = await client_for(coderic_kernel)
    _, other = await client_for(coderic_kernel)
    vault = coderic_kernel.plugin("vault")
    await vault.permissions.grant(owner, "project_owner", Resource("vault.vault", "p"), reason="owner")
    assert (await client.get("/api/v1/vault/vaults/p")).status_code == 200
    assert (await other.get("/api/v1/vault/vaults/p")).status_code == 404
    with pytest.raises(Exception, match="needs|only granted on a resource"):
        await coderic_kernel.kernel.permissions.grant(owner, "project_owner", reason="global?")


async def test_plugins_may_grant_only_their_own_roles(coderic_kernel: Any) -> None:
    user, _ = await client_for(coderic_kernel)
    vault = coderic_kernel.plugin("vault")
    for role, resource in (("admin", None), ("moderator", None), ("project_owner", Resource("projects.project", "1"))):
        with pytest.raises(PermissionError):
            await vault.permissions.grant(user, role, resource)


async def test_revocation_applies_at_once_and_is_audited_with_history(coderic_kernel: Any) -> None:
    admin, admin_client = await client_for(coderic_kernel, "admin")
    user, client = await client_for(coderic_kernel)
    granted = await admin_client.post(f"/api/v1/admin/users/{user}/roles", json={"role": "moderator", "reason": "helps a lot"})
    assert granted.status_code == 200 and "moderator" not in granted.json()["roles"]  # no 2FA yet: not counted
    await User.update({User.totp_enabled_at: User.created_at}).where(User.uid == user)
    coderic_kernel.kernel.permissions.forget(user)
    assert (await client.get("/api/v1/vault/audit")).status_code == 200
    revoked = await admin_client.post(f"/api/v1/admin/users/{user}/roles/revoke",
                                      json={"role": "moderator", "reason": "stepped down"})
    assert revoked.status_code == 200 and revoked.json()["roles"] == []
    assert (await client.get("/api/v1/vault/audit")).status_code == 403
    history = (await client.get("/api/v1/me/roles")).json()["grants"]
    assert [(g["role"], g["reason"], g["revoke_reason"], g["granted_by"], g["revoked_by"]) for g in history] == [
        ("moderator", "helps a lot", "stepped down", admin, admin)
    ]
    kinds = [row["kind"] for row in await AuthEvent.select(AuthEvent.kind).where(AuthEvent.user_id == user)]
    assert "role.granted" in kinds and "role.revoked" in kinds
    again = await admin_client.post(f"/api/v1/admin/users/{user}/roles/revoke", json={"role": "moderator", "reason": "x"})
    assert again.status_code == 404


async def test_admins_count_as_admins_only_with_2fa(coderic_kernel: Any) -> None:
    _, without = await client_for(coderic_kernel, "admin", email=None)
    user = await coderic_kernel.create_user(None, roles=["admin"], two_factor=False)
    without = await coderic_kernel.sign_in(user)
    assert (await without.get("/api/v1/admin/users")).status_code == 403
    _, with_2fa = await client_for(coderic_kernel, "admin")
    assert (await with_2fa.get("/api/v1/admin/users")).status_code == 200


async def test_freelancer_verification_by_a_moderator_but_no_other_role(coderic_kernel: Any) -> None:
    _, moderator = await client_for(coderic_kernel, "moderator")
    user, _ = await client_for(coderic_kernel)
    verified = await moderator.post(f"/api/v1/admin/users/{user}/freelancer", json={"reason": "portfolio reviewed"})
    assert verified.status_code == 200 and verified.json()["roles"] == ["freelancer"]
    assert verified.json()["grants"][0]["reason"] == "portfolio reviewed"
    escalate = await moderator.post(f"/api/v1/admin/users/{user}/roles", json={"role": "admin", "reason": "why not"})
    assert escalate.status_code == 403
    _, member = await client_for(coderic_kernel)
    assert (await member.post(f"/api/v1/admin/users/{user}/freelancer", json={"reason": "x"})).status_code == 403
    withdrawn = await moderator.post(f"/api/v1/admin/users/{user}/freelancer/revoke", json={"reason": "fake reviews"})
    assert withdrawn.status_code == 200 and withdrawn.json()["roles"] == []


async def test_custom_roles_and_admins_overriding_plugin_defaults(coderic_kernel: Any) -> None:
    _, admin = await client_for(coderic_kernel, "admin")
    user, client = await client_for(coderic_kernel)
    created = await admin.post("/api/v1/admin/roles", json={"name": "auditor", "description": "Reads audits."})
    assert created.status_code == 201 and created.json()["origin"] == "custom"
    assert (await admin.post("/api/v1/admin/roles", json={"name": "auditor"})).status_code == 409
    assert (await admin.post(f"/api/v1/admin/users/{user}/roles", json={"role": "auditor", "reason": "r"})).status_code == 200
    assert (await client.get("/api/v1/vault/audit")).status_code == 403
    given = await admin.put("/api/v1/admin/roles/auditor/permissions/vault.audit", json={"allowed": True})
    assert given.status_code == 200 and given.json()["permissions"] == ["vault.audit"]
    assert (await client.get("/api/v1/vault/audit")).status_code == 200
    # Taking a default away from a built-in role: members may no longer list vaults.
    taken = await admin.put("/api/v1/admin/roles/member/permissions/vault.list", json={"allowed": False})
    assert "vault.list" not in taken.json()["permissions"]
    assert (await client.get("/api/v1/vault/vaults")).status_code == 403
    reset = await admin.delete("/api/v1/admin/roles/member/permissions/vault.list")
    assert "vault.list" in reset.json()["permissions"]
    assert (await client.get("/api/v1/vault/vaults")).status_code == 200
    assert (await admin.put("/api/v1/admin/roles/admin/permissions/vault.audit", json={"allowed": False})).status_code == 409
    assert (await admin.put("/api/v1/admin/roles/nobody/permissions/vault.audit", json={"allowed": True})).status_code == 404
    assert (await admin.put("/api/v1/admin/roles/auditor/permissions/vault.nothing", json={"allowed": True})).status_code == 404
    roles = {role["name"]: role for role in (await admin.get("/api/v1/admin/roles")).json()["roles"]}
    assert {"guest", "member", "project_owner", "freelancer", "mentor", "moderator", "admin", "vault.keeper", "auditor"} <= set(roles)
    assert roles["vault.keeper"]["scoped"] is True and roles["vault.keeper"]["origin"] == "vault"
    permissions = {p["name"]: p for p in (await admin.get("/api/v1/admin/permissions")).json()["permissions"]}
    assert permissions["vault.write"] == {"name": "vault.write", "description": "Write to a vault.", "plugin": "vault",
                                          "default_roles": ["vault.keeper"]}


async def test_disabling_an_account_ends_its_sessions_and_tokens(coderic_kernel: Any) -> None:
    admin_id, admin = await client_for(coderic_kernel, "admin")
    user = await coderic_kernel.create_user("bea@example.org")
    browser = await coderic_kernel.sign_in(user, mode="session")
    token = (await browser.post("/api/v1/me/tokens", json={"name": "bot", "scopes": ["read"]})).json()["token"]
    disabled = await admin.post(f"/api/v1/admin/users/{user}/disable", json={"reason": "spam"})
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert (await browser.get("/api/v1/me")).status_code == 401
    bot = await coderic_kernel.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert bot.status_code == 401
    assert (await admin.post(f"/api/v1/admin/users/{admin_id}/disable", json={"reason": "oops"})).status_code == 409
    assert (await admin.post(f"/api/v1/admin/users/{user}/enable", json={"reason": "appeal"})).json()["status"] == "active"
    assert (await admin.post(f"/api/v1/admin/users/{'0' * 32}/disable", json={"reason": "x"})).status_code == 404
    assert (await admin.post("/api/v1/admin/users/nope/disable", json={"reason": "x"})).status_code == 422
    trail = (await admin.get(f"/api/v1/admin/audit?user_id={user}&kind=account.")).json()["events"]
    assert [(e["kind"], e["detail"]["reason"]) for e in trail] == [("account.enabled", "appeal"), ("account.disabled", "spam")]


async def test_admin_user_search_and_pagination(coderic_kernel: Any) -> None:
    _, admin = await client_for(coderic_kernel, "admin", email="root@example.org")
    for n in range(5):
        await coderic_kernel.create_user(f"user{n}@example.org", name=f"User {n}")
    found = (await admin.get("/api/v1/admin/users?q=USER3")).json()["users"]
    assert [u["email"] for u in found] == ["user3@example.org"]
    first = (await admin.get("/api/v1/admin/users?limit=4")).json()
    second = (await admin.get(f"/api/v1/admin/users?limit=4&cursor={first['next_cursor']}")).json()
    emails = [u["email"] for u in first["users"] + second["users"]]
    assert len(emails) == 6 == len(set(emails)) and second["next_cursor"] is None
    admins = (await admin.get("/api/v1/admin/users?role=admin")).json()["users"]
    assert [u["email"] for u in admins] == ["root@example.org"]
    assert (await admin.get("/api/v1/admin/users?q=%25")).status_code == 200


async def test_mass_assignment_of_roles_is_refused(coderic_kernel: Any) -> None:
    _, client = await client_for(coderic_kernel)
    for field in ({"role": "admin"}, {"is_admin": True}, {"roles": ["admin"]}, {"status": "active"}):
        answer = await client.patch("/api/v1/me", json={"name": "x", **field})
        assert answer.status_code == 422, field
    assert (await client.get("/api/v1/me/roles")).json()["roles"] == []


def test_a_route_naming_an_unregistered_permission_stops_boot(fake_plugins: FakeSite) -> None:  # noqa: F811
    fake_plugins.install(FakePlugin("typo", """
from coderic_sdk import Route

async def x(ctx):
    return {}

@hookimpl
def register_routes():
    return [Route("GET", "/x", x, name="x", permission="typo.raed")]
"""))
    assert boot_error("typo") == "plugin 'typo' failed at routes: route 'x': permission 'typo.raed' is not registered by any plugin"


def test_permissions_and_roles_must_carry_their_plugins_name(fake_plugins: FakeSite) -> None:  # noqa: F811
    fake_plugins.install(FakePlugin("bad", """
from coderic_sdk import Permission

@hookimpl
def register_permissions():
    return [Permission("other.thing", "Not mine.")]
"""), FakePlugin("worse", """
from coderic_sdk import Permission

@hookimpl
def register_permissions():
    return [Permission("worse.thing", "Unknown role.", default_roles=("superuser",))]
"""))
    assert "permission 'other.thing' must be named 'bad.<action>'" in boot_error("bad")
    assert "unknown default role(s) ['superuser']" in boot_error("worse")


def test_the_first_admin_is_granted_from_the_command_line(project: Project) -> None:
    import asyncio

    from coderic_kernel.config import load_configuration
    from coderic_kernel.identity import users
    from coderic_kernel.kernel import Kernel

    project.configure([])
    assert project.run("migrate").code == 0

    async def create() -> None:
        async with Kernel.boot(load_configuration()).started():
            await users.create(email="ana@example.org", email_verified=True)

    asyncio.run(create())
    granted = project.run("auth", "grant", "ANA@example.org", "admin", "--reason", "first administrator")
    assert granted.code == 0 and granted.out.strip() == "granted admin to ana@example.org"
    unknown_role = project.run("auth", "grant", "ana@example.org", "overlord", "--reason", "x")
    assert unknown_role.code == 1 and "There is no role 'overlord'" in unknown_role.err
    assert project.run("auth", "grant", "bea@example.org", "admin", "--reason", "x").code == 1
    revoked = project.run("auth", "revoke", "ana@example.org", "admin", "--reason", "handed over")
    assert revoked.code == 0 and revoked.out.strip() == "revoked admin from ana@example.org"
    assert project.run("auth", "revoke", "ana@example.org", "admin", "--reason", "again").code == 1
