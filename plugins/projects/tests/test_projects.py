"""Projects through the API: creating (slugs, validation), reading by id and slug, editing by
role, scoped ownership, archive and soft delete, Markdown rendered harmless, events."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from projects_testing import create, field_errors


async def test_the_creator_owns_the_project_and_its_slug_comes_from_the_name(coderic_user: Any, coderic_events: Any) -> None:
    ana = await coderic_user("ana@example.org", name="Ana")
    project = await create(ana.client, "Café Ñandú 2.0", summary="A café", tags=["Python", "web", "python"],
                           skills=["Docs"], repository_url="https://github.com/coderic/kernel",
                           website="https://coderic.org")
    assert project["slug"] == "cafe-nandu-2-0"
    assert project["your_role"] == "owner" and project["members_count"] == 1 and project["created_by"] == ana.id
    assert project["tags"] == ["python", "web"] and project["skills"] == ["docs"]
    assert (project["status"], project["visibility"]) == ("idea", "public")
    again = await create(ana.client, "Café Ñandú 2.0")
    assert again["slug"] == "cafe-nandu-2-0-2"
    by_slug = await ana.client.get("/api/v1/projects/by-slug/cafe-nandu-2-0")
    assert by_slug.status_code == 200 and by_slug.json()["id"] == project["id"]
    members = (await ana.client.get(f"/api/v1/projects/{project['id']}/members")).json()["items"]
    assert [(m["user_id"], m["name"], m["role"]) for m in members] == [(ana.id, "Ana", "owner")]
    grants = (await ana.client.get("/api/v1/me/roles")).json()["grants"]
    assert {(g["role"], g["resource_type"], g["resource_id"]) for g in grants} == {
        ("project_owner", "projects.project", str(project["id"])), ("project_owner", "projects.project", str(again["id"]))}
    created = [e for e in coderic_events if e.name == "projects.created"]
    assert [e.data["project_id"] for e in created] == [project["id"], again["id"]]


async def test_bad_input_names_the_field_and_reason(coderic_user: Any) -> None:
    ana = await coderic_user("ana@example.org")
    cases = [
        ({"name": ""}, "body.name"),
        ({"name": "X", "repository_url": "https://gitlab.com/a/b"}, "body.repository_url"),
        ({"name": "X", "repository_url": "javascript:alert(1)"}, "body.repository_url"),
        ({"name": "X", "website": "ftp://example.org"}, "body.website"),
        ({"name": "X", "status": "archived"}, "body.status"),
        ({"name": "X", "visibility": "secret"}, "body.visibility"),
        ({"name": "X", "tags": ["<b>"]}, "body.tags"),
        ({"name": "X", "slug": "Not A Slug"}, "body.slug"),
        ({"name": "X", "owner": "me"}, "body.owner"),
        ({"name": "X", "cover_file_id": "0" * 32}, "body.cover_file_id"),
    ]
    for body, where in cases:
        response = await ana.client.post("/api/v1/projects", json=body)
        assert response.status_code == 422, (body, response.text)
        assert where in field_errors(response), (body, response.json())
    await create(ana.client, "Kernel")
    taken = await ana.client.post("/api/v1/projects", json={"name": "Other", "slug": "kernel"})
    assert taken.status_code == 409 and "body.slug" in field_errors(taken)
    assert (await ana.client.get("/api/v1/projects?cursor=nonsense")).status_code == 422
    assert (await ana.client.get("/api/v1/projects/0")).status_code == 422
    assert (await ana.client.get("/api/v1/projects/999")).status_code == 404


async def test_guests_may_read_public_projects_but_not_change_anything(coderic_user: Any, coderic_client: Any) -> None:
    ana = await coderic_user("ana@example.org")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    read = await coderic_client.get(path)
    assert read.status_code == 200 and read.json()["your_role"] is None and read.json()["following"] is False
    assert (await coderic_client.post("/api/v1/projects", json={"name": "Mine"})).status_code == 401
    assert (await coderic_client.patch(path, json={"name": "Hacked"})).status_code == 401
    assert (await coderic_client.put(path + "/follow")).status_code == 401


async def test_the_owner_of_one_project_cannot_touch_another(coderic_user: Any) -> None:
    ana, bob = await coderic_user("ana@example.org"), await coderic_user("bob@example.org")
    mine, theirs = await create(ana.client, "Ana's"), await create(bob.client, "Bob's")
    assert (await ana.client.patch(f"/api/v1/projects/{mine['id']}", json={"name": "Renamed"})).status_code == 200
    theirs_path = f"/api/v1/projects/{theirs['id']}"
    assert (await ana.client.patch(theirs_path, json={"name": "Mine now"})).status_code == 403
    assert (await ana.client.delete(theirs_path)).status_code == 403
    assert (await ana.client.post(theirs_path + "/archive")).status_code == 403
    assert (await ana.client.post(theirs_path + "/updates", json={"title": "Hi"})).status_code == 403
    assert (await ana.client.post(theirs_path + "/invitations", json={"user_id": ana.id})).status_code == 403
    assert (await ana.client.post(theirs_path + "/transfer", json={"user_id": ana.id})).status_code == 403
    assert (await ana.client.delete(f"{theirs_path}/members/{bob.id}")).status_code == 403
    assert (await bob.client.get(theirs_path)).json()["name"] == "Bob's"


async def test_editing_renders_markdown_and_changes_only_what_is_given(coderic_user: Any, coderic_events: Any) -> None:
    ana = await coderic_user("ana@example.org")
    project = await create(ana.client, "Kernel", summary="Keep me", tags=["a"])
    path = f"/api/v1/projects/{project['id']}"
    edited = await ana.client.patch(path, json={"description": "**bold** and [link](https://coderic.org)",
                                                "status": "active", "slug": "the-kernel", "tags": ["b", "c"]})
    assert edited.status_code == 200, edited.text
    body = edited.json()
    assert body["summary"] == "Keep me" and body["status"] == "active" and body["slug"] == "the-kernel"
    assert body["tags"] == ["b", "c"]
    assert "<strong>bold</strong>" in body["description_html"]
    assert '<a href="https://coderic.org" rel="nofollow noopener noreferrer">link</a>' in body["description_html"]
    assert (await ana.client.get("/api/v1/projects/by-slug/kernel")).status_code in (401, 404)
    assert (await ana.client.get("/api/v1/projects/by-slug/the-kernel")).status_code == 200
    for nulled in ("name", "slug", "status", "visibility"):
        refused = await ana.client.patch(path, json={nulled: None})
        assert refused.status_code == 422 and f"body.{nulled}" in field_errors(refused), refused.text
    [updated] = [e for e in coderic_events if e.name == "projects.updated"]
    assert updated.data == {"project_id": project["id"], "fields": ["description", "slug", "status", "tags"]}


async def test_markdown_with_scripts_and_html_is_rendered_harmless(coderic_user: Any, coderic_client: Any) -> None:
    ana = await coderic_user("ana@example.org")
    evil = ("<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n[click](javascript:alert(1))\n\n"
            "[data](data:text/html;base64,PHNjcmlwdD4=)\n\n<iframe src='https://evil.example'></iframe>\n\n"
            "![img](https://coderic.org/a.png \"t\")\n\n<a href=\"https://evil.example\" onclick=\"steal()\">x</a>")
    project = await create(ana.client, "Kernel", description=evil)
    html = (await coderic_client.get(f"/api/v1/projects/{project['id']}")).json()["description_html"]
    assert_harmless(html)
    assert "&lt;script&gt;" in html  # shown as text, not dropped silently
    assert '<img src="https://coderic.org/a.png" alt="img" title="t">' in html
    update = await ana.client.post(f"/api/v1/projects/{project['id']}/updates", json={"title": "<b>T</b>", "body": evil})
    assert update.status_code == 201
    assert_harmless(update.json()["body_html"])


class Elements(HTMLParser):
    """Every element and attribute a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def assert_harmless(html: str) -> None:
    parser = Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag not in {"script", "iframe", "object", "embed", "style", "form", "input"}, (tag, html)
        assert not [a for a in attrs if a.startswith("on") or a == "style"], (tag, attrs)
        for name in ("href", "src"):
            if attrs.get(name) is not None:
                assert attrs[name].lower().startswith(("https://", "http://", "mailto:")), (tag, attrs)


