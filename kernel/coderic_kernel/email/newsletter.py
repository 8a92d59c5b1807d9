"""Sending a newsletter issue to every subscriber, in batches that survive a restart.

``start_issue`` stores the issue and enqueues its first batch. Each ``email.newsletter_batch``
job queues the next ``BATCH`` subscribers (ordered by subscription id, after the issue's
``cursor``), moves the cursor past them and enqueues the next batch, all in one transaction:
a batch interrupted half-way leaves nothing behind and is simply run again. Each message's
idempotency key is ``newsletter:<issue>:<address>``, so no subscriber gets an issue twice.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .tables import EmailSubscription, NewsletterIssue

if TYPE_CHECKING:
    from .service import EmailService

BATCH_JOB = "email.newsletter_batch"
BATCH = 200


async def start_issue(service: EmailService, template: str, context: dict[str, Any]) -> int:
    service.templates.get(template)  # refuse an unknown template now, not in a job
    async with service.kernel.database.transaction():
        inserted = await NewsletterIssue.insert(NewsletterIssue(template=template, context=context)).returning(NewsletterIssue.id)
        issue = int(inserted[0]["id"])
        await service.kernel.plugin("email").jobs.enqueue(BATCH_JOB, {"issue": issue, "cursor": 0}, key=f"{issue}:0")
    return issue


async def run_batch(service: EmailService, issue_id: int, batch: int = BATCH) -> int:
    """Queue the next batch of an issue; return how many messages it queued."""
    async with service.kernel.database.transaction():
        # A write first: it takes the lock (SQLite) or the row (PostgreSQL) for the whole
        # batch, so two runs of one batch cannot interleave, and SQLite never has to upgrade
        # a read transaction under a concurrent writer ("database is locked").
        claimed = await NewsletterIssue.update({NewsletterIssue.status: NewsletterIssue.status}).where(
            (NewsletterIssue.id == issue_id) & (NewsletterIssue.status == "sending")
        ).returning(*NewsletterIssue.all_columns())
        if not claimed:
            return 0
        issue = claimed[0]
        S = EmailSubscription
        rows = await S.select(S.id, S.address).where((S.id > issue["cursor"]) & (S.subscribed == True)).order_by(S.id).limit(batch)  # noqa: E712
        context = issue["context"] if isinstance(issue["context"], dict) else _json(issue["context"])
        for row in rows:
            await service.queue(row["address"], template=issue["template"], context=context,
                                key=f"newsletter:{issue_id}:{row['address']}")
        cursor = rows[-1]["id"] if rows else issue["cursor"]
        changes: dict[Any, Any] = {NewsletterIssue.cursor: cursor, NewsletterIssue.queued: NewsletterIssue.queued + len(rows)}
        if len(rows) < batch:
            changes.update({NewsletterIssue.status: "sent", NewsletterIssue.finished_at: datetime.now(timezone.utc)})
        else:
            await service.kernel.plugin("email").jobs.enqueue(
                BATCH_JOB, {"issue": issue_id, "cursor": cursor}, key=f"{issue_id}:{cursor}"
            )
        await NewsletterIssue.update(changes).where(NewsletterIssue.id == issue_id)
    return len(rows)


def _json(value: Any) -> dict[str, Any]:
    import json

    return dict(json.loads(value)) if value else {}
