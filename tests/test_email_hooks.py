"""What plugins and operators add to the email service: templates (from a plugin's folder,
overridden from email_templates_dir), digest sections, the SES webhook's signature checks,
the ``coderic email`` commands, and the settings it needs."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from coderic_kernel.cli.root import cli
from coderic_kernel.config import load_configuration
from coderic_kernel.config.loader import ConfigError
from coderic_kernel.email import digest, store
from coderic_kernel.email.service import service_for
from coderic_kernel.email.tables import EmailMessage
from coderic_kernel.testing import start_kernel
from fakeplugins import FakePlugin, FakeSite, fake_plugins  # noqa: F401
from services import eventually

SECRET = "test-secret-key-that-is-long-enough-0123456789"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-notices"

NEWS_PLUGIN = """
from pathlib import Path
from coderic_sdk import DigestItem, DigestSource, EmailTemplate

FOLDER = Path({folder!r})

async def fresh(recipient, since):
    if recipient.address.startswith("quiet"):
        return []
    return [DigestItem("Kernel 0.2 is out", url="https://coderic.example/news/1", summary="Email, at last.")]

@hookimpl
def register_email_templates():
    return [FOLDER, EmailTemplate("pledge", FOLDER, category="notifications", sample={{"amount": "5 EUR"}})]

@hookimpl
def register_digest_sources():
    return [DigestSource("fresh", "News", fresh)]
"""


def write_templates(folder: Path) -> None:
    for language, hello in (("en", "Hello"), ("es", "Hola")):
        (folder / language).mkdir(parents=True)
        (folder / language / "greeting.subject.txt").write_text(f"{hello} {{{{ who }}}}\n")
        (folder / language / "greeting.txt").write_text(f"{hello}, {{{{ who }}}}!\n")
        (folder / language / "pledge.subject.txt").write_text("Pledge {{ amount }}\n")
        (folder / language / "pledge.txt").write_text("{% extends layout.text %}{% block content %}Thanks: {{ amount }}{% endblock %}\n")
        (folder / language / "pledge.html").write_text(
            "{% extends layout.html %}{% block content %}<p>Thanks: {{ amount }}</p>{% endblock %}\n")


@pytest.fixture
def news(fake_plugins: FakeSite, tmp_path: Path) -> Path:  # noqa: F811
    folder = tmp_path / "news-templates"
    write_templates(folder)
    fake_plugins.install(FakePlugin("news", NEWS_PLUGIN.format(folder=str(folder))))
    return folder


async def test_plugin_templates_render_and_operators_override_them(news: Path, tmp_path: Path) -> None:
    overrides = tmp_path / "overrides"
    (overrides / "news" / "es").mkdir(parents=True)
    (overrides / "news" / "es" / "greeting.subject.txt").write_text("¡Buenas, {{ who }}!\n")
    config = {"email_templates_dir": str(overrides), "email_url": f"file://{tmp_path}/mail"}
    async with start_kernel(plugins=["news"], config=config, database="sqlite", workdir=tmp_path) as running:
        service = service_for(running.kernel)
        assert {"news.greeting", "news.pledge", "email.welcome"} <= set(service.templates.by_name)
        en = service.templates.render("news.greeting", {"who": "Ana"}, ["en"])
        es = service.templates.render("news.greeting", {"who": "Ana"}, ["es"])
        assert (en.subject, en.text, en.html) == ("Hello Ana", "Hello, Ana!", None)
        assert (es.subject, es.text) == ("¡Buenas, Ana!", "Hola, Ana!")  # subject overridden, text not
        fallback = service.templates.render("news.greeting", {"who": "Ana"}, ["fr"])
        assert fallback.language == "en"  # default_language
        uid = await running.plugin("news").email.send("pledge", "ana@example.org", {"amount": "5 EUR"})

        async def sent() -> bool:
            row = await EmailMessage.select(EmailMessage.status).where(EmailMessage.uid == uid).first()
            return row["status"] == "sent"

        await eventually(sent, what="the plugin's message")
        [written] = (tmp_path / "mail").iterdir()
        assert "Pledge 5 EUR" in written.read_text()


def templates_plugin(name: str, returns: str, folder: Path) -> FakePlugin:
    return FakePlugin(name, f"""
from pathlib import Path
from coderic_sdk import EmailTemplate

FOLDER = Path({str(folder)!r})

