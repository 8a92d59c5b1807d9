"""The email service against a real SMTP server (aiosmtpd on loopback): what arrives, what
happens when the server is down, header injection, tracking links, one-click unsubscribe,
digests and newsletters (issue 5)."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from coderic_kernel.email.message import HeaderInjection
from coderic_kernel.email.service import service_for
from coderic_kernel.email.tables import EmailEvent, EmailMessage, EmailSubscription
from coderic_sdk import Recipient
from services import eventually
from smtp_server import SMTPServer, smtp  # noqa: F401

PUBLIC = "https://coderic.example"
SECRET = "test-secret-key-that-is-long-enough-0123456789"



@pytest.fixture
def coderic_config(smtp: SMTPServer) -> dict[str, Any]:
    return {
        "email_url": smtp.url(), "public_url": PUBLIC, "secret_key": SECRET,
        "email_from": "Coderic <hola@coderic.example>", "outbox_poll_seconds": 0.05,
    }


def mailer(running: Any) -> Any:
    return running.plugin("email").email


async def status_of(uid: str) -> str:
    row = await EmailMessage.select(EmailMessage.status).where(EmailMessage.uid == uid).first()
    return str(row["status"]) if row else "missing"


async def delivered(smtp: SMTPServer, count: int = 1) -> list[Any]:
    async def arrived() -> bool:
        return len(smtp.inbox.received) >= count

    await eventually(arrived, timeout=10, what=f"{count} message(s) at the SMTP server")
    return smtp.inbox.messages()


def links_in(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def path_of(url: str) -> str:
    assert url.startswith(PUBLIC + "/"), url
    return urlsplit(url).path


async def test_a_template_arrives_as_text_and_html_in_the_recipients_language(coderic_kernel: Any, smtp: SMTPServer) -> None:
    uid = await mailer(coderic_kernel).send("email.welcome", Recipient("Ana@Example.org", name="Ana Pérez", language="es"))
    [message] = await delivered(smtp)
    assert smtp.inbox.received[0][1] == ["ana@example.org"]
    assert message["Subject"] == "Te damos la bienvenida a Coderic"
    assert message["From"] == "Coderic <hola@coderic.example>"
    assert message["To"] == "Ana Pérez <ana@example.org>"
    assert message["Message-ID"] == f"<{uid}@coderic.example>"
    assert message["Date"]
    assert "List-Unsubscribe" not in message  # transactional mail has nothing to unsubscribe from
    assert message.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in message.iter_parts())
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert text.startswith("Hola Ana Pérez:") and "Abrir Coderic: https://coderic.example/" in text
    assert '<html lang="es">' in html
    assert all(link.startswith(PUBLIC + "/") for link in links_in(html))
    await eventually(lambda: _is(status_of(uid), "sent"), what="the message marked sent")


async def test_a_templated_message_goes_through_the_job_queue_to_the_smtp_server(
    coderic_kernel: Any, coderic_services: str, smtp: SMTPServer,
) -> None:
    """In-process jobs, or Redis with an arq worker run as ``coderic worker`` runs it (tests/test_jobs.py)."""
    uid = await mailer(coderic_kernel).send("welcome", Recipient("ana@example.org", name="Ana", language="es"))
    worker = None
    if coderic_services == "redis":
        await asyncio.sleep(0.5)  # an API process with Redis only relays: no worker, no mail
        assert (smtp.inbox.received, await status_of(uid)) == ([], "queued")
        worker = asyncio.create_task(coderic_kernel.kernel.jobs.run_worker_forever())
    try:
        [message] = await delivered(smtp)
        assert (message["Subject"], message["Message-ID"]) == ("Te damos la bienvenida a Coderic", f"<{uid}@coderic.example>")
        assert "Ana" in message.get_body(("plain",)).get_content()

        async def done() -> bool:
            rows = [r for r in await coderic_kernel.kernel.jobs.outbox.list() if r.job == "email.send"]
            return [(r.status, r.attempts) for r in rows] == [("done", 1)]

        await eventually(done, what="the email.send job marked done")
        assert await status_of(uid) == "sent"
        await asyncio.sleep(0.3)
        assert len(smtp.inbox.received) == 1
    finally:
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)


async def _is(value: Any, expected: Any) -> bool:
    return (await value) == expected


async def test_the_default_language_and_stored_preferences_choose_the_language(coderic_kernel: Any, smtp: SMTPServer) -> None:
    await mailer(coderic_kernel).set_preferences("luis@example.org", language="es")
    await mailer(coderic_kernel).send("email.test", "luis@example.org")
    await mailer(coderic_kernel).send("email.test", "eva@example.org")  # no preference: default_language (en)
    subjects = sorted(m["Subject"] for m in await delivered(smtp, 2))
    assert subjects == ["Coderic test message", "Mensaje de prueba de Coderic"]


async def test_html_is_escaped_and_links_come_from_public_url_only(coderic_kernel: Any, smtp: SMTPServer) -> None:
    await mailer(coderic_kernel).send("email.notification", "ana@example.org", {
        "notification_type": "message", "title": "Hi", "body": "<script>alert(1)</script>", "url": PUBLIC + "/m/1",
    })
    [message] = await delivered(smtp)
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)</script>" in message.get_body(("plain",)).get_content()  # text is not HTML
    assert all(link.startswith(PUBLIC + "/") for link in links_in(html))


async def test_smtp_down_keeps_the_message_and_delivers_it_once_when_it_returns(coderic_kernel: Any, smtp: SMTPServer) -> None:
    smtp.stop()
    uid = await mailer(coderic_kernel).send("email.test", "ana@example.org")

    async def tried() -> bool:
        rows = [r for r in await coderic_kernel.kernel.jobs.outbox.list() if r.job == "email.send"]
        return bool(rows) and rows[0].attempts >= 1 and rows[0].last_error is not None

    await eventually(tried, what="a failed attempt while SMTP is down")
    assert await status_of(uid) == "queued"
    smtp.start()
    await delivered(smtp)
    await eventually(lambda: _is(status_of(uid), "sent"), what="the message marked sent")
    # A job run again (a retry after a crash) finds the message sent and sends nothing.
    assert await service_for(coderic_kernel.kernel).deliver(uid) == "sent"
    assert len(smtp.inbox.received) == 1


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("ana@example.org", "Hello\r\nBcc: victim@example.org"),
        ("ana@example.org\r\nBcc: victim@example.org", "Hello"),
        ("ana@example.org", "Hello\nX-Injected: 1"),
    ],
)
async def test_header_injection_is_refused_before_anything_is_queued(coderic_kernel: Any, to: str, subject: str) -> None:
    with pytest.raises(HeaderInjection):
        await mailer(coderic_kernel).send_message(to, subject, "body")
    with pytest.raises(HeaderInjection):  # through a template: a title that ends up in the Subject
        await mailer(coderic_kernel).send("email.notification", "ana@example.org", {
            "notification_type": "x", "title": "Hi\r\nBcc: victim@example.org", "body": "b", "url": PUBLIC,
        })
    with pytest.raises(HeaderInjection):
        await mailer(coderic_kernel).send("email.test", Recipient("ana@example.org", name="Ana\r\nBcc: v@example.org"))
    assert await EmailMessage.count() == 0


async def test_tracking_links_are_signed_and_lead_only_where_the_message_led(coderic_kernel: Any, smtp: SMTPServer) -> None:
    client = coderic_kernel.client
    uid = await mailer(coderic_kernel).send("email.notification", "ana@example.org", {
        "notification_type": "project_update", "title": "Update", "body": "New release", "url": PUBLIC + "/p/kernel?tab=news",
    })
    [message] = await delivered(smtp)
    html = message.get_body(("html",)).get_content()
    clicks = [link for link in links_in(html) if "/api/v1/email/click/" in link]
    pixel = re.search(r'<img src="([^"]+/api/v1/email/open/[^"]+)"', html)
    assert clicks and pixel

    opened = await client.get(path_of(pixel.group(1)), headers={"accept": "image/*"})
    assert (opened.status_code, opened.headers["content-type"]) == (200, "image/gif")
    targets = []
    for link in clicks:
        answer = await client.get(path_of(link.replace("&amp;", "&")))
        assert answer.status_code == 302
        targets.append(answer.headers["location"])
    assert PUBLIC + "/p/kernel?tab=news" in targets
    kinds = [row["kind"] for row in await EmailEvent.select(EmailEvent.kind).where(EmailEvent.message_uid == uid)]
    assert sorted(set(kinds)) == ["click", "open"]

    token = path_of(clicks[0]).rsplit("/", 1)[1]
    payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for forged in (f"{payload}.{flipped}", f"{payload[:-2]}.{signature}", "not-a-token", token + "x"):
        assert (await client.get(f"/api/v1/email/click/{forged}")).status_code == 404
    open_token = path_of(pixel.group(1)).rsplit("/", 1)[1]
    assert (await client.get(f"/api/v1/email/click/{open_token}")).status_code == 404  # a token of another kind
    assert (await client.get(f"/api/v1/email/open/{token}")).status_code == 404


async def test_tracking_is_off_for_essential_mail_and_for_addresses_that_opted_out(coderic_kernel: Any, smtp: SMTPServer) -> None:
    await mailer(coderic_kernel).send("email.password_reset", "ana@example.org", {"reset_url": PUBLIC + "/r?t=1", "expires_minutes": 30})
    await mailer(coderic_kernel).set_preferences("luis@example.org", tracking=False)
    await mailer(coderic_kernel).send("email.welcome", "luis@example.org")
    for message in await delivered(smtp, 2):
        html = message.get_body(("html",)).get_content()
        assert "/api/v1/email/" not in html




async def test_one_post_unsubscribes_without_logging_in(coderic_kernel: Any, smtp: SMTPServer) -> None:
    email = mailer(coderic_kernel)
    await email.subscribe("ana@example.org", "signup form")
    row = await EmailSubscription.select().where(EmailSubscription.address == "ana@example.org").first()
    assert row["subscribed"] and row["consent_source"] == "signup form" and row["consent_at"] is not None
    await email.send("email.newsletter", "ana@example.org", {"title": "News", "intro": "Hi", "items": []})
    [message] = await delivered(smtp)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<(.+)>", message["List-Unsubscribe"]).group(1)
    assert url.startswith(PUBLIC + "/api/v1/email/unsubscribe/")

    page = await coderic_kernel.client.get(path_of(url))
    assert page.status_code == 200 and "<form" in page.text
    assert (await EmailSubscription.select().first())["subscribed"]  # a GET changes nothing
    answer = await coderic_kernel.client.post(
        path_of(url), content="List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 200
    row = await EmailSubscription.select().first()
    assert not row["subscribed"] and row["unsubscribed_at"] is not None
    assert (await coderic_kernel.client.post(path_of(url)[:-3] + "abc")).status_code == 404

    uid = await email.send("email.newsletter", "ana@example.org", {"title": "News 2", "intro": "Hi", "items": []})
    await eventually(lambda: _is(status_of(uid), "suppressed"), what="the next issue held back")
    assert len(smtp.inbox.received) == 1


async def test_an_idempotency_key_sends_one_message(coderic_kernel: Any, smtp: SMTPServer) -> None:
    first = await mailer(coderic_kernel).send("email.test", "ana@example.org", key="welcome:42")
    second = await mailer(coderic_kernel).send("email.test", "ana@example.org", key="welcome:42")
    assert first == second
    await delivered(smtp)
    await eventually(lambda: _is(status_of(first), "sent"), what="sent")
    assert len(smtp.inbox.received) == 1


async def test_suppressed_addresses_get_essential_mail_only(coderic_kernel: Any, smtp: SMTPServer) -> None:
    from coderic_kernel.email import store

    await store.suppress("ana@example.org", "bounce")
    held = await mailer(coderic_kernel).send("email.notification", "ana@example.org", {
        "notification_type": "message", "title": "t", "body": "b", "url": PUBLIC})
    await mailer(coderic_kernel).send("email.verify_email", "ana@example.org", {"verify_url": PUBLIC + "/v"})
    [message] = await delivered(smtp)
    assert message["Subject"] == "Confirm your email address"
    await eventually(lambda: _is(status_of(held), "suppressed"), what="the notification held back")


async def test_a_newsletter_issue_reaches_every_subscriber_once_in_batches(coderic_kernel: Any, smtp: SMTPServer) -> None:
    from coderic_kernel.email import newsletter
    from coderic_kernel.email.tables import NewsletterIssue

    email = mailer(coderic_kernel)
    for n in range(5):
        await email.subscribe(f"reader{n}@example.org", "import")
    await email.unsubscribe("reader3@example.org")
    service = service_for(coderic_kernel.kernel)
    issue = await NewsletterIssue.insert(NewsletterIssue(
        template="email.newsletter", context={"title": "Issue 1", "intro": "Hi", "items": []})).returning(NewsletterIssue.id)
    issue_id = issue[0]["id"]
    assert await newsletter.run_batch(service, issue_id, batch=2) == 2
    assert (await NewsletterIssue.select().first())["cursor"] == 2
    # Resuming (a job run again after a crash) picks up after the cursor; keys stop repeats.
    assert await newsletter.run_batch(service, issue_id, batch=2) == 2
    assert await newsletter.run_batch(service, issue_id, batch=2) == 0
    row = await NewsletterIssue.select().first()
    assert (row["status"], row["queued"]) == ("sent", 4)
    messages = await delivered(smtp, 4)
    assert sorted(str(m["To"]) for m in messages) == [f"reader{n}@example.org" for n in (0, 1, 2, 4)]

    started = await email.send_newsletter("email.newsletter", {"title": "Issue 2", "intro": "Hi", "items": []})
    await delivered(smtp, 8)

    async def finished() -> bool:
        return (await NewsletterIssue.select().where(NewsletterIssue.id == started).first())["status"] == "sent"

    await eventually(finished, what="issue 2 sent")
    assert len(smtp.inbox.received) == 8
