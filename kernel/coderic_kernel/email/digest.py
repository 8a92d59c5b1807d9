"""The weekly digest: a cron job fans out one ``email.digest`` job per address, and each of
those asks every plugin's digest sources what is new for that recipient since their last
digest. Addresses that opted out, are suppressed, or have nothing new get nothing.

Recipients are the addresses with a preferences row (``kernel_email_address``) whose
``digest`` is on: the identity plugin will keep one per user; until then plugins create
them with ``plugin.email.set_preferences``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from coderic_sdk import Recipient

from ..errors import describe
from . import store
from .tables import EmailAddress

if TYPE_CHECKING:
    from .service import EmailService

DIGEST_JOB = "email.digest"
TEMPLATE = "email.digest"
PERIOD = timedelta(days=7)
FAN_OUT_BATCH = 500


def week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


async def fan_out(service: EmailService, moment: datetime | None = None) -> int:
    """Enqueue this week's digest job for every address that wants one; return how many."""
    week = week_of(moment or datetime.now(timezone.utc))
    jobs = service.kernel.plugin("email").jobs
    count, last = 0, 0
    while True:
        rows = await EmailAddress.select(EmailAddress.id, EmailAddress.address).where(
            (EmailAddress.id > last) & (EmailAddress.digest == True)  # noqa: E712
        ).order_by(EmailAddress.id).limit(FAN_OUT_BATCH)
        if not rows:
            return count
        for row in rows:
            await jobs.enqueue(DIGEST_JOB, {"address": row["address"], "week": week}, key=f"{week}:{row['address']}")
        count += len(rows)
        last = rows[-1]["id"]


async def collect(service: EmailService, recipient: Recipient, since: datetime) -> list[dict[str, Any]]:
    """Every non-empty section for this recipient."""
    sections = []
    for plugin, source in service.digest_sources:
        try:
            items = await source.collect(recipient, since)
        except Exception as exc:
            raise RuntimeError(f"digest source {plugin}.{source.name} failed: {describe(exc)}") from exc
        if items:
            sections.append({
                "title": source.title,
                "items": [{"title": i.title, "url": i.url, "summary": i.summary} for i in items],
            })
    return sections


async def send_digest(service: EmailService, address: str, week: str) -> str:
    """One recipient's digest; returns ``sent``, ``opted-out``, ``suppressed`` or ``empty``."""
    prefs = await store.preferences(address)
    if prefs is None or not prefs["digest"]:
        return "opted-out"
    if await store.suppression(address) is not None:
        return "suppressed"
    moment = datetime.now(timezone.utc)
    since = prefs["last_digest_at"] or moment - PERIOD
    recipient = Recipient(address, user_id=prefs["user_id"], language=prefs["language"])
    sections = await collect(service, recipient, since)
    if not sections:
        return "empty"
    async with service.kernel.database.transaction():  # the write first: see newsletter.run_batch
        await EmailAddress.update({EmailAddress.last_digest_at: moment}).where(EmailAddress.address == address)
        await service.queue(recipient, template=TEMPLATE, key=f"digest:{week}:{address}",
                            context={"sections": sections, "since": since.date().isoformat()})
    return "sent"
