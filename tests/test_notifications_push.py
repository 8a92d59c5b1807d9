"""Web Push (issue 9): the platform's key, members' subscribed browsers, and notifications
pushed to them through a local push service (``push_service.py``) that verifies the VAPID
signature and decrypts each push with the browser's own keys, as a real one and the browser do.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from coderic_kernel.config import load_configuration
from coderic_kernel.errors import ConfigError
from coderic_kernel.notifications import push, vapid
from coderic_kernel.notifications.tables import PushSubscription
from fakeplugins import FakePlugin, FakeSite, fake_plugins  # noqa: F401
from push_service import PRIVATE_KEY, PUBLIC_KEY, SUBJECT, Browser, PushService, push_service  # noqa: F401
from services import eventually

# A fake plugin of its own name: the real projects plugin is installed in this workspace.
CAMPAIGNS = FakePlugin("campaigns", """
from coderic_sdk import NotificationType

@hookimpl
def register_notification_types():
    return [
        NotificationType("campaigns.update", "Updates of campaigns you follow", default_channels=("in_app", "push")),
        NotificationType("campaigns.milestone", "Milestones", default_channels=("in_app",)),
    ]
""")
PUSH_OFF = pytest.mark.coderic(config={"notifications_vapid_private_key": None})
SUBSCRIPTIONS = "/api/v1/notifications/push/subscriptions"


@pytest.fixture
def coderic_plugins(fake_plugins: FakeSite) -> list[str]:  # noqa: F811
    fake_plugins.install(CAMPAIGNS)
    return ["campaigns"]


@pytest.fixture
def coderic_config(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    marker = request.node.get_closest_marker("coderic")
    return {"email_url": f"file://{tmp_path / 'mail'}", "outbox_poll_seconds": 0.05, "rate_limit_enabled": False,
            "public_url": "https://coderic.example", "notifications_vapid_private_key": PRIVATE_KEY,
            "notifications_vapid_subject": SUBJECT, "notifications_push_ttl_seconds": 3600,
            **(marker.kwargs.get("config", {}) if marker else {})}


async def subscribe(client: Any, browser: Browser) -> dict[str, Any]:
    response = await client.post(SUBSCRIPTIONS, json=browser.subscription())
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def pushed(service: PushService, browser: Browser, count: int) -> list[dict[str, Any]]:
    async def enough() -> bool:
        return len(service.pushes_to(browser)) >= count

    await eventually(enough, timeout=15, what=f"{count} push(es) to the browser")
    assert service.refusals == []
    return [p.message for p in service.pushes_to(browser)]


async def test_the_key_route_serves_the_platforms_public_key(coderic_kernel: Any) -> None:
    client = await coderic_kernel.sign_in(await coderic_kernel.create_user("ana@example.org"))
    response = await client.get("/api/v1/notifications/push/key")
    assert response.status_code == 200 and response.json() == {"public_key": PUBLIC_KEY}
    assert len(vapid.b64url_decode(PUBLIC_KEY)) == 65


async def test_members_subscribe_list_and_remove_their_browsers(coderic_kernel: Any, push_service: PushService) -> None:
    ana, bea = await coderic_kernel.create_user("ana@example.org"), await coderic_kernel.create_user("bea@example.org")
    as_ana, as_bea = await coderic_kernel.sign_in(ana), await coderic_kernel.sign_in(bea)
    laptop, phone = push_service.browser(), push_service.browser()
    first = await subscribe(as_ana, laptop)
    assert first["endpoint"] == laptop.endpoint and first["last_success_at"] is None and first["failures"] == 0
    await subscribe(as_ana, phone)
    listed = (await as_ana.get(SUBSCRIPTIONS)).json()["items"]
    assert [s["endpoint"] for s in listed] == [laptop.endpoint, phone.endpoint]
    assert (await as_bea.get(SUBSCRIPTIONS)).json() == {"items": []}
    assert (await as_bea.delete(f"{SUBSCRIPTIONS}/{first['id']}")).status_code == 404  # not hers
    assert (await as_ana.delete(f"{SUBSCRIPTIONS}/{first['id']}")).status_code == 204
    assert (await as_ana.delete(f"{SUBSCRIPTIONS}/{first['id']}")).status_code == 404
    assert [s["endpoint"] for s in (await as_ana.get(SUBSCRIPTIONS)).json()["items"]] == [phone.endpoint]
    # The same browser signed in as Bea: the endpoint is hers now, not Ana's as well.
    await subscribe(as_bea, phone)
    assert (await as_ana.get(SUBSCRIPTIONS)).json() == {"items": []}
    assert [s["endpoint"] for s in (await as_bea.get(SUBSCRIPTIONS)).json()["items"]] == [phone.endpoint]


@pytest.mark.coderic(config={"notifications_push_subscriptions": 2})
async def test_a_member_past_the_limit_loses_their_oldest_subscription(coderic_kernel: Any, push_service: PushService) -> None:
    as_ana = await coderic_kernel.sign_in(await coderic_kernel.create_user("ana@example.org"))
    browsers = [push_service.browser() for _ in range(3)]
    for browser in browsers:
        await subscribe(as_ana, browser)
    listed = (await as_ana.get(SUBSCRIPTIONS)).json()["items"]
    assert sorted(s["endpoint"] for s in listed) == sorted(b.endpoint for b in browsers[1:])


async def test_a_notification_is_pushed_signed_and_encrypted(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    laptop, phone = push_service.browser(), push_service.browser()
    await subscribe(as_ana, laptop)
    await subscribe(as_ana, phone)
    data = {"title": "Kernel 0.3 is out", "body": "Push, at last.", "url": "https://coderic.example/p/kernel", "extra": 1}
    await coderic_kernel.plugin("campaigns").notifications.notify([ana], "update", data)
    [message] = await pushed(push_service, laptop, 1)
    assert await pushed(push_service, phone, 1) == [message]
    [item] = (await as_ana.get("/api/v1/notifications")).json()["items"]
    assert message == {"id": item["id"], "type": "campaigns.update", "title": "Kernel 0.3 is out", "body": "Push, at last.",
                       "url": "https://coderic.example/p/kernel"}
    assert {(p.ttl, p.urgency) for p in push_service.received} == {(3600, "normal")}

    async def recorded() -> bool:
        rows = (await as_ana.get(SUBSCRIPTIONS)).json()["items"]
        return all(row["last_success_at"] for row in rows)

    await eventually(recorded, what="the successes recorded on the subscriptions")


async def test_security_alerts_are_pushed_urgently_whatever_the_preferences(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    browser = push_service.browser()
    await subscribe(as_ana, browser)
    refused = await as_ana.patch("/api/v1/notifications/preferences",
                                 json={"types": {"notifications.security_alert": {"push": False}}})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "body.types.notifications.security_alert"
    alert = {"title": "New sign-in", "when": "2026-11-30 12:00 UTC", "device": "Firefox on Linux", "ip": "203.0.113.7",
             "security_url": "https://coderic.example/account/security"}
    await coderic_kernel.plugin("auth").notifications.notify([ana], "notifications.security_alert", alert)
    [message] = await pushed(push_service, browser, 1)
    assert message["type"] == "notifications.security_alert" and message["title"] == "New sign-in"
    assert message["body"] == "" and message["url"] is None
    assert push_service.received[0].urgency == "high"


async def test_preferences_decide_what_is_pushed(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    browser = push_service.browser()
    await subscribe(as_ana, browser)
    prefs = (await as_ana.get("/api/v1/notifications/preferences")).json()["types"]
    update = next(t for t in prefs if t["type"] == "campaigns.update")
    assert update["push"] is True and update["default_push"] is True
    changed = await as_ana.patch("/api/v1/notifications/preferences", json={"types": {
        "campaigns.update": {"push": False}, "campaigns.milestone": {"push": True, "in_app": False}}})
    assert changed.status_code == 200, changed.text
    notifier = coderic_kernel.plugin("campaigns").notifications
    await notifier.notify([ana], "update", {"title": "Not pushed"})
    await notifier.notify([ana], "milestone", {"title": "Pushed, and not in the inbox"})

    async def both_delivered() -> bool:
        return len((await as_ana.get("/api/v1/notifications")).json()["items"]) == 1 and bool(push_service.received)

    await eventually(both_delivered, what="the update in the inbox and the milestone pushed")
    # Fan-outs queue pushes in their own transaction: once the inbox row exists the push is queued.
    assert [m["title"] for m in await pushed(push_service, browser, 1)] == ["Pushed, and not in the inbox"]
    assert [i["data"]["title"] for i in (await as_ana.get("/api/v1/notifications")).json()["items"]] == ["Not pushed"]
    # Back to the type's default (null): pushed again.
    await as_ana.patch("/api/v1/notifications/preferences", json={"types": {"campaigns.update": {"push": None}}})
    await notifier.notify([ana], "update", {"title": "Pushed again"})
    assert [m["title"] for m in await pushed(push_service, browser, 2)][-1] == "Pushed again"
    assert len(push_service.received) == 2


async def test_a_gone_browser_loses_its_subscription(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    await subscribe(as_ana, push_service.browser())
    push_service.answers = [410]
    await coderic_kernel.plugin("campaigns").notifications.notify([ana], "update", {"title": "Anyone there?"})

    async def dropped() -> bool:
        return (await as_ana.get(SUBSCRIPTIONS)).json() == {"items": []}

    await eventually(dropped, what="the subscription deleted after 410")
    assert push_service.answered == [410] and push_service.refusals == []


async def test_a_failing_push_service_is_retried_and_the_failure_recorded(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    browser = push_service.browser()
    await subscribe(as_ana, browser)
    push_service.answers = [503, 429]
    await coderic_kernel.plugin("campaigns").notifications.notify([ana], "update", {"title": "Eventually"})
    [message] = await pushed(push_service, browser, 1)
    assert message["title"] == "Eventually" and push_service.answered == [503, 429, 201]
    row = await PushSubscription.select().first()
    assert row["last_error"] == "429 Too Many Requests" and row["last_failure_at"] is not None

    async def reset() -> bool:
        row = await PushSubscription.select(PushSubscription.failures, PushSubscription.last_success_at).first()
        return row["failures"] == 0 and row["last_success_at"] is not None

    await eventually(reset, what="the success recorded")


async def test_an_unreachable_push_service_is_recorded_and_retried(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    nowhere = push_service.browser()
    nowhere.endpoint = "http://127.0.0.1:1/push/gone-dark"  # nothing listens on port 1
    await subscribe(as_ana, nowhere)
    await coderic_kernel.plugin("campaigns").notifications.notify([ana], "update", {"title": "Lost"})

    async def failed_twice() -> bool:
        [row] = (await as_ana.get(SUBSCRIPTIONS)).json()["items"]
        return row["failures"] >= 2 and row["last_error"].startswith("unreachable: ")

    await eventually(failed_twice, what="two failed attempts recorded")


async def test_a_refused_push_is_recorded_and_not_retried(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    as_ana = await coderic_kernel.sign_in(ana)
    browser = push_service.browser()
    await subscribe(as_ana, browser)
    push_service.answers = [400]
    notifier = coderic_kernel.plugin("campaigns").notifications
    await notifier.notify([ana], "update", {"title": "Refused"})

    async def recorded() -> bool:
        return (await as_ana.get(SUBSCRIPTIONS)).json()["items"][0]["failures"] == 1

    await eventually(recorded, what="the refusal recorded")
    await notifier.notify([ana], "update", {"title": "Next"})
    assert [m["title"] for m in await pushed(push_service, browser, 1)] == ["Next"]
    assert push_service.answered == [400, 201]  # the refused one was not sent again


def test_a_long_notification_is_cut_to_fit_a_push() -> None:
    row = {"id": 7, "type": "campaigns.update"}
    body = "é" * 5000
    encoded = push.payload(row, {"title": "t" * 300, "body": body, "url": "https://x.example/" + "a" * 2000})
    message = json.loads(encoded)
    assert len(encoded) <= push.MAX_PAYLOAD and message["body"].endswith("…") and body.startswith(message["body"][:-1])
    assert message["title"] == "t" * 200 and message["url"] is None
    short = json.loads(push.payload(row, {"title": "Hi", "body": "there", "url": "https://x.example/"}))
    assert short == {"id": 7, "type": "campaigns.update", "title": "Hi", "body": "there", "url": "https://x.example/"}


async def test_the_longest_push_fits_the_push_services_limit(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    browser = push_service.browser()
    await subscribe(await coderic_kernel.sign_in(ana), browser)
    await coderic_kernel.plugin("campaigns").notifications.notify([ana], "update", {"title": "Long", "body": "x" * 20_000})
    [message] = await pushed(push_service, browser, 1)
    assert message["body"].startswith("xxx") and message["body"].endswith("…")
    assert push_service.received[0].size <= 4096


def _broken(browser: Browser, **changes: Any) -> dict[str, Any]:
    subscription = browser.subscription()
    for path, value in changes.items():
        target = subscription
        *parents, last = path.split("__")
        for parent in parents:
            target = target[parent]
        target[last] = value
    return subscription


BAD_SUBSCRIPTIONS = [  # (changes to a good subscription, the field the 422 must name)
    ({"endpoint": "http://push.example.com/x"}, "body.endpoint"),
    ({"endpoint": "ftp://push.example.com/x"}, "body.endpoint"),
    ({"endpoint": "https://10.0.0.8/x"}, "body.endpoint"),
    ({"endpoint": "https://user:pw@push.example.com/x"}, "body.endpoint"),
    ({"endpoint": "https://push.example.com/" + "x" * 2100}, "body.endpoint"),
    ({"keys__p256dh": vapid.b64url(b"\x04" + b"\x01" * 64)}, "body.keys.p256dh"),  # not on the curve
    ({"keys__p256dh": vapid.b64url(b"\x04" * 33)}, "body.keys.p256dh"),
    ({"keys__p256dh": "not base64!"}, "body.keys.p256dh"),
    ({"keys__auth": vapid.b64url(b"\x00" * 8)}, "body.keys.auth"),
    ({"keys__auth": None}, "body.keys.auth"),
    ({"expirationTime": 1_000}, "body.expirationTime"),
    ({"expirationTime": "soon"}, "body.expirationTime"),
    ({"keys": {"p256dh": "x"}}, "body.keys.auth"),
    ({"extra": True}, "body.extra"),
]


async def test_a_bad_subscription_is_refused_naming_the_field(coderic_kernel: Any, push_service: PushService) -> None:
    client = await coderic_kernel.sign_in(await coderic_kernel.create_user("ana@example.org"))
    for changes, field in BAD_SUBSCRIPTIONS:  # one kernel for all: a boot per case would cost a second each
        response = await client.post(SUBSCRIPTIONS, json=_broken(push_service.browser(), **changes))
        assert response.status_code == 422, (changes, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in [e["field"] for e in response.json()["errors"]], (changes, response.json())
    assert (await client.get(SUBSCRIPTIONS)).json() == {"items": []}


async def test_an_expiring_subscription_is_kept_until_it_expires(coderic_kernel: Any, push_service: PushService) -> None:
    client = await coderic_kernel.sign_in(await coderic_kernel.create_user("ana@example.org"))
    later = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    response = await client.post(SUBSCRIPTIONS, json={**push_service.browser().subscription(), "expirationTime": later})
    assert response.status_code == 201 and response.json()["expires_at"].startswith("2100-01-01T00:00:00")


@PUSH_OFF
async def test_without_a_vapid_key_push_is_off_and_says_so(coderic_kernel: Any, push_service: PushService) -> None:
    ana = await coderic_kernel.create_user("ana@example.org")
    client = await coderic_kernel.sign_in(ana)
    for response in (await client.get("/api/v1/notifications/push/key"),
                     await client.post(SUBSCRIPTIONS, json=push_service.browser().subscription())):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "VAPID" in response.json()["detail"]
    assert (await client.get(SUBSCRIPTIONS)).json() == {"items": []}
    await coderic_kernel.plugin("campaigns").notifications.notify([ana], "update", {"title": "Inbox only"})
    await eventually(lambda: _has_items(client), what="the notification in the inbox")


async def _has_items(client: Any) -> bool:
    return bool((await client.get("/api/v1/notifications")).json()["items"])


async def test_personal_data_includes_the_push_subscriptions(coderic_kernel: Any, push_service: PushService) -> None:
    from coderic_sdk.testing import check_personal_data

    ana, bea = await coderic_kernel.create_user("ana@example.org"), await coderic_kernel.create_user("bea@example.org")
    browser = push_service.browser()
    await subscribe(await coderic_kernel.sign_in(ana), browser)
    await subscribe(await coderic_kernel.sign_in(bea), push_service.browser())
    exported = await check_personal_data(coderic_kernel, "notifications", ana, bystander=bea)
    [mine] = exported["notifications"]["push_subscriptions"]
    assert mine["endpoint"] == browser.endpoint and "auth" not in mine and "p256dh" not in mine
    assert await PushSubscription.count() == 1  # Bea's


def test_the_vapid_keys_command_makes_a_working_pair() -> None:
    from coderic_kernel.builtins.notifications import vapid_keys

    result = CliRunner().invoke(vapid_keys, [])
    assert result.exit_code == 0, result.output
    line, comment = result.stdout.splitlines()
    name, _, private = line.partition("=")
    assert name == "CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY"
    assert comment.endswith(vapid.public_key(vapid.load(private)))


@pytest.mark.parametrize(("environ", "message"), [
    ({"CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY": "s3cret-but-no-key"},
     "invalid setting notifications_vapid_private_key = '********' (from environment "
     "CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY): Value error, not a VAPID private key"),
    ({"CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY": PRIVATE_KEY, "CODERIC_PUBLIC_URL": "http://localhost:8000"},
     "invalid setting notifications_vapid_subject = '<unset>' (from default): Value error, Web Push needs "
     "notifications_vapid_subject"),
    ({"CODERIC_NOTIFICATIONS_VAPID_SUBJECT": "ops@example.org"},
     "invalid setting notifications_vapid_subject = 'ops@example.org' (from environment "
     "CODERIC_NOTIFICATIONS_VAPID_SUBJECT): Value error, the VAPID subject is a mailto: address"),
    ({"CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY": PRIVATE_KEY, "CODERIC_NOTIFICATIONS_VAPID_SUBJECT": "https://nodot"},
     "invalid setting notifications_vapid_subject = 'https://nodot' (from environment "
     "CODERIC_NOTIFICATIONS_VAPID_SUBJECT): Value error, py-vapid refuses 'https://nodot'"),
])
def test_bad_push_settings_stop_start_up_without_showing_the_key(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_configuration(environ=environ, read_files=False)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "s3cret" not in str(caught.value) and PRIVATE_KEY not in str(caught.value)


def test_the_subject_defaults_to_an_https_public_url() -> None:
    settings = load_configuration(environ={"CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY": PRIVATE_KEY,
                                           "CODERIC_PUBLIC_URL": "https://coderic.example"}, read_files=False).kernel
    assert settings.vapid_subject() == "https://coderic.example" and push.enabled(settings)
    for environ in ({}, {"CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY": ""}):
        assert not push.enabled(load_configuration(environ=environ, read_files=False).kernel)