@hookimpl
def register_email_templates():
    return {returns}
""")


@pytest.mark.parametrize(("returns", "reason"), [
    ('[FOLDER, EmailTemplate("news.greeting", FOLDER)]',  # another plugin's name: it would replace that template
     "email template 'news.greeting' must be named 'copycat.<name>' (or just '<name>')"),
    ('[EmailTemplate("email.welcome", FOLDER)]', "email template 'email.welcome' must be named 'copycat.<name>' (or just '<name>')"),
    ('[EmailTemplate("greeting", FOLDER), EmailTemplate("copycat.greeting", FOLDER)]',
     "email template copycat.greeting is registered twice"),
    ('[FOLDER, FOLDER.parent / "again"]', "email template copycat.greeting is in two folders: {folder} and {again}"),
    ('[FOLDER.parent / "dotted"]', "email template 'x.y' must be named 'copycat.<name>' (or just '<name>')"),
])
def test_a_template_named_after_another_plugin_or_twice_stops_boot(
    news: Path, fake_plugins: FakeSite, returns: str, reason: str,  # noqa: F811
) -> None:
    from fakeplugins import boot_error

    write_templates(news.parent / "again")
    (news.parent / "dotted" / "en").mkdir(parents=True)
    (news.parent / "dotted" / "en" / "x.y.subject.txt").write_text("Hi\n")
    fake_plugins.install(templates_plugin("copycat", returns, news))
    message = boot_error("news", "copycat")  # news's own templates are fine; copycat's stop boot, before any start
    assert message == "plugin 'copycat' failed at register: " + reason.format(folder=news, again=news.parent / "again")


async def test_the_digest_skips_empty_and_opted_out_recipients(news: Path, tmp_path: Path) -> None:
    config = {"email_url": f"file://{tmp_path}/mail", "secret_key": SECRET}
    async with start_kernel(plugins=["news"], config=config, database="sqlite", workdir=tmp_path) as running:
        email = running.plugin("news").email
        await email.set_preferences("reader@example.org", language="es")
        await email.set_preferences("quiet@example.org")
        await email.set_preferences("away@example.org", digest=False)
        await email.set_preferences("gone@example.org")
        await store.suppress("gone@example.org", "bounce")
        service = service_for(running.kernel)
        outcomes = {a: await digest.send_digest(service, a, "2026-W48") for a in
                    ("reader@example.org", "quiet@example.org", "away@example.org", "gone@example.org")}
        assert outcomes == {"reader@example.org": "sent", "quiet@example.org": "empty",
                            "away@example.org": "opted-out", "gone@example.org": "suppressed"}
        # Run again (a retried job): the idempotency key keeps it to one message.
        assert await digest.send_digest(service, "reader@example.org", "2026-W48") == "sent"
        rows = await EmailMessage.select(EmailMessage.to_address, EmailMessage.subject, EmailMessage.raw)
        assert [(r["to_address"], r["subject"]) for r in rows] == [("reader@example.org", "Tu semana en Coderic")]
        assert "Kernel 0.2 is out" in rows[0]["raw"] and "List-Unsubscribe-Post" in rows[0]["raw"]
        # The cron job fans out one job per address that wants a digest.
        assert await digest.fan_out(service) == 3


def sns_certificate(tmp_path: Path) -> tuple[Any, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


def signed(key: Any, message: dict[str, Any]) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from coderic_kernel.email.sns import canonical

    message = {**message, "SignatureVersion": "2",
               "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"}
    message["Signature"] = base64.b64encode(key.sign(canonical(message), padding.PKCS1v15(), hashes.SHA256())).decode()
    return message


@pytest.mark.coderic(config={"email_sns_topics": [TOPIC], "secret_key": SECRET})
async def test_ses_notifications_must_be_signed_and_suppress_bounces(coderic_kernel: Any, tmp_path: Path) -> None:
    key, pem = sns_certificate(tmp_path)
    fetched: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return pem

    service = service_for(coderic_kernel.kernel)
    service.sns.fetch = fetch
    client = coderic_kernel.client
    bounce = {"notificationType": "Bounce", "mail": {"messageId": "ses-1"}, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General", "bouncedRecipients": [{"emailAddress": "Gone@Example.org"}]}}
    notification = signed(key, {"Type": "Notification", "MessageId": "n1", "TopicArn": TOPIC,
                                "Message": json.dumps(bounce), "Timestamp": "2026-11-28T03:00:00.000Z"})
    tampered = {**notification, "Message": notification["Message"].replace("Gone@", "Other@")}
    foreign = signed(key, {**notification, "TopicArn": "arn:aws:sns:eu-west-1:999:theirs"})
    for refused in (tampered, foreign, {"Type": "Notification"}, "not json"):
        body = refused if isinstance(refused, str) else json.dumps(refused)
        answer = await client.post("/api/v1/email/ses", content=body, headers={"content-type": "text/plain"})
        assert answer.status_code == 403
    assert await store.suppression("gone@example.org") is None

    answer = await client.post("/api/v1/email/ses", content=json.dumps(notification), headers={"content-type": "text/plain"})
    assert answer.status_code == 204
    assert (await store.suppression("gone@example.org"))["reason"] == "bounce"

    confirmation = signed(key, {"Type": "SubscriptionConfirmation", "MessageId": "c1", "TopicArn": TOPIC, "Token": "t",
                                "Message": "confirm", "Timestamp": "2026-11-28T03:00:00.000Z",
                                "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"})
    answer = await client.post("/api/v1/email/ses", content=json.dumps(confirmation))
    assert answer.status_code == 204 and fetched[-1].startswith("https://sns.eu-west-1.amazonaws.com/?Action=Confirm")
    evil = signed(key, {**confirmation, "SubscribeURL": "https://attacker.example/"})
    assert (await client.post("/api/v1/email/ses", content=json.dumps(evil))).status_code == 403


def invoke(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    environment = {"CODERIC_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "CODERIC_EMAIL_URL": f"file://{tmp_path}/mail",
                   **(env or {})}
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def test_the_email_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("CODERIC_")]:
        monkeypatch.delenv(name)
    preview = invoke(tmp_path, "email", "preview", "password_reset", "--lang", "es")
    assert preview.exit_code == 0, preview.output
    assert "Subject: Restablece tu contraseña de Coderic" in preview.output and "<html lang=\"es\">" in preview.output
    assert invoke(tmp_path, "email", "preview", "welcome", "--part", "subject").output == "Welcome to Coderic\n"
    assert invoke(tmp_path, "email", "preview", "nope").exit_code == 2

    sent = invoke(tmp_path, "email", "send-test", "ops@example.org")
    assert sent.exit_code == 0 and "via FileBackend" in sent.output
    assert len(list((tmp_path / "mail").iterdir())) == 1
    assert invoke(tmp_path, "email", "send-test", "not an address").exit_code == 2

    assert invoke(tmp_path, "migrate").exit_code == 0
    assert invoke(tmp_path, "email", "suppress", "Bad@Example.org", "--reason", "complaint").output == \
        "bad@example.org: suppressed (complaint)\n"
    listed = invoke(tmp_path, "email", "suppressions").output
    assert "bad@example.org" in listed and "complaint" in listed
    assert "no longer suppressed" in invoke(tmp_path, "email", "unsuppress", "bad@example.org").output
    assert invoke(tmp_path, "email", "subscribe", "r@example.org", "--source", "import").exit_code == 0
    issue = invoke(tmp_path, "email", "newsletter", "newsletter", "--context",
                   json.dumps({"title": "T", "intro": "I", "items": []}))
    assert issue.exit_code == 0 and "issue 1 queued" in issue.output
    assert invoke(tmp_path, "email", "messages").exit_code == 0
    assert invoke(tmp_path, "email", "events").exit_code == 0


def test_production_needs_a_secret_key_and_other_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="secret_key is required in production"):
        load_configuration(environ={"CODERIC_ENVIRONMENT": "production"}, read_files=False)
    ok = load_configuration(environ={"CODERIC_ENVIRONMENT": "production", "CODERIC_SECRET_KEY": SECRET}, read_files=False)
    assert ok.kernel.public_url == "http://localhost:8000"
    for key, value in (("CODERIC_EMAIL_URL", "http://mail"), ("CODERIC_PUBLIC_URL", "ftp://x"),
                       ("CODERIC_EMAIL_FROM", "A <a@b.org>\nBcc: c@d.org"), ("CODERIC_SECRET_KEY", "short")):
        with pytest.raises(ConfigError):
            load_configuration(environ={key: value}, read_files=False)
