"""Profiles (issue 8): what each viewer sees of a member, what a member may change, their
picture, GitHub refresh, and the sections plugins add; attacked through the HTTP API.

Users come from the test kernel's ``create_user`` and sign in with ``sign_in``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.identity.tables import LinkedIdentity, User
from coderic_kernel.profiles.tables import Profile
from coderic_kernel.storage.records import FileRecord
from fakeplugins import FakePlugin, FakeSite, boot_error, fake_plugins  # noqa: F401
from oauth_providers import GitHubProvider, github_provider  # noqa: F401
from PIL import Image

ANA = {"name": "Ana", "bio": "Builds things.", "location": "Madrid", "timezone": "Europe/Madrid", "skills": ["python", "sql"]}
SECTIONS = FakePlugin("rates", """
from coderic_sdk import ProfileSection


async def rates(user_id, viewer):
    if viewer is None:
        return None  # guests see no rates
    return {"hourly": 40, "currency": "EUR", "mine": viewer.id == user_id}


async def broken(user_id, viewer):
    raise RuntimeError("the rates service is down")


async def not_a_dict(user_id, viewer):
    return ["a", "list"]


@hookimpl
def register_profile_sections():
    return [ProfileSection("hourly", rates), ProfileSection("broken", broken), ProfileSection("odd", not_a_dict)]
