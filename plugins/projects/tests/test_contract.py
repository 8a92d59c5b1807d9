"""The plugin keeps the contract every plugin keeps (``check_plugin``), its personal data,
its profile section, cover images through kernel storage, and the GitHub stats job against a
local fake of the GitHub API."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from coderic_sdk.testing import check_personal_data, check_plugin
from projects_testing import create
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]


async def test_the_plugin_keeps_the_plugin_contract(coderic_kernel: Any) -> None:
    # The kernel's access table (tests/access_table.txt) must have a line for every route.
    contract = await check_plugin(coderic_kernel, "projects", access_table=ROOT / "tests" / "access_table.txt")
    assert "projects_project" in contract.tables and "projects.update" in contract.notification_types
    assert len(contract.migrations) == 2


async def test_personal_data_is_exported_then_deleted_and_projects_pass_to_the_next_member(
    coderic_kernel: Any, coderic_user: Any
) -> None:
    ana, bea, cid = [await coderic_user(f"{n}@example.org") for n in ("ana", "bea", "cid")]
    await create(cid.client, "Cid's")  # the bystander, whose data must not change
    shared = await create(ana.client, "Shared")
    alone = await create(ana.client, "Alone")
    theirs = await create(bea.client, "Theirs")
    path = f"/api/v1/projects/{shared['id']}"
    invitation = await ana.client.post(f"{path}/invitations", json={"user_id": bea.id})
    await bea.client.post(f"/api/v1/projects/invitations/{invitation.json()['id']}/accept")
    await ana.client.put(f"/api/v1/projects/{theirs['id']}/follow")
    await ana.client.post(f"{path}/updates", json={"title": "Mine", "body": "text"})
    await cid.client.put(f"/api/v1/projects/{shared['id']}/follow")
    exported = await check_personal_data(coderic_kernel, "projects", ana.id, bystander=cid.id)
    mine = exported["projects"]
    assert sorted(p["name"] for p in mine["projects_created"]) == ["Alone", "Shared"]
    assert [f["project"] for f in mine["follows"]] == [theirs["id"]] and mine["updates"][0]["title"] == "Mine"
    # the shared project passed to Bea; the one Ana alone belonged to is gone; Bea's keeps its count right
    assert (await bea.client.get(path)).json()["your_role"] == "owner"
    assert (await bea.client.get(f"/api/v1/projects/{alone['id']}")).status_code == 404
    assert (await bea.client.get(f"/api/v1/projects/{theirs['id']}")).json()["followers_count"] == 0
    update = (await bea.client.get(f"{path}/updates")).json()["items"][0]
    assert update["author_id"] is None and update["title"] == "Mine"


async def test_a_members_profile_lists_their_public_projects(coderic_user: Any, coderic_client: Any) -> None:
    ana = await coderic_user("ana@example.org")
    await create(ana.client, "Open")
    await create(ana.client, "Hidden", visibility="private")
    profile = (await coderic_client.get(f"/api/v1/users/{ana.id}")).json()
    section = profile["sections"]["projects.projects"]
    assert [(p["name"], p["role"]) for p in section["projects"]] == [("Open", "owner")]


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 200), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def upload(client: Any, purpose: str = "projects.cover") -> str:
    response = await client.post("/api/v1/files", data={"purpose": purpose}, files={"file": ("cover.png", png(), "image/png")})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_a_cover_is_an_uploaded_image_of_the_caller(coderic_user: Any, coderic_client: Any) -> None:
    ana, bob = await coderic_user("ana@example.org"), await coderic_user("bob@example.org")
    cover = await upload(ana.client)
    project = await create(ana.client, "Kernel", cover_file_id=cover)
    assert project["cover_url"] and cover in project["cover_url"]
    listed = (await coderic_client.get("/api/v1/projects")).json()["items"][0]
    # The same file; the signature's expiry counts from each answer, so the query may differ.
    assert listed["cover_url"].split("?")[0] == project["cover_url"].split("?")[0]
    assert "signature=" in listed["cover_url"]
    stolen = await bob.client.post("/api/v1/projects", json={"name": "Bob's", "cover_file_id": cover})
    assert stolen.status_code == 422
    removed = await ana.client.patch(f"/api/v1/projects/{project['id']}", json={"cover_file_id": None})
    assert removed.json()["cover_url"] is None
    assert (await ana.client.get(f"/api/v1/files/{cover}")).status_code == 404


class FakeGitHub(BaseHTTPRequestHandler):
    """``GET /repos/<owner>/<repo>`` as GitHub answers it, for the repositories in ``REPOS``."""

    REPOS = {"coderic/kernel": {"stargazers_count": 42, "language": "Python", "pushed_at": "2026-11-29T10:00:00Z"}}
    calls: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        type(self).calls.append(self.path)
        found = self.REPOS.get(self.path.removeprefix("/repos/").lower())  # GitHub ignores case too
        body = json.dumps(found or {"message": "Not Found"}).encode()
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def github() -> Iterator[str]:
    FakeGitHub.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def coderic_config(github: str, tmp_path: Any) -> dict[str, Any]:
    return {"email_url": f"file://{tmp_path / 'mail'}", "outbox_poll_seconds": 0.05, "rate_limit_enabled": False,
            "plugins.projects.github_sync": True, "plugins.projects.github_api_url": github}


async def test_github_stats_are_fetched_by_a_job_and_cached(coderic_kernel: Any, coderic_user: Any) -> None:
    ana = await coderic_user("ana@example.org")
    first = await create(ana.client, "Kernel", repository_url="https://github.com/coderic/kernel")
    assert first["github"] is None  # the request never waits for GitHub
    await coderic_kernel.settle()  # its job has run: the next project of the repository finds the cache
    second = await create(ana.client, "Fork", repository_url="https://github.com/Coderic/Kernel.git")
    missing = await create(ana.client, "Gone", repository_url="https://github.com/coderic/gone")
    await coderic_kernel.settle()
    stats = (await ana.client.get(f"/api/v1/projects/{first['id']}")).json()["github"]
    assert (stats["stars"], stats["language"], stats["pushed_at"]) == (42, "Python", "2026-11-29T10:00:00Z")
    assert (await ana.client.get(f"/api/v1/projects/{second['id']}")).json()["github"]["stars"] == 42
    gone = (await ana.client.get(f"/api/v1/projects/{missing['id']}")).json()["github"]
    assert gone["stars"] is None and gone["synced_at"] is not None
    assert sorted(FakeGitHub.calls) == ["/repos/coderic/gone", "/repos/coderic/kernel"]  # the second was cached


def test_nothing_in_the_plugin_imports_the_kernel() -> None:
    """A plugin types against the SDK only, so the kernel's internals stay free to change."""
    import re

    package = ROOT / "plugins" / "projects"
    offenders = [str(path.relative_to(package)) for path in package.rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+coderic_kernel\b", path.read_text(encoding="utf-8"), re.MULTILINE)]
    assert offenders == []