async def test_an_archived_project_is_read_only_and_listed_only_when_asked(coderic_user: Any, coderic_events: Any) -> None:
    ana = await coderic_user("ana@example.org")
    project = await create(ana.client, "Kernel", status="active")
    path = f"/api/v1/projects/{project['id']}"
    archived = await ana.client.post(path + "/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "archived" and archived.json()["archived_at"]
    assert "projects.archived" in [e.name for e in coderic_events]
    assert (await ana.client.patch(path, json={"name": "Edit"})).status_code == 403
    assert (await ana.client.post(path + "/updates", json={"title": "Hi"})).status_code == 403
    assert (await ana.client.get(path)).status_code == 200
    assert (await ana.client.get("/api/v1/projects")).json()["items"] == []
    assert [p["id"] for p in (await ana.client.get("/api/v1/projects?status=archived")).json()["items"]] == [project["id"]]
    restored = await ana.client.post(path + "/unarchive")
    assert restored.json()["status"] == "active" and restored.json()["archived_at"] is None
    assert (await ana.client.patch(path, json={"name": "Edit"})).status_code == 200


async def test_a_deleted_project_is_gone_for_everyone_and_frees_its_slug(coderic_user: Any) -> None:
    ana = await coderic_user("ana@example.org")
    admin = await coderic_user("admin@example.org", role="admin")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    assert (await ana.client.delete(path)).status_code == 204
    for client in (ana.client, admin.client):
        assert (await client.get(path)).status_code == 404
        assert (await client.get("/api/v1/projects/by-slug/kernel")).status_code == 404
        assert (await client.get("/api/v1/projects")).json()["items"] == []
    assert (await ana.client.patch(path, json={"name": "Back"})).status_code == 404
    assert (await create(ana.client, "Kernel"))["slug"] == "kernel"
