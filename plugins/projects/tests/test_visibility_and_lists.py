"""Who sees which project: private ones are invisible to non-members in lists and by direct
link; members-only ones need a sign-in. Lists: filters, sorts, cursor pages, my projects."""

from __future__ import annotations

from typing import Any

from projects_testing import create


async def ids(client: Any, url: str = "/api/v1/projects", **query: Any) -> list[int]:
    response = await client.get(url, params=query)
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["items"]]


async def test_private_projects_are_invisible_to_non_members_everywhere(coderic_user: Any, coderic_client: Any) -> None:
    ana, bob = await coderic_user("ana@example.org"), await coderic_user("bob@example.org")
    moderator = await coderic_user("mod@example.org", role="moderator")
    public = await create(ana.client, "Open", visibility="public")
    members = await create(ana.client, "Members", visibility="members")
    secret = await create(ana.client, "Secret", visibility="private")
    assert await ids(coderic_client) == [public["id"]]
    assert await ids(bob.client) == [members["id"], public["id"]]
    assert await ids(ana.client) == [secret["id"], members["id"], public["id"]]
    assert await ids(moderator.client) == [secret["id"], members["id"], public["id"]]
    path = f"/api/v1/projects/{secret['id']}"
    for url in (path, "/api/v1/projects/by-slug/secret", path + "/members", path + "/updates"):
        assert (await bob.client.get(url)).status_code == 404, url
        assert (await coderic_client.get(url)).status_code == 401, url
    assert (await bob.client.get(f"/api/v1/projects/{members['id']}")).status_code == 200
    assert (await coderic_client.get(f"/api/v1/projects/{members['id']}")).status_code == 401
    # a non-member cannot act on it either, and learns nothing: 404 as for a project that does not exist
    for method, url, body in (("PUT", path + "/follow", None), ("POST", path + "/join-requests", {}),
                              ("PATCH", path, {"name": "x"}), ("POST", path + "/leave", None)):
        response = await bob.client.request(method, url, json=body) if body is not None else await bob.client.request(method, url)
        assert response.status_code == 404, (method, url, response.status_code)
    assert (await moderator.client.get(path)).status_code == 200
    invitation = await ana.client.post(path + "/invitations", json={"user_id": bob.id})
    await bob.client.post(f"/api/v1/projects/invitations/{invitation.json()['id']}/accept")
    assert (await bob.client.get(path)).status_code == 200
    assert secret["id"] in await ids(bob.client)
    assert await ids(bob.client, "/api/v1/projects/mine") == [secret["id"]]


async def test_filters_by_status_tag_skill_and_member(coderic_user: Any, coderic_client: Any) -> None:
    ana, bea = await coderic_user("ana@example.org"), await coderic_user("bea@example.org")
    web = await create(ana.client, "Web", status="active", tags=["python", "web"], skills=["css"])
    cli = await create(ana.client, "CLI", status="idea", tags=["python"], skills=["rust"])
    other = await create(bea.client, "Other", status="active", tags=["go"])
    assert await ids(coderic_client, status="active") == [other["id"], web["id"]]
    assert await ids(coderic_client, tag="python") == [cli["id"], web["id"]]
    assert await ids(coderic_client, tag="Python") == [cli["id"], web["id"]]
    assert await ids(coderic_client, skill="rust") == [cli["id"]]
    assert await ids(coderic_client, tag="python", status="idea") == [cli["id"]]
    assert await ids(coderic_client, member=bea.id) == [other["id"]]
    assert await ids(coderic_client, tag="nothing") == []
    assert (await coderic_client.get("/api/v1/projects", params={"status": "bogus"})).status_code == 422
    assert (await coderic_client.get("/api/v1/projects", params={"member": "me"})).status_code == 422


async def test_sorts_page_through_every_project_once(coderic_user: Any, coderic_client: Any) -> None:
    ana = await coderic_user("ana@example.org")
    fans = [await coderic_user(f"fan{i}@example.org") for i in range(3)]
    made = [await create(ana.client, f"P{i}") for i in range(7)]
    for count, project in zip((3, 1, 3, 2), made[1:5], strict=True):
        for fan in fans[:count]:
            assert (await fan.client.put(f"/api/v1/projects/{project['id']}/follow")).status_code == 200
    await ana.client.patch(f"/api/v1/projects/{made[0]['id']}", json={"summary": "touched last"})

    async def walk(sort: str) -> list[int]:
        seen, cursor = [], None
        while True:
            query = {"sort": sort, "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await coderic_client.get("/api/v1/projects", params=query)).json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    newest = [p["id"] for p in reversed(made)]
    assert await walk("newest") == newest
    assert await walk("most_followed") == [made[3]["id"], made[1]["id"], made[4]["id"], made[2]["id"],
                                           made[6]["id"], made[5]["id"], made[0]["id"]]
    assert (await walk("recently_updated"))[0] == made[0]["id"]
    assert sorted(await walk("recently_updated")) == sorted(newest)


async def test_following_counts_and_the_list_of_followed_projects(coderic_user: Any) -> None:
    ana, bea = await coderic_user("ana@example.org"), await coderic_user("bea@example.org")
    project = await create(ana.client, "Kernel")
    other = await create(ana.client, "Other")
    path = f"/api/v1/projects/{project['id']}/follow"
    assert (await bea.client.put(path)).json() == {"following": True, "followers_count": 1}
    assert (await bea.client.put(path)).json() == {"following": True, "followers_count": 1}
    assert (await bea.client.get(f"/api/v1/projects/{project['id']}")).json()["following"] is True
    assert await ids(bea.client, "/api/v1/projects/following") == [project["id"]]
    assert other["id"] not in await ids(bea.client, "/api/v1/projects/following")
    assert (await bea.client.delete(path)).json() == {"following": False, "followers_count": 0}
    assert (await bea.client.delete(path)).json() == {"following": False, "followers_count": 0}
    assert await ids(bea.client, "/api/v1/projects/following") == []
