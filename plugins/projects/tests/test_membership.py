"""Membership through the API: invitations (accept, decline, expire, cancel), join requests
(approve, reject), roles granting what they should, leaving, the last-owner rule, transfer."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from coderic_projects.tables import Invitation
from projects_testing import create, field_errors


async def invite(owner: Any, project: dict[str, Any], user_id: str, role: str = "contributor") -> dict[str, Any]:
    response = await owner.client.post(f"/api/v1/projects/{project['id']}/invitations",
                                       json={"user_id": user_id, "role": role, "message": "Join us!"})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_an_invitation_notifies_by_inbox_and_email_and_accepting_grants_the_role(
    coderic_user: Any, coderic_emails: Any, coderic_notifications: Any, coderic_events: Any
) -> None:
    ana = await coderic_user("ana@example.org", name="Ana")
    bea = await coderic_user("bea@example.org", name="Bea", language="es")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    invitation = await invite(ana, project, bea.id, "maintainer")
    assert invitation["status"] == "pending" and invitation["project_name"] == "Kernel"
    [notified] = await coderic_notifications(bea.id, "projects.invitation")
    assert notified.in_app and notified.data["title"] == "You are invited to join Kernel"
    [mail] = await coderic_emails(to="bea@example.org", template="projects.invitation")
    assert mail.subject == "Te invitan a unirte a Kernel" and "mantenedor/a" in mail.text and "Join us!" in mail.text
    assert "https://coderic.example/projects/kernel" in mail.text
    mine = (await bea.client.get("/api/v1/projects/invitations")).json()["items"]
    assert [i["id"] for i in mine] == [invitation["id"]]
    assert (await bea.client.patch(path, json={"summary": "Before"})).status_code == 403
    again = await ana.client.post(f"{path}/invitations", json={"user_id": bea.id})
    assert again.status_code == 409
    accepted = await bea.client.post(f"/api/v1/projects/invitations/{invitation['id']}/accept")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    assert (await bea.client.patch(path, json={"summary": "By a maintainer"})).status_code == 200
    assert (await bea.client.post(f"{path}/invitations", json={"user_id": ana.id})).status_code == 403  # owners only
    members = (await bea.client.get(f"{path}/members")).json()["items"]
    assert [(m["name"], m["role"]) for m in members] == [("Ana", "owner"), ("Bea", "maintainer")]
    assert (await bea.client.post(f"/api/v1/projects/invitations/{invitation['id']}/accept")).status_code == 409
    added = [e.data for e in coderic_events if e.name == "projects.member_added"]
    assert added == [{"project_id": project["id"], "user_id": bea.id, "role": "maintainer"}]
    assert [p["id"] for p in (await bea.client.get("/api/v1/projects/mine")).json()["items"]] == [project["id"]]


async def test_invitations_can_be_declined_cancelled_or_expire_and_only_the_invitee_answers(coderic_user: Any) -> None:
    ana, bea, cid = [await coderic_user(f"{n}@example.org") for n in ("ana", "bea", "cid")]
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    first = await invite(ana, project, bea.id)
    assert (await cid.client.post(f"/api/v1/projects/invitations/{first['id']}/accept")).status_code == 404
    declined = await bea.client.post(f"/api/v1/projects/invitations/{first['id']}/decline")
    assert declined.json()["status"] == "declined"
    second = await invite(ana, project, bea.id)
    assert (await ana.client.delete(f"{path}/invitations/{second['id']}")).status_code == 204
    assert (await bea.client.post(f"/api/v1/projects/invitations/{second['id']}/accept")).status_code == 409
    third = await invite(ana, project, bea.id)
    await Invitation.update({Invitation.expires_at: datetime.now(timezone.utc) - timedelta(minutes=1)}).where(
        Invitation.id == third["id"])
    assert (await bea.client.post(f"/api/v1/projects/invitations/{third['id']}/accept")).status_code == 410
    listed = {i["id"]: i["status"] for i in (await ana.client.get(f"{path}/invitations")).json()["items"]}
    assert listed == {first["id"]: "declined", second["id"]: "cancelled", third["id"]: "expired"}
    assert (await bea.client.get("/api/v1/projects/invitations")).json()["items"] == []
    unknown = await ana.client.post(f"{path}/invitations", json={"user_id": "f" * 32})
    assert unknown.status_code == 422 and "body.user_id" in field_errors(unknown)
    assert (await ana.client.post(f"{path}/invitations", json={"user_id": ana.id})).status_code == 409


async def test_join_requests_notify_the_owners_and_approval_makes_a_contributor(
    coderic_user: Any, coderic_notifications: Any
) -> None:
    ana, bea, cid = [await coderic_user(f"{n}@example.org", name=n.title()) for n in ("ana", "bea", "cid")]
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    asked = await bea.client.post(f"{path}/join-requests", json={"message": "I write docs"})
    assert asked.status_code == 201 and asked.json()["status"] == "pending" and asked.json()["name"] == "Bea"
    assert (await bea.client.post(f"{path}/join-requests", json={})).status_code == 409
    [notified] = await coderic_notifications(ana.id, "projects.join_request")
    assert notified.data["body"] == "I write docs"
    assert (await bea.client.get(f"{path}/join-requests")).status_code == 403
    assert (await cid.client.post(f"{path}/join-requests/{asked.json()['id']}/approve")).status_code == 403
    approved = await ana.client.post(f"{path}/join-requests/{asked.json()['id']}/approve")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert (await bea.client.get(path)).json()["your_role"] == "contributor"
    assert (await bea.client.patch(path, json={"name": "Contributors do not edit"})).status_code == 403
    assert (await ana.client.post(f"{path}/join-requests/{asked.json()['id']}/reject")).status_code == 409
    other = await cid.client.post(f"{path}/join-requests", json={})
    rejected = await ana.client.post(f"{path}/join-requests/{other.json()['id']}/reject")
    assert rejected.json()["status"] == "rejected"
    assert (await cid.client.get(path)).json()["your_role"] is None
    assert (await bea.client.post(f"{path}/join-requests", json={})).status_code == 409  # a member already


async def test_the_last_owner_cannot_leave_until_ownership_is_transferred(coderic_user: Any) -> None:
    ana, bea = await coderic_user("ana@example.org"), await coderic_user("bea@example.org")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    assert (await ana.client.post(f"{path}/leave")).status_code == 409
    assert (await ana.client.patch(f"{path}/members/{ana.id}", json={"role": "contributor"})).status_code == 409
    assert (await ana.client.delete(f"{path}/members/{ana.id}")).status_code == 409
    not_member = await ana.client.post(f"{path}/transfer", json={"user_id": bea.id})
    assert not_member.status_code == 422 and "body.user_id" in field_errors(not_member)
    invitation = await invite(ana, project, bea.id)
    await bea.client.post(f"/api/v1/projects/invitations/{invitation['id']}/accept")
    moved = await ana.client.post(f"{path}/transfer", json={"user_id": bea.id, "stay_as": "contributor"})
    assert moved.status_code == 200, moved.text
    assert {m["user_id"]: m["role"] for m in moved.json()["items"]} == {ana.id: "contributor", bea.id: "owner"}
    assert (await ana.client.patch(path, json={"name": "Not mine any more"})).status_code == 403
    assert (await ana.client.post(f"{path}/leave")).status_code == 204
    assert (await ana.client.post(f"{path}/leave")).status_code == 409
    assert (await bea.client.post(f"{path}/leave")).status_code == 409
    grants = (await ana.client.get("/api/v1/me/roles")).json()["grants"]
    mine = [g for g in grants if g["resource_id"] == str(project["id"])]
    assert {g["role"] for g in mine} == {"project_owner", "projects.contributor"} and all(g["revoked_at"] for g in mine)


async def test_owners_change_roles_and_remove_members(coderic_user: Any) -> None:
    ana, bea = await coderic_user("ana@example.org"), await coderic_user("bea@example.org")
    project = await create(ana.client, "Kernel")
    path = f"/api/v1/projects/{project['id']}"
    invitation = await invite(ana, project, bea.id)
    await bea.client.post(f"/api/v1/projects/invitations/{invitation['id']}/accept")
    assert (await bea.client.patch(path, json={"name": "x"})).status_code == 403
    promoted = await ana.client.patch(f"{path}/members/{bea.id}", json={"role": "maintainer"})
    assert {m["user_id"]: m["role"] for m in promoted.json()["items"]}[bea.id] == "maintainer"
    assert (await bea.client.patch(path, json={"name": "Renamed"})).status_code == 200
    assert (await ana.client.patch(f"{path}/members/{bea.id}", json={"role": "boss"})).status_code == 422
    assert (await ana.client.delete(f"{path}/members/{bea.id}")).status_code == 204
    assert (await bea.client.patch(path, json={"name": "Gone"})).status_code == 403
    assert (await ana.client.delete(f"{path}/members/{bea.id}")).status_code == 404
