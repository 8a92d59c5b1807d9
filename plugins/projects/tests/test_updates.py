"""Updates: owners and maintainers post; followers and members hear of it by every channel they
chose (inbox, real time, email), the author does not, and nobody else does."""

from __future__ import annotations

import json
from typing import Any

from projects_testing import create


async def test_an_update_reaches_followers_and_members_by_inbox_realtime_and_email(
    coderic_kernel: Any, coderic_user: Any, coderic_emails: Any, coderic_notifications: Any, coderic_events: Any
) -> None:
    ana = await coderic_user("ana@example.org", name="Ana")
    fan = await coderic_user("fan@example.org", name="Fan")
    quiet = await coderic_user("quiet@example.org", name="Quiet")
    stranger = await coderic_user("stranger@example.org")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    for follower in (fan, quiet):
        await follower.client.put(f"{path}/follow")
    turned_off = await quiet.client.patch("/api/v1/notifications/preferences",
                                          json={"types": {"projects.update": {"email": "off"}}})
    assert turned_off.status_code == 200, turned_off.text
    live = coderic_kernel.realtime(fan.id)
    posted = await ana.client.post(f"{path}/updates", json={"title": "0.2 is out", "body": "Email **and** jobs."})
    assert posted.status_code == 201, posted.text
    update = posted.json()
    assert update["body_html"] == "<p>Email <strong>and</strong> jobs.</p>\n" and update["author_id"] == ana.id

    await coderic_notifications(fan.id)  # waits for the queued fan-out, then the inbox is as the fan sees it
    [inbox] = (await fan.client.get("/api/v1/notifications")).json()["items"]
    assert inbox["type"] == "projects.update" and inbox["data"]["title"] == "Kernel: 0.2 is out"
    assert inbox["data"]["url"] == f"https://coderic.example/projects/kernel/updates/{update['id']}"
    message = await live.next(timeout=5)
    assert message is not None and json.loads(message[2])["notification"]["data"]["update_id"] == update["id"]

    [mail] = await coderic_emails(to="fan@example.org", template="projects.update")
    assert mail.subject == "Kernel: 0.2 is out" and "Email **and** jobs." in mail.text and "Fan" in mail.text
    assert await coderic_emails(to="quiet@example.org") == []
    [held_back] = await coderic_notifications(quiet.id, "projects.update")
    assert held_back.in_app and held_back.email == ""
    assert await coderic_notifications(ana.id, "projects.update") == []
    assert await coderic_notifications(stranger.id) == []
    assert await coderic_emails(to="ana@example.org", template="projects.update") == []
    assert [e.data["update_id"] for e in coderic_events if e.name == "projects.update_posted"] == [update["id"]]


async def test_members_hear_of_updates_too_and_may_post_as_maintainers(coderic_user: Any, coderic_notifications: Any) -> None:
    ana, bea = await coderic_user("ana@example.org"), await coderic_user("bea@example.org")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    invitation = await ana.client.post(f"{path}/invitations", json={"user_id": bea.id, "role": "maintainer"})
    await bea.client.post(f"/api/v1/projects/invitations/{invitation.json()['id']}/accept")
    posted = await bea.client.post(f"{path}/updates", json={"title": "From a maintainer"})
    assert posted.status_code == 201
    [heard] = await coderic_notifications(ana.id, "projects.update")
    assert heard.data["update_id"] == posted.json()["id"]


async def test_updates_page_newest_first_and_touch_the_project(coderic_user: Any, coderic_client: Any) -> None:
    ana = await coderic_user("ana@example.org")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    posted = [(await ana.client.post(f"{path}/updates", json={"title": f"U{i}"})).json() for i in range(5)]
    first = (await coderic_client.get(f"{path}/updates", params={"limit": 3})).json()
    assert [u["title"] for u in first["items"]] == ["U4", "U3", "U2"]
    rest = (await coderic_client.get(f"{path}/updates", params={"limit": 3, "cursor": first["next_cursor"]})).json()
    assert [u["title"] for u in rest["items"]] == ["U1", "U0"] and rest["next_cursor"] is None
    after = (await coderic_client.get(path)).json()["updated_at"]
    assert after >= posted[-1]["created_at"][:19]
    assert (await coderic_client.get(f"{path}/updates", params={"cursor": "!!"})).status_code == 422


async def test_followers_hear_nothing_of_a_project_made_private(coderic_user: Any, coderic_notifications: Any) -> None:
    ana, fan, bea = [await coderic_user(f"{n}@example.org") for n in ("ana", "fan", "bea")]
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    await fan.client.put(f"{path}/follow")
    await bea.client.put(f"{path}/follow")
    invitation = await ana.client.post(f"{path}/invitations", json={"user_id": bea.id})
    await bea.client.post(f"/api/v1/projects/invitations/{invitation.json()['id']}/accept")
    await ana.client.patch(path, json={"visibility": "private"})
    assert (await ana.client.post(f"{path}/updates", json={"title": "Members only now"})).status_code == 201
    assert await coderic_notifications(fan.id, "projects.update") == []
    assert len(await coderic_notifications(bea.id, "projects.update")) == 1
    assert (await fan.client.get("/api/v1/projects/following")).json()["items"] == []
