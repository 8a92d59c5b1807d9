"""Notifications (issue 9), in one process: types from a plugin's hook, ``notify`` through the
outbox (nothing when the caller's transaction rolls back), the inbox API, preferences routing
each type to its channels, quiet hours holding email until they end, digests, announcements.
Real time across processes is in ``test_notifications_realtime.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from coderic_kernel.email.tables import EmailMessage
from coderic_kernel.jobs.tables import OutboxEntry
from coderic_kernel.notifications import digests
from coderic_kernel.notifications.preferences import quiet_delay
from coderic_kernel.notifications.service import notifications_for
from coderic_kernel.notifications.tables import Notification
from fakeplugins import FakePlugin, FakeSite, fake_plugins  # noqa: F401
from services import eventually

# A fake plugin of its own name: the real projects plugin is installed in this workspace.
CAMPAIGNS = FakePlugin("campaigns", """
from coderic_sdk import NotificationType

@hookimpl
def register_notification_types():
    return [
        NotificationType("campaigns.update", "Updates of campaigns you follow", default_channels=("in_app", "email")),
        NotificationType("campaigns.milestone", "Milestones", default_channels=("in_app",), digestible=False),
    ]
""")


@pytest.fixture
def coderic_plugins(fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(CAMPAIGNS)
    return ["campaigns"]


@pytest.fixture
def coderic_config(tmp_path: Path) -> dict[str, Any]:
    return {"email_url": f"file://{tmp_path / 'mail'}", "outbox_poll_seconds": 0.05, "rate_limit_enabled": False,
            "public_url": "https://coderic.example"}


def notifier(running: Any) -> Any:
    return running.plugin("campaigns").notifications


async def inbox(client: Any, **query: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/notifications", params=query)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def arrived(client: Any, count: int) -> list[dict[str, Any]]:
    async def enough() -> bool:
        return len((await inbox(client, limit=100))["items"]) >= count

    await eventually(enough, timeout=10, what=f"{count} notification(s) in the inbox")
    return (await inbox(client, limit=100))["items"]  # type: ignore[no-any-return]


async def emails_to(address: str, template: str | None = None) -> list[dict[str, Any]]:
    where = EmailMessage.to_address == address
    if template is not None:
        where &= EmailMessage.template == template
    return await EmailMessage.select(EmailMessage.template, EmailMessage.subject).where(where)  # type: ignore[no-any-return]


async def test_a_notification_reaches_its_recipients_inbox_and_no_one_else(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org", name="Ana")
    bea = await coderic_kernel.create_user("bea@example.org")
    as_ana, as_bea = await coderic_kernel.sign_in(ana), await coderic_kernel.sign_in(bea)
    await notifier(coderic_kernel).notify([ana], "update", {"title": "Kernel 0.2 is out", "body": "Email and jobs.",
                                                            "url": "https://coderic.example/p/kernel"})
    [item] = await arrived(as_ana, 1)
    assert item["type"] == "campaigns.update" and item["source"] == "campaigns" and not item["read"]
    assert item["data"] == {"title": "Kernel 0.2 is out", "body": "Email and jobs.", "url": "https://coderic.example/p/kernel"}
    assert (await inbox(as_bea))["items"] == []
    assert (await as_bea.post(f"/api/v1/notifications/{item['id']}/read")).status_code == 404
    # campaigns.update defaults to email too: one email.notification to Ana, none to Bea
    await eventually(lambda: _count(emails_to("ana@example.org", "email.notification"), 1), what="the email")
    assert await emails_to("bea@example.org") == []


async def _count(query: Any, count: int) -> bool:
    return len(await query) >= count


async def test_read_unread_read_all_counts_and_cursor_pages(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    for n in range(5):
        await notifier(coderic_kernel).notify([ana], "milestone", {"title": f"Milestone {n}"})
    items = await arrived(as_ana, 5)
    assert sorted(i["data"]["title"] for i in items) == [f"Milestone {n}" for n in range(5)]
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)  # newest first
    first = await inbox(as_ana, limit=2)
    second = await inbox(as_ana, limit=2, cursor=first["next_cursor"])
    third = await inbox(as_ana, limit=2, cursor=second["next_cursor"])
    assert [i["id"] for i in first["items"] + second["items"] + third["items"]] == [i["id"] for i in items]
    assert third["next_cursor"] is None and first["unread"] == 5
    assert (await as_ana.post(f"/api/v1/notifications/{items[0]['id']}/read")).json() == {"unread": 4}
    assert [i["id"] for i in (await inbox(as_ana, unread="true"))["items"]] == [i["id"] for i in items[1:]]
    assert (await as_ana.post(f"/api/v1/notifications/{items[0]['id']}/unread")).json() == {"unread": 5}
    assert (await as_ana.post("/api/v1/notifications/read-all")).json() == {"unread": 0}
    assert (await as_ana.get("/api/v1/notifications/unread-count")).json() == {"unread": 0}
    bad = await as_ana.get("/api/v1/notifications", params={"cursor": "x1"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.cursor"
    assert (await coderic_kernel.client.get("/api/v1/notifications")).status_code == 401


async def test_notify_is_written_in_the_callers_transaction(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    with pytest.raises(RuntimeError):
        async with coderic_kernel.kernel.database.transaction():
            await notifier(coderic_kernel).notify([ana], "milestone", {"title": "Rolled back"})
            raise RuntimeError("the change fails")
    async with coderic_kernel.kernel.database.transaction():
        await notifier(coderic_kernel).notify([ana], "milestone", {"title": "Committed"})
    assert [i["data"]["title"] for i in await arrived(as_ana, 1)] == ["Committed"]


async def test_bad_notify_calls_are_refused_with_a_reason(coderic_kernel: Any) -> None:
    campaigns = notifier(coderic_kernel)
    with pytest.raises(ValueError, match="unknown notification type"):
        await campaigns.notify(["u"], "nope", {"title": "x"})
    with pytest.raises(ValueError, match="only send its own"):
        await campaigns.notify(["u"], "notifications.security_alert", {"title": "x"})
    with pytest.raises(ValueError, match="title"):
        await campaigns.notify(["u"], "update", {"body": "no title"})


async def test_preferences_route_each_type_to_its_channels(coderic_kernel: Any) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    shown = (await as_ana.get("/api/v1/notifications/preferences")).json()
    update = next(t for t in shown["types"] if t["type"] == "campaigns.update")
    assert (update["in_app"], update["email"], update["required"]) == (True, "immediately", False)
    changed = await as_ana.patch("/api/v1/notifications/preferences", json={"types": {
        "campaigns.update": {"in_app": False, "email": "daily"}, "notifications.announcement": {"email": "off"}}})
    assert changed.status_code == 200, changed.text
    await notifier(coderic_kernel).notify([ana], "update", {"title": "Only in the digest"})
    await notifier(coderic_kernel).notify([ana], "milestone", {"title": "Only in the inbox"})
    assert [i["data"]["title"] for i in await arrived(as_ana, 1)] == ["Only in the inbox"]
    rows = await Notification.select(Notification.type, Notification.in_app, Notification.email).order_by(Notification.id)
    assert {(r["type"], r["in_app"], r["email"]) for r in rows} == {("campaigns.update", False, "daily"),
                                                                    ("campaigns.milestone", True, "")}
    assert await emails_to("ana@example.org") == []
    assert await digests.send_digests(notifications_for(coderic_kernel.kernel), "daily") == 1
    assert [e["template"] for e in await emails_to("ana@example.org")] == ["email.digest"]
    assert await digests.send_digests(notifications_for(coderic_kernel.kernel), "daily") == 0  # sent once
    # turned off everywhere: nothing at all
    await as_ana.patch("/api/v1/notifications/preferences", json={"types": {"campaigns.update": {"email": "off"}}})
    await notifier(coderic_kernel).notify([ana], "update", {"title": "Nowhere"})
    await notifier(coderic_kernel).notify([ana], "milestone", {"title": "Marker"})
    await arrived(as_ana, 2)
    assert await Notification.count().where(Notification.type == "campaigns.update") == 1  # only the digest one


async def test_security_alerts_cannot_be_turned_off_and_bad_choices_name_the_field(coderic_kernel: Any) -> None:
    as_ana = await coderic_kernel.sign_in(await coderic_kernel.create_user("ana@example.org"))
    refused = await as_ana.patch("/api/v1/notifications/preferences", json={
        "types": {"notifications.security_alert": {"email": "off"}, "campaigns.milestone": {"email": "weekly"},
                  "nope.nothing": {"in_app": False}},
        "quiet_hours": {"start": "25:00", "end": "7"}})
    assert refused.status_code == 422
    fields = {e["field"]: e["reason"] for e in refused.json()["errors"]}
    assert set(fields) == {"body.types.notifications.security_alert", "body.types.campaigns.milestone.email",
                           "body.types.nope.nothing", "body.quiet_hours.start", "body.quiet_hours.end"}
    assert "cannot be turned off" in fields["body.types.notifications.security_alert"]
    unknown = await as_ana.patch("/api/v1/notifications/preferences", json={"types": {"campaigns.update": {"sms": True}}})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"].startswith("body.types")


def test_quiet_hours_span_midnight_in_the_members_timezone() -> None:
    at = datetime(2026, 1, 10, 4, 30, tzinfo=timezone.utc)  # 23:30 in Bogotá (UTC-5)
    assert quiet_delay(at, "America/Bogota", "22:00", "07:00") == 7.5 * 3600
    assert quiet_delay(at, "UTC", "22:00", "07:00") == 2.5 * 3600  # 04:30 UTC
    assert quiet_delay(at, "Europe/Madrid", "22:00", "07:00") == 1.5 * 3600  # 05:30 in Madrid
    assert quiet_delay(at, "Asia/Tokyo", "22:00", "07:00") == 0  # 13:30 in Tokyo
    assert quiet_delay(at, "Not/AZone", "01:00", "05:00") == 30 * 60  # unknown zones count as UTC
    assert quiet_delay(at, "UTC", "09:00", "09:00") == 0


async def test_quiet_hours_hold_email_until_they_end(coderic_kernel: Any) -> None:
    now = datetime.now(timezone.utc)
    ana = await coderic_kernel.create_user("ana@example.org", timezone="America/Bogota")
    as_ana = await coderic_kernel.sign_in(ana)
    local = now - timedelta(hours=5)  # Bogotá has no daylight saving
    start, end = (local - timedelta(hours=1)).strftime("%H:%M"), (local + timedelta(hours=2)).strftime("%H:%M")
    assert (await as_ana.patch("/api/v1/notifications/preferences",
                               json={"quiet_hours": {"start": start, "end": end}})).status_code == 200
    await notifier(coderic_kernel).notify([ana], "update", {"title": "At night"})
    [item] = await arrived(as_ana, 1)  # the inbox does not wait
    row = await Notification.select(Notification.email).where(Notification.id == item["id"]).first()
    assert row["email"] == "held"
    held = await OutboxEntry.select().where(OutboxEntry.job == "notifications.email").first()
    waits = (held["available_at"] - now).total_seconds()
    assert 2 * 3600 - 120 < waits <= 2 * 3600 + 60, waits
    assert await emails_to("ana@example.org") == []
    # quiet hours end: the held job runs and the email goes, once
    await OutboxEntry.update({OutboxEntry.available_at: datetime.now(timezone.utc)}).where(OutboxEntry.id == held["id"])
    await eventually(lambda: _count(emails_to("ana@example.org", "email.notification"), 1), what="the held email")
    # security alerts ignore quiet hours
    await coderic_kernel.plugin("auth").notifications.notify([ana], "notifications.security_alert", {
        "title": "New sign-in", "when": "now", "device": "Firefox", "ip": "203.0.113.7",
        "security_url": "https://coderic.example/account/security"})
    await eventually(lambda: _count(emails_to("ana@example.org", "email.security_alert"), 1), what="the security alert")


async def test_admins_announce_to_everyone_or_a_role(coderic_kernel: Any) -> None:
    admin = await coderic_kernel.create_user("admin@example.org", roles=["admin"])
    mod = await coderic_kernel.create_user("mod@example.org", roles=["moderator"])
    ana = await coderic_kernel.create_user("ana@example.org")
    as_admin, as_mod, as_ana = [await coderic_kernel.sign_in(u) for u in (admin, mod, ana)]
    assert (await as_ana.post("/api/v1/notifications/announcements", json={"title": "Hi"})).status_code == 403
    sent = await as_admin.post("/api/v1/notifications/announcements", json={"title": "Moderators' meeting", "role": "moderator"})
    assert sent.status_code == 202, sent.text
    assert [i["data"]["title"] for i in await arrived(as_mod, 1)] == ["Moderators' meeting"]
    sent = await as_admin.post("/api/v1/notifications/announcements", json={"title": "Maintenance tonight", "body": "22:00 UTC"})
    assert sent.status_code == 202
    for client in (as_admin, as_ana):
        [item] = await arrived(client, 1)
        assert item["type"] == "notifications.announcement" and item["data"]["title"] == "Maintenance tonight"
    assert len(await arrived(as_mod, 2)) == 2
    missing = await as_admin.post("/api/v1/notifications/announcements", json={"body": "no title"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.title"


async def test_personal_data_exports_and_deletes_a_members_notifications(coderic_kernel: Any) -> None:
    from coderic_sdk.testing import check_personal_data

    ana, bea = await coderic_kernel.create_user("ana@example.org"), await coderic_kernel.create_user("bea@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    await as_ana.patch("/api/v1/notifications/preferences", json={"types": {"campaigns.update": {"email": "weekly"}},
                                                                   "quiet_hours": {"start": "22:00", "end": "07:00"}})
    await notifier(coderic_kernel).notify([ana, bea], "milestone", {"title": "Funded"})
    await arrived(as_ana, 1)
    exported = await check_personal_data(coderic_kernel, "notifications", ana, bystander=bea)
    mine = exported["notifications"]
    assert [n["data"]["title"] for n in mine["notifications"]] == ["Funded"]
    assert mine["quiet_hours"] == {"start": "22:00", "end": "07:00"} and mine["preferences"][0]["email"] == "weekly"