""")


@pytest.fixture
def coderic_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    config = {"public_url": "http://testserver", "secret_key": "s" * 40, "storage_url": f"file://{tmp_path / 'files'}"}
    if "github_provider" in request.fixturenames:
        config["auth_github_api_url"] = request.getfixturevalue("github_provider").api_url
    return config


async def ana_signed_in(kernel: Any, **profile: Any) -> tuple[str, Any]:
    user = await kernel.create_user("ana@example.org", **{**ANA, **profile})
    return user, await kernel.sign_in(user)


def png(size: tuple[int, int] = (900, 600)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


# --- field-level visibility ------------------------------------------------------------------


async def test_each_viewer_sees_the_fields_the_member_lets_them(coderic_kernel: Any) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    changed = await as_ana.patch("/api/v1/me/profile", json={
        "links": [{"label": "Website", "url": "https://ana.example/"}],
        "visibility": {"bio": "private", "skills": "members", "links": "members"},
    })
    assert changed.status_code == 200, changed.text
    bea = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))

    guest = (await coderic_kernel.client.get(f"/api/v1/users/{ana}")).json()
    assert guest["name"] == "Ana"
    assert guest["bio"] is guest["skills"] is guest["links"] is guest["location"] is guest["timezone"] is None

    member = (await bea.get(f"/api/v1/users/{ana}")).json()
    assert member["name"] == "Ana" and member["location"] == "Madrid" and member["timezone"] == "Europe/Madrid"
    assert member["skills"] == ["python", "sql"] and member["links"] == [{"label": "Website", "url": "https://ana.example/"}]
    assert member["bio"] is None
    assert "visibility" not in member

    public_view = (await as_ana.get(f"/api/v1/users/{ana}")).json()
    assert public_view["bio"] == "Builds things." and "visibility" not in public_view  # I see all of mine
    own = (await as_ana.get("/api/v1/me/profile")).json()
    assert own["bio"] == "Builds things." and own["location"] == "Madrid"
    assert own["visibility"] == {"name": "public", "bio": "private", "avatar": "public", "skills": "members",
                                 "links": "members", "location": "members", "timezone": "members"}


async def test_a_guest_cannot_read_or_change_my_profile(coderic_kernel: Any) -> None:
    assert (await coderic_kernel.client.get("/api/v1/me/profile")).status_code == 401
    assert (await coderic_kernel.client.patch("/api/v1/me/profile", json={"name": "X"})).status_code == 401
    assert (await coderic_kernel.client.get("/api/v1/me/activity")).status_code == 401


# --- IDOR: no leak of who exists -------------------------------------------------------------


async def test_unknown_disabled_and_deleted_members_answer_the_same_404(coderic_kernel: Any) -> None:
    disabled = await coderic_kernel.create_user("dis@example.org", name="Dis")
    deleted = await coderic_kernel.create_user("del@example.org", name="Del")
    await User.update({User.status: "disabled"}).where(User.uid == disabled)
    await User.update({User.status: "deleted"}).where(User.uid == deleted)
    viewer = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))
    ids = [disabled, deleted, "0" * 32, "f" * 32, "not-an-id", "A" * 32, "1" * 31, "%00"]
    for client in (coderic_kernel.client, viewer):
        for user_id in ids:
            for path in (f"/api/v1/users/{user_id}", f"/api/v1/users/{user_id}/activity"):
                response = await client.get(path)
                assert response.status_code == 404, (path, response.text)
                body = response.json()
                assert (body["title"], body["detail"]) == ("Not Found", "There is no such user."), path


async def test_a_disabled_member_no_longer_reads_their_own_profile(coderic_kernel: Any) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    await User.update({User.status: "disabled"}).where(User.uid == ana)
    assert (await as_ana.get("/api/v1/me/profile")).status_code in (401, 404)


# --- mass assignment and validation ----------------------------------------------------------


#: Fields of the account a profile PATCH must never set, with values an attacker would send.
NOT_PROFILE_FIELDS = [
    ("role", "admin"), ("roles", ["admin"]), ("is_admin", True), ("email", "evil@example.org"), ("status", "active"),
    ("email_verified", True), ("github_id", 1), ("id", "0" * 32), ("password_hash", "x"), ("totp_secret", "x"),
]
#: Invalid changes, and the field the 422 must name.
INVALID_CHANGES = [
    ({"links": [{"label": "Web", "url": "http://ana.example/"}]}, "body.links.0.url"),
    ({"links": [{"label": "Web", "url": "javascript:alert(1)"}]}, "body.links.0.url"),
    ({"links": [{"label": "   ", "url": "https://ana.example/"}]}, "body.links.0.label"),
    ({"links": [{"label": f"L{i}", "url": f"https://ana.example/{i}"} for i in range(11)]}, "body.links"),
    ({"links": [{"label": "Web", "url": "https://ana.example/", "rel": "me"}]}, "body.links.0.rel"),
    ({"visibility": {"email": "public"}}, "body.visibility.email.[key]"),
    ({"visibility": {"bio": "friends"}}, "body.visibility.bio"),
    ({"timezone": "Mars/Olympus"}, "body.timezone"),
    ({"avatar_url": "http://ana.example/me.png"}, "body.avatar_url"),
]


async def test_patch_refuses_fields_that_are_not_the_profiles(coderic_kernel: Any) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    for field, value in NOT_PROFILE_FIELDS:
        response = await as_ana.patch("/api/v1/me/profile", json={"name": "Ana B", field: value})
        assert response.status_code == 422, (field, response.text)
        assert any(error["field"] == f"body.{field}" for error in response.json()["errors"]), field
    row = await User.select().where(User.uid == ana).first()
    assert (row["name"], row["email"], row["status"], row["github_id"]) == ("Ana", "ana@example.org", "active", None)
    assert row["password_hash"] is None and row["totp_secret"] is None
    assert "admin" not in await coderic_kernel.kernel.permissions.global_roles(ana)


async def test_invalid_profile_changes_are_refused(coderic_kernel: Any) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    for body, field in INVALID_CHANGES:
        response = await as_ana.patch("/api/v1/me/profile", json=body)
        assert response.status_code == 422, (body, response.text)
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(name.startswith(field) for name in fields), (field, fields)
    assert await Profile.count().where(Profile.user_id == ana) == 0  # nothing was saved


async def test_links_are_replaced_whole_and_cleared_with_null(coderic_kernel: Any) -> None:
    _, as_ana = await ana_signed_in(coderic_kernel)
    links = [{"label": " Blog ", "url": "https://ana.example/blog"}, {"label": "Same", "url": "https://ana.example/blog"},
             {"label": "Code", "url": "https://code.example/ana"}]
    shown = (await as_ana.patch("/api/v1/me/profile", json={"links": links})).json()["links"]
    assert shown == [{"label": "Blog", "url": "https://ana.example/blog"}, {"label": "Code", "url": "https://code.example/ana"}]
    assert (await as_ana.patch("/api/v1/me/profile", json={"links": None})).json()["links"] == []


# --- avatars ---------------------------------------------------------------------------------


async def test_an_uploaded_avatar_gets_variants_and_replaces_the_previous_one(coderic_kernel: Any) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    uploaded = await as_ana.post("/api/v1/me/profile/avatar", files={"file": ("me.png", png(), "image/png")})
    assert uploaded.status_code == 200, uploaded.text
    avatar = uploaded.json()["avatar"]
    assert set(avatar["variants"]) == {"small", "medium", "large"}

    seen = (await coderic_kernel.client.get(f"/api/v1/users/{ana}")).json()["avatar"]
    assert seen == avatar  # public by default, so a guest may load it
    for variant, longest in (("small", 64), ("medium", 256), ("large", 512)):
        redirect = await coderic_kernel.client.get(avatar["variants"][variant])
        assert redirect.status_code == 302
        image = await coderic_kernel.client.get(redirect.headers["location"])
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert max(Image.open(io.BytesIO(image.content)).size) == longest
    first = (await Profile.select().where(Profile.user_id == ana).first())["avatar_file_id"]

    again = await as_ana.post("/api/v1/me/profile/avatar", files={"file": ("me2.png", png((300, 300)), "image/png")})
    second = (await Profile.select().where(Profile.user_id == ana).first())["avatar_file_id"]
    assert second != first and again.json()["avatar"]["url"].endswith(f"/files/{second}/content")
    assert await FileRecord.count().where(FileRecord.uid == first) == 0

    assert (await as_ana.delete("/api/v1/me/profile/avatar")).status_code == 204
    assert (await as_ana.get("/api/v1/me/profile")).json()["avatar"] is None
    assert await FileRecord.count().where(FileRecord.owner == ana) == 0


async def test_an_avatar_must_be_an_image(coderic_kernel: Any) -> None:
    _, as_ana = await ana_signed_in(coderic_kernel)
    refused = await as_ana.post("/api/v1/me/profile/avatar", files={"file": ("me.png", b"<svg onload=alert(1)>", "image/png")})
    assert refused.status_code == 415
    assert (await as_ana.get("/api/v1/me/profile")).json()["avatar"] is None


async def test_an_avatar_url_replaces_an_uploaded_picture_and_a_hidden_avatar_is_not_shown(coderic_kernel: Any) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    await as_ana.post("/api/v1/me/profile/avatar", files={"file": ("me.png", png(), "image/png")})
    changed = await as_ana.patch("/api/v1/me/profile", json={"avatar_url": "https://img.example/ana.png",
                                                               "visibility": {"avatar": "members"}})
    assert changed.json()["avatar"] == {"url": "https://img.example/ana.png", "variants": {}}
    assert await FileRecord.count().where(FileRecord.owner == ana) == 0
    assert (await coderic_kernel.client.get(f"/api/v1/users/{ana}")).json()["avatar"] is None


# --- GitHub refresh --------------------------------------------------------------------------


async def link_github(user_id: str, subject: str = "4242") -> None:
    await LinkedIdentity.insert(LinkedIdentity(key=f"github:{subject}", user_id=user_id, provider="github", subject=subject))


async def test_refresh_from_github_rereads_the_public_profile(coderic_kernel: Any, github_provider: GitHubProvider) -> None:
    account = github_provider.add_user(id="4242", login="ana-gh", name="Ana from GitHub", location="Bogotá",
                                       avatar_url="https://avatars.example/u/4242")
    ana, as_ana = await ana_signed_in(coderic_kernel)
    await as_ana.post("/api/v1/me/profile/avatar", files={"file": ("me.png", png(), "image/png")})
    assert (await as_ana.post("/api/v1/me/profile/refresh-github")).status_code == 409  # nothing linked yet

    await link_github(ana)
    refreshed = await as_ana.post("/api/v1/me/profile/refresh-github")
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert (body["name"], body["bio"], body["location"]) == ("Ana from GitHub", "Builds things.", "Bogotá")  # no bio there
    assert body["avatar"] == {"url": "https://avatars.example/u/4242", "variants": {}}
    assert await FileRecord.count().where(FileRecord.owner == ana) == 0  # the uploaded picture is gone
    assert github_provider.requests_to("/user/4242")  # by id, without a token

    account.name, account.bio = None, "GitHub bio"
    again = (await as_ana.post("/api/v1/me/profile/refresh-github")).json()
    assert (again["name"], again["bio"]) == ("ana-gh", "GitHub bio")  # no name there: the login, as at sign-up


async def test_refresh_from_github_says_so_when_github_fails(coderic_kernel: Any, github_provider: GitHubProvider) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    await link_github(ana, subject="999")
    assert (await as_ana.post("/api/v1/me/profile/refresh-github")).status_code == 409  # GitHub has no such account
    github_provider.stop()
    down = await as_ana.post("/api/v1/me/profile/refresh-github")
    assert down.status_code == 502
    assert (await User.select(User.name).where(User.uid == ana).first())["name"] == "Ana"


# --- profile sections from plugins -----------------------------------------------------------


@pytest.mark.parametrize("coderic_plugins", [["rates"]], indirect=True)
async def test_plugins_add_sections_each_viewer_sees_as_the_plugin_decides(
    fake_plugins: FakeSite, coderic_kernel: Any,  # noqa: F811
) -> None:
    ana, as_ana = await ana_signed_in(coderic_kernel)
    bea = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))
    assert (await coderic_kernel.client.get(f"/api/v1/users/{ana}")).json()["sections"] == {}
    assert (await bea.get(f"/api/v1/users/{ana}")).json()["sections"] == {
        "rates.hourly": {"hourly": 40, "currency": "EUR", "mine": False},
    }  # the failing and the malformed sections are left out, the profile still answers
    assert (await as_ana.get("/api/v1/me/profile")).json()["sections"]["rates.hourly"]["mine"] is True


@pytest.fixture
def coderic_plugins(request: pytest.FixtureRequest, fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    plugins = list(getattr(request, "param", []))
    if "rates" in plugins:
        fake_plugins.install(SECTIONS)
    return plugins


def test_a_profile_section_named_twice_stops_boot(fake_plugins: FakeSite) -> None:  # noqa: F811
    fake_plugins.install(FakePlugin("twice", """
from coderic_sdk import ProfileSection


async def load(user_id, viewer):
    return {}


@hookimpl
def register_profile_sections():
    return [ProfileSection("rates", load), ProfileSection("twice.rates", load)]
"""))
    assert "two profile sections are named 'twice.rates'" in boot_error("twice")
