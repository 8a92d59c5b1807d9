"""Reading and writing per-address state: preferences, newsletter subscriptions with their
consent, suppressions, and events. Addresses are normalised before they get here."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .tables import EmailAddress, EmailEvent, EmailMessage, EmailSubscription, EmailSuppression

PREFERENCES = ("language", "user_id", "tracking", "notifications", "digest")
SUPPRESSION_REASONS = ("bounce", "complaint", "manual")


def now() -> datetime:
    return datetime.now(timezone.utc)


async def preferences(address: str) -> dict[str, Any] | None:
    return await EmailAddress.select().where(EmailAddress.address == address).first()


async def set_preferences(address: str, **changes: Any) -> None:
    """Create or update the address's row; ``None`` values are left as they are."""
    values = {key: value for key, value in changes.items() if value is not None}
    unknown = set(values) - set(PREFERENCES) - {"last_digest_at"}
    if unknown:
        raise ValueError(f"unknown email preference(s): {sorted(unknown)}; known: {', '.join(PREFERENCES)}")
    row = EmailAddress(address=address, **values)
    columns = [getattr(EmailAddress, key) for key in values]
    query = EmailAddress.insert(row)
    if columns:
        await query.on_conflict(
            target=EmailAddress.address, action="DO UPDATE", values=[*columns, EmailAddress.updated_at]
        )
    else:
        await query.on_conflict(target=EmailAddress.address, action="DO NOTHING")


async def suppression(address: str) -> dict[str, Any] | None:
    return await EmailSuppression.select().where(EmailSuppression.address == address).first()


async def suppress(address: str, reason: str, detail: str | None = None) -> None:
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"reason must be one of {', '.join(SUPPRESSION_REASONS)}")
    await EmailSuppression.insert(EmailSuppression(address=address, reason=reason, detail=detail)).on_conflict(
        target=EmailSuppression.address, action="DO UPDATE",
        values=[EmailSuppression.reason, EmailSuppression.detail, EmailSuppression.created_at],
    )


async def unsuppress(address: str) -> bool:
    removed = await EmailSuppression.delete().where(EmailSuppression.address == address).returning(EmailSuppression.id)
    return bool(removed)


async def suppressions(limit: int = 1000) -> list[dict[str, Any]]:
    return await EmailSuppression.select().order_by(EmailSuppression.created_at, ascending=False).limit(limit)


async def subscribe(address: str, source: str) -> None:
    """Record consent: when (now) and where (``source``: a form, an import, the CLI)."""
    row = EmailSubscription(address=address, subscribed=True, consent_at=now(), consent_source=source, unsubscribed_at=None)
    await EmailSubscription.insert(row).on_conflict(
        target=EmailSubscription.address, action="DO UPDATE",
        values=[EmailSubscription.subscribed, EmailSubscription.consent_at, EmailSubscription.consent_source,
                EmailSubscription.unsubscribed_at],
    )


async def unsubscribe(address: str, category: str) -> None:
    """Stop one category of non-essential mail; ``all`` stops every one of them."""
    if category in {"newsletter", "all"}:
        await EmailSubscription.update({EmailSubscription.subscribed: False, EmailSubscription.unsubscribed_at: now()}).where(
            (EmailSubscription.address == address) & (EmailSubscription.subscribed == True)  # noqa: E712
        )
    if category in {"digest", "notifications", "all"}:
        changes = {"digest": False, "notifications": False} if category == "all" else {category: False}
        await set_preferences(address, **changes)


async def blocked(message: dict[str, Any]) -> str | None:
    """Why this message must not go out now, or ``None``."""
    if message["essential"]:
        return None
    address = message["to_address"]
    suppressed = await suppression(address)
    if suppressed is not None:
        return f"address suppressed ({suppressed['reason']})"
    category = message["category"]
    if category == "newsletter":
        row = await EmailSubscription.select(EmailSubscription.subscribed).where(EmailSubscription.address == address).first()
        return None if row and row["subscribed"] else "not subscribed to the newsletter"
    if category in {"digest", "notifications"}:
        prefs = await preferences(address)
        if prefs is not None and not prefs[category]:
            return f"opted out of {category}"
    return None


async def record_event(message_uid: str, kind: str, url: str | None = None, detail: str | None = None) -> None:
    await EmailEvent.insert(EmailEvent(message_uid=message_uid, kind=kind, url=url, detail=detail))


async def events(message_uid: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = EmailEvent.select().order_by(EmailEvent.id, ascending=False).limit(limit)
    if message_uid is not None:
        query = query.where(EmailEvent.message_uid == message_uid)
    return await query


async def message(uid: str) -> dict[str, Any] | None:
    return await EmailMessage.select().where(EmailMessage.uid == uid).first()
