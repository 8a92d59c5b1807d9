"""The ``email`` built-in's personal data: the member's addresses with their preferences,
newsletter subscriptions with their consent, suppressions, and the messages sent to them.

Messages are exported as metadata (subject, template, category, status, times, what happened
to them), not their bodies. A user's addresses are their account's address, those of their
linked identities, and any address stored or mailed with their id. Deleting removes every
row about those addresses, suppressions included.
"""

from __future__ import annotations

from typing import Any

from coderic_sdk import PersonalData

from ..email.tables import EmailAddress, EmailEvent, EmailMessage, EmailSubscription, EmailSuppression
from ..identity.tables import LinkedIdentity, User
from .common import rows


def declarations() -> list[PersonalData]:
    return [PersonalData("email", export_email, delete_email,
                         "Addresses and preferences, newsletter consent, suppressions, messages sent (metadata).")]


async def addresses_of(user_id: str) -> set[str]:
    found: set[str] = set()
    user = await User.select(User.email).where(User.uid == user_id).first()
    if user is not None and user["email"]:
        found.add(user["email"])
    for table, column, owner in (
        (LinkedIdentity, LinkedIdentity.email, LinkedIdentity.user_id),
        (EmailAddress, EmailAddress.address, EmailAddress.user_id),
        (EmailMessage, EmailMessage.to_address, EmailMessage.user_id),
    ):
        for row in await table.select(column).where(owner == user_id).distinct():
            if row[column._meta.name]:
                found.add(row[column._meta.name])
    return found


async def _messages(user_id: str, addresses: set[str]) -> list[dict[str, Any]]:
    where = EmailMessage.user_id == user_id
    if addresses:
        where |= EmailMessage.to_address.is_in(sorted(addresses))
    return list(await EmailMessage.select(
        EmailMessage.uid, EmailMessage.to_address, EmailMessage.template, EmailMessage.language, EmailMessage.category,
        EmailMessage.subject, EmailMessage.status, EmailMessage.created_at, EmailMessage.sent_at,
    ).where(where).order_by(EmailMessage.id))


async def export_email(user_id: str) -> dict[str, Any]:
    addresses = await addresses_of(user_id)
    messages = await _messages(user_id, addresses)
    events: dict[str, list[dict[str, Any]]] = {}
    if messages:
        found = await EmailEvent.select(EmailEvent.message_uid, EmailEvent.kind, EmailEvent.created_at).where(
            EmailEvent.message_uid.is_in([m["uid"] for m in messages])
        ).order_by(EmailEvent.id)
        for event in found:
            events.setdefault(event["message_uid"], []).append(event)
    listed = sorted(addresses) or [""]  # is_in needs one value at least
    exported = rows(messages, "uid", "to_address", "template", "language", "category", "subject", "status", "created_at",
                    "sent_at", rename={"uid": "id", "to_address": "to"})
    for message, row in zip(exported, messages):
        message["events"] = rows(events.get(row["uid"], []), "kind", "created_at")
    return {
        "addresses": rows(
            await EmailAddress.select().where(EmailAddress.address.is_in(listed) | (EmailAddress.user_id == user_id)),
            "address", "language", "tracking", "notifications", "digest", "last_digest_at", "updated_at",
        ),
        "newsletter": rows(
            await EmailSubscription.select().where(EmailSubscription.address.is_in(listed)),
            "address", "subscribed", "consent_at", "consent_source", "unsubscribed_at",
        ),
        "suppressions": rows(
            await EmailSuppression.select().where(EmailSuppression.address.is_in(listed)), "address", "reason", "created_at",
        ),
        "messages": exported,
    }


async def delete_email(user_id: str) -> None:
    addresses = await addresses_of(user_id)
    messages = [m["uid"] for m in await _messages(user_id, addresses)]
    for start in range(0, len(messages), 500):
        batch = messages[start:start + 500]
        await EmailEvent.delete().where(EmailEvent.message_uid.is_in(batch))
        await EmailMessage.delete().where(EmailMessage.uid.is_in(batch))
    await EmailAddress.delete().where(EmailAddress.user_id == user_id)
    if addresses:
        listed = sorted(addresses)
        for table in (EmailAddress, EmailSubscription, EmailSuppression):
            await table.delete().where(table.address.is_in(listed))  # type: ignore[attr-defined]
