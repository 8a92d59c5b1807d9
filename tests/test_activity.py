"""Activity history (issue 8): what plugins record through ``plugin.activity`` and who sees it
in the feeds, page by page; deleted accounts and subjects take their activities with them.

The ``journal`` fake plugin records activities about its entries; its resource policy hides
the entries listed in ``journal.HIDDEN`` (as a plugin hides private or deleted things).
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from coderic_kernel.identity.tables import User
from coderic_kernel.profiles import activity
from coderic_kernel.profiles.tables import Activity
from coderic_sdk import Resource
from fakeplugins import FakePlugin, FakeSite, fake_plugins  # noqa: F401

JOURNAL = FakePlugin("journal", """
from coderic_sdk import ResourcePolicy

HIDDEN = set()


async def visible(user, resource):
    return resource.id not in HIDDEN


@hookimpl
def register_resource_policies():
    return [ResourcePolicy("journal.entry", visible=visible)]
""")


@pytest.fixture
def coderic_plugins(fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(JOURNAL)
    return ["journal"]


def hidden() -> set[str]:
    return sys.modules["fake_journal"].HIDDEN  # type: ignore[no-any-return]


async def types_seen(client: Any, path: str) -> list[str]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    return [item["type"] for item in response.json()["items"]]


async def test_each_viewer_sees_the_activities_meant_for_them(coderic_kernel: Any) -> None:
    log = coderic_kernel.plugin("journal").activity
    ana = await coderic_kernel.create_user("ana@example.org", name="Ana")
    await log.record(ana, "journal.published", Resource("journal.entry", "1"), {"title": "Hello"}, visibility="public")
    await log.record(ana, "journal.commented", visibility="members")
    await log.record(ana, "journal.drafted", visibility="private")
    as_ana = await coderic_kernel.sign_in(ana)
    bea = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))

    assert await types_seen(coderic_kernel.client, f"/api/v1/users/{ana}/activity") == ["journal.published"]
    assert await types_seen(bea, f"/api/v1/users/{ana}/activity") == ["journal.commented", "journal.published", "auth.joined"]
    everything = ["journal.drafted", "journal.commented", "journal.published", "auth.joined"]
    assert await types_seen(as_ana, f"/api/v1/users/{ana}/activity") == everything
    assert await types_seen(as_ana, "/api/v1/me/activity") == everything

    item = (await coderic_kernel.client.get(f"/api/v1/users/{ana}/activity")).json()["items"][0]
    assert item["subject"] == {"type": "journal.entry", "id": "1"} and item["metadata"] == {"title": "Hello"}
    assert item["actor_id"] == ana and item["visibility"] == "public" and item["created_at"]


async def test_activities_about_subjects_a_viewer_may_not_see_are_left_out(coderic_kernel: Any) -> None:
    log = coderic_kernel.plugin("journal").activity
    ana = await coderic_kernel.create_user("ana@example.org")
    for entry in ("1", "2", "3"):
        await log.record(ana, "journal.published", Resource("journal.entry", entry), visibility="public")
    hidden().add("2")
    page = (await coderic_kernel.client.get(f"/api/v1/users/{ana}/activity")).json()
    assert [item["subject"]["id"] for item in page["items"]] == ["3", "1"]

    assert await log.forget(Resource("journal.entry", "3")) == 1
    assert await Activity.count().where(Activity.subject_id == "3") == 0


async def test_feeds_page_newest_first_with_a_cursor(coderic_kernel: Any) -> None:
    log = coderic_kernel.plugin("journal").activity
    ana = await coderic_kernel.create_user("ana@example.org")
    for number in range(25):
        await log.record(ana, "journal.published", metadata={"n": number}, visibility="public")
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        query = f"?limit=10&cursor={cursor}" if cursor else "?limit=10"
        page = (await coderic_kernel.client.get(f"/api/v1/users/{ana}/activity{query}")).json()
        seen += [item["metadata"]["n"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(24, -1, -1)) and pages == 3

    for bad in ("?limit=0", "?limit=101", "?cursor=abc", "?cursor=-1"):
        assert (await coderic_kernel.client.get(f"/api/v1/users/{ana}/activity{bad}")).status_code == 422


async def test_recording_checks_what_it_is_given(coderic_kernel: Any) -> None:
    log = coderic_kernel.plugin("journal").activity
    ana = await coderic_kernel.create_user("ana@example.org")
    with pytest.raises(ValueError, match="journal.<what>"):
        await log.record(ana, "projects.created")  # another plugin's name
    with pytest.raises(ValueError, match="journal.<what>"):
        await log.record(ana, "journal")
    with pytest.raises(ValueError, match="visibility"):
        await log.record(ana, "journal.published", visibility="friends")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON-safe"):
        await log.record(ana, "journal.published", metadata={"at": object()})
    with pytest.raises(ValueError, match="4096 bytes"):
        await log.record(ana, "journal.published", metadata={"text": "x" * 5000})
    assert await log.record("0" * 32, "journal.published") is None  # no such account: nothing kept
    await User.update({User.status: "disabled"}).where(User.uid == ana)
    assert await log.record(ana, "journal.published") is None
    assert await Activity.count().where(Activity.type == "journal.published") == 0


async def test_the_kernel_records_joining_and_profile_changes(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    await as_ana.patch("/api/v1/me/profile", json={"bio": "New bio", "visibility": {"bio": "members"}})
    await as_ana.patch("/api/v1/me/profile", json={})  # nothing changed: nothing recorded
    items = (await as_ana.get("/api/v1/me/activity")).json()["items"]
    assert [(i["type"], i["visibility"]) for i in items] == [("auth.profile_updated", "private"), ("auth.joined", "members")]
    assert items[0]["metadata"] == {"fields": ["bio", "visibility"]}


async def test_a_deleted_members_activity_disappears(coderic_kernel: Any) -> None:
    log = coderic_kernel.plugin("journal").activity
    ana = await coderic_kernel.create_user("ana@example.org")
    bea = await coderic_kernel.create_user("bea@example.org")
    await log.record(ana, "journal.published", Resource("journal.entry", "1"), {"title": "Hi"}, visibility="public")
    await log.record(bea, "journal.published", visibility="public")

    exported = await activity.export_for(ana)
    assert [e["type"] for e in exported] == ["auth.joined", "journal.published"]
    assert exported[1]["metadata"] == {"title": "Hi"} and isinstance(exported[1]["created_at"], str)

    await User.update({User.status: "deleted"}).where(User.uid == ana)
    assert (await coderic_kernel.client.get(f"/api/v1/users/{ana}/activity")).status_code == 404
    assert await activity.delete_for(ana) == 2
    assert await activity.delete_for(ana) == 0  # idempotent
    assert await Activity.count().where(Activity.actor_id == ana) == 0
    assert await Activity.count().where(Activity.actor_id == bea) == 2  # others' history stays
