"""The ``email`` built-in plugin: the kernel's email templates, the jobs that send mail,
digests and newsletters, and the tracking, unsubscribe and SES endpoints.

It uses the same hooks as any plugin; the service behind ``plugin.email`` is in
``coderic_kernel/email/``. See ``docs/email.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from coderic_sdk import CronJob, EmailTemplate, Job, JobContext, Permission, PersonalData, PluginContext, Route, hookimpl

from ..email import digest, newsletter
from ..email.account_routes import PERMISSIONS as EMAIL_PERMISSIONS
from ..email.account_routes import routes as account_routes
from ..email.routes import routes
from ..email.service import SEND_JOB, service_for
from ..personal_data import email as email_data

TEMPLATES = Path(__file__).resolve().parent.parent / "email" / "templates"
_SECURITY = {"security_url": "https://coderic.example/account/security"}

#: The kernel's templates: name, category, essential (security mail: always sent, never tracked), sample.
KERNEL_TEMPLATES = (
    EmailTemplate("welcome", TEMPLATES, sample={}),
    EmailTemplate("verify_email", TEMPLATES, essential=True, track=False,
                  sample={"verify_url": "https://coderic.example/verify?token=sample"}),
    EmailTemplate("password_reset", TEMPLATES, essential=True, track=False,
                  sample={"reset_url": "https://coderic.example/reset?token=sample", "expires_minutes": 30}),
    EmailTemplate("email_changed", TEMPLATES, essential=True, track=False,
                  sample={"new_address": "ana.nueva@example.org", **_SECURITY}),
    EmailTemplate("security_alert", TEMPLATES, essential=True, track=False,
                  sample={"when": "2026-11-28 09:30 UTC", "device": "Firefox on Linux", "ip": "203.0.113.7", **_SECURITY}),
    EmailTemplate("notification", TEMPLATES, category="notifications",
                  sample={"notification_type": "message", "title": "Luis sent you a message",
                          "body": "Are you coming to the meetup on Thursday?", "url": "https://coderic.example/messages/1"}),
    EmailTemplate("digest", TEMPLATES, category="digest",
                  sample={"since": "2026-11-21", "sections": [{"title": "Projects", "items": [
                      {"title": "Kernel 0.2 released", "url": "https://coderic.example/p/kernel", "summary": "Email and jobs."}]}]}),
    EmailTemplate("newsletter", TEMPLATES, category="newsletter",
                  sample={"title": "Coderic in November", "intro": "What the community built this month.",
                          "items": [{"title": "Hackathon results", "url": "https://coderic.example/blog/hackathon",
                                     "summary": "Twelve teams, three winners."}]}),
    EmailTemplate("test", TEMPLATES, track=False, sample={}),
    EmailTemplate("data_export_ready", TEMPLATES, track=False,
                  sample={"export_url": "https://coderic.example/account/data", "expires_at": "2026-12-07 09:30 UTC"}),
)


async def send(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await service_for(ctx.plugin.kernel).deliver(str(payload["uid"]))  # type: ignore[arg-type]


async def send_digest(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await digest.send_digest(service_for(ctx.plugin.kernel), str(payload["address"]), str(payload["week"]))  # type: ignore[arg-type]


async def weekly_digest(ctx: JobContext) -> None:
    count = await digest.fan_out(service_for(ctx.plugin.kernel))  # type: ignore[arg-type]
    ctx.plugin.logger.info("weekly digest: %d address(es) to look at", count)


async def newsletter_batch(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await newsletter.run_batch(service_for(ctx.plugin.kernel), int(payload["issue"]))  # type: ignore[arg-type]


@hookimpl
def register_email_templates() -> list[EmailTemplate]:
    return list(KERNEL_TEMPLATES)


@hookimpl
def register_jobs() -> list[Job | CronJob]:
    return [
        # An SMTP outage must not kill mail: 20 attempts, from 1 s apart doubling up to an hour
        # (about nine hours in all); then `coderic jobs retry` sends it.
        Job(SEND_JOB.split(".", 1)[1], send, max_attempts=20, backoff=1.0, timeout=120),
        Job(digest.DIGEST_JOB.split(".", 1)[1], send_digest, max_attempts=5, timeout=300),
        Job(newsletter.BATCH_JOB.split(".", 1)[1], newsletter_batch, max_attempts=10, timeout=600),
        CronJob("weekly_digest", weekly_digest, weekday=0, hour=8, minute=0, timeout=600),  # Mondays 08:00 UTC
    ]


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    service_for(plugin.kernel)  # type: ignore[arg-type]  # collects every plugin's templates now, at boot
    return [*routes(), *account_routes()]


@hookimpl
def register_permissions() -> list[Permission]:
    return list(EMAIL_PERMISSIONS)


@hookimpl
def register_personal_data() -> list[PersonalData]:
    return email_data.declarations()
