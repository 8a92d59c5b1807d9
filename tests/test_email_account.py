"""Email (issue 5) for members and admins over the API: a member's preferences and newsletter
consent; admins seeing messages with their events, and marking addresses as bouncing.

Mail goes to a real SMTP server (aiosmtpd) started by the test, through the outbox.
"""

from __future__ import annotations

from typing import Any

import pytest
from coderic_kernel.email.tables import EmailSubscription
from services import eventually
from smtp_server import SMTPServer, smtp  # noqa: F401

PUBLIC = "https://coderic.example"


@pytest.fixture
def coderic_config(smtp: SMTPServer) -> dict[str, Any]:
    return {"email_url": smtp.url(), "public_url": PUBLIC, "secret_key": "s" * 40, "outbox_poll_seconds": 0.05}


async def test_a_member_reads_and_changes_their_preferences(coderic_kernel: Any) -> None:
    user = await coderic_kernel.create_user("Ana@Example.org")
    client = await coderic_kernel.sign_in(user)
    shown = (await client.get("/api/v1/email/preferences")).json()
    assert shown == {"address": "ana@example.org", "language": None, "tracking": True, "notifications": True,
                     "digest": True, "newsletter": {"subscribed": False, "consent_at": None, "consent_source": None},
                     "suppressed": None}
    changed = (await client.patch("/api/v1/email/preferences", json={
        "language": "es", "tracking": False, "digest": False, "newsletter": True,
    })).json()
    assert changed["language"] == "es" and changed["tracking"] is False and changed["digest"] is False
    assert changed["notifications"] is True
    assert changed["newsletter"]["subscribed"] is True and changed["newsletter"]["consent_source"] == "preferences (API)"
    assert changed["newsletter"]["consent_at"] is not None
    out = (await client.patch("/api/v1/email/preferences", json={"newsletter": False})).json()
    assert out["newsletter"]["subscribed"] is False and out["tracking"] is False
    row = await EmailSubscription.select().where(EmailSubscription.address == "ana@example.org").first()
    assert row["unsubscribed_at"] is not None
    for bad in ({"language": "fr"}, {"tracking": "maybe"}, {"address": "x@example.org"}):
        assert (await client.patch("/api/v1/email/preferences", json=bad)).status_code == 422, bad
    assert (await coderic_kernel.client.get("/api/v1/email/preferences")).status_code == 401
    nobody = await coderic_kernel.sign_in(await coderic_kernel.create_user(None))
    assert (await nobody.get("/api/v1/email/preferences")).status_code == 409


async def test_admins_see_messages_with_their_events_and_members_do_not(coderic_kernel: Any, smtp: SMTPServer) -> None:
    admin = await coderic_kernel.sign_in(await coderic_kernel.create_user("root@example.org", roles=["admin"]))
    member = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))
    uid = await coderic_kernel.plugin("email").email.send("email.welcome", "bea@example.org")

    async def sent() -> bool:
        answer = await admin.get(f"/api/v1/email/messages/{uid}")
        return answer.status_code == 200 and answer.json()["status"] == "sent"

    await eventually(sent, timeout=10, what="the welcome message sent")
    listed = (await admin.get("/api/v1/email/messages?address=BEA@example.org")).json()["messages"]
    assert [m["id"] for m in listed] == [uid] and listed[0]["template"] == "email.welcome"
    assert (await member.get("/api/v1/email/messages")).status_code == 403
    assert (await member.get(f"/api/v1/email/messages/{uid}")).status_code == 403
    assert (await admin.get(f"/api/v1/email/messages/{'0' * 32}")).status_code == 404


async def test_admins_mark_addresses_as_bouncing_and_mail_stops(coderic_kernel: Any, smtp: SMTPServer) -> None:
    admin = await coderic_kernel.sign_in(await coderic_kernel.create_user("root@example.org", roles=["admin"]))
    member = await coderic_kernel.sign_in(await coderic_kernel.create_user("bea@example.org"))
    marked = await admin.post("/api/v1/email/suppressions", json={"address": "Bea@Example.org", "reason": "bounce",
                                                                 "detail": "550 mailbox unavailable"})
    assert marked.status_code == 201 and marked.json()["address"] == "bea@example.org"
    assert (await member.get("/api/v1/email/preferences")).json()["suppressed"] == "bounce"
    listed = (await admin.get("/api/v1/email/suppressions")).json()["suppressions"]
    assert [s["address"] for s in listed] == ["bea@example.org"]
    uid = await coderic_kernel.plugin("email").email.send("email.welcome", "bea@example.org")

    async def settled() -> bool:
        return (await admin.get(f"/api/v1/email/messages/{uid}")).json()["status"] == "suppressed"

    await eventually(settled, timeout=10, what="the message suppressed")
    assert smtp.inbox.received == []
    assert (await member.post("/api/v1/email/suppressions", json={"address": "x@example.org", "reason": "manual"})).status_code == 403
    assert (await admin.post("/api/v1/email/suppressions", json={"address": "not an address", "reason": "bounce"})).status_code == 422
    assert (await admin.delete("/api/v1/email/suppressions/bea@example.org")).status_code == 204
    assert (await admin.delete("/api/v1/email/suppressions/bea@example.org")).status_code == 404
