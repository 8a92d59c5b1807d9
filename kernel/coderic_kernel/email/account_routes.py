"""Email routes for members and admins: a member's own preferences (language, tracking,
notification and digest mail, the newsletter with its consent), and the admin's view of
messages and their events and of suppressed (bouncing, complaining) addresses.

Preferences belong to the signed-in user's current address. Admin routes need the email
plugin's permissions (admins hold them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from coderic_sdk import Conflict, NotFound, Permission, RequestContext, Route, Schema
from pydantic import Field

from ..identity.tables import User
from . import store
from .message import normalise_address
from .tables import EmailMessage, EmailSubscription

MESSAGES_VIEW = "email.messages.view"
SUPPRESSIONS_MANAGE = "email.suppressions.manage"
PERMISSIONS = (
    Permission(MESSAGES_VIEW, "See messages sent and what happened to them (opens, clicks, bounces).", default_roles=()),
    Permission(SUPPRESSIONS_MANAGE, "Mark addresses as bouncing or complaining, and lift that.", default_roles=()),
)
SOURCE = "preferences (API)"


class NewsletterOut(Schema):
    subscribed: bool
    consent_at: datetime | None = Field(description="When consent was given (the latest time).")
    consent_source: str | None = Field(description="Where it was given.")


class PreferencesOut(Schema):
    address: str
    language: str | None = Field(description="Language of mail to this address; `null`: the account's, then the platform's.")
    tracking: bool = Field(description="Opens and clicks may be tracked (never in security mail).")
    notifications: bool = Field(description="Notification mail.")
    digest: bool = Field(description="The weekly digest.")
    newsletter: NewsletterOut
    suppressed: str | None = Field(description="`bounce` or `complaint` when mail to the address is stopped.")


class PreferencesIn(Schema):
    language: Literal["es", "en"] | None = None
    tracking: bool | None = None
    notifications: bool | None = None
    digest: bool | None = None
    newsletter: bool | None = Field(None, description="`true` subscribes, recording your consent now; `false` unsubscribes.")


class EventOut(Schema):
    kind: str = Field(description="`open`, `click`, `bounce`, `complaint`, `delivery`, `unsubscribe`.")
    url: str | None
    detail: str | None
    created_at: datetime


class MessageOut(Schema):
    id: str
    to_address: str
    template: str | None
    category: str
    essential: bool
    language: str
    subject: str
    status: str = Field(description="`queued`, `sent`, `suppressed` or `failed`.")
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    events: list[EventOut]


class MessageList(Schema):
    messages: list[MessageOut]
    next_cursor: str | None


class MessagesQuery(Schema):
    address: str | None = Field(None, max_length=320)
    status: Literal["queued", "sent", "suppressed", "failed"] | None = None
    cursor: str | None = Field(None, pattern=r"^\d+$")
    limit: int = Field(50, ge=1, le=200)


class MessagePath(Schema):
    message_id: str = Field(pattern=r"^[0-9a-f]{32}$")


class SuppressionIn(Schema):
    address: str = Field(max_length=320)
    reason: Literal["bounce", "complaint", "manual"]
    detail: str | None = Field(None, max_length=1000)


class SuppressionOut(Schema):
    address: str
    reason: str
    detail: str | None
    created_at: datetime


class SuppressionList(Schema):
    suppressions: list[SuppressionOut]


class AddressPath(Schema):
    address: str = Field(max_length=320)


# --- a member's preferences ---------------------------------------------------------------


async def _address(ctx: RequestContext[Any, Any, Any]) -> str:
    row = await User.select(User.email).where(User.uid == ctx.require_user().id).first()
    if row is None or not row["email"]:
        raise Conflict("Your account has no email address.")
    return str(row["email"])


async def _preferences(address: str) -> PreferencesOut:
    prefs = await store.preferences(address) or {}
    subscription = await EmailSubscription.select().where(EmailSubscription.address == address).first()
    suppressed = await store.suppression(address)
    return PreferencesOut(
        address=address, language=prefs.get("language"), tracking=prefs.get("tracking", True),
        notifications=prefs.get("notifications", True), digest=prefs.get("digest", True),
        newsletter=NewsletterOut(
            subscribed=bool(subscription and subscription["subscribed"]),
            consent_at=subscription["consent_at"] if subscription else None,
            consent_source=subscription["consent_source"] if subscription else None,
        ),
        suppressed=suppressed["reason"] if suppressed else None,
    )


async def show_preferences(ctx: RequestContext[None, None, Any]) -> PreferencesOut:
    return await _preferences(await _address(ctx))


async def update_preferences(ctx: RequestContext[PreferencesIn, None, Any]) -> PreferencesOut:
    address = await _address(ctx)
    changes = ctx.body.model_dump(exclude_unset=True, exclude={"newsletter"})
    await store.set_preferences(address, user_id=ctx.require_user().id, **changes)
    if ctx.body.newsletter is True:
        await store.subscribe(address, SOURCE)
    elif ctx.body.newsletter is False:
        await store.unsubscribe(address, "newsletter")
    return await _preferences(address)


# --- admins: messages and suppressions ----------------------------------------------------


async def _message_out(row: dict[str, Any]) -> MessageOut:
    events = await store.events(row["uid"], limit=500)
    return MessageOut(
        id=row["uid"], to_address=row["to_address"], template=row["template"], category=row["category"],
        essential=row["essential"], language=row["language"], subject=row["subject"], status=row["status"],
        error=row["error"], created_at=row["created_at"], sent_at=row["sent_at"],
        events=[EventOut(kind=e["kind"], url=e["url"], detail=e["detail"], created_at=e["created_at"]) for e in events],
    )


async def list_messages(ctx: RequestContext[None, MessagesQuery, Any]) -> MessageList:
    query = ctx.query
    M = EmailMessage
    where = []
    if query.address:
        where.append(M.to_address == query.address.strip().lower())
    if query.status:
        where.append(M.status == query.status)
    if query.cursor:
        where.append(M.id < int(query.cursor))
    select = M.select(M.id, M.uid, M.to_address, M.template, M.category, M.essential, M.language, M.subject,
                      M.status, M.error, M.created_at, M.sent_at).order_by(M.id, ascending=False).limit(query.limit + 1)
    rows = await (select.where(*where) if where else select)
    page = rows[: query.limit]
    return MessageList(messages=[await _message_out(row) for row in page],
                       next_cursor=str(page[-1]["id"]) if len(rows) > query.limit else None)


async def show_message(ctx: RequestContext[None, None, MessagePath]) -> MessageOut:
    row = await store.message(ctx.path.message_id)
    if row is None:
        raise NotFound(f"Message {ctx.path.message_id} does not exist.")
    return await _message_out(row)


async def list_suppressions(ctx: RequestContext[None, None, Any]) -> SuppressionList:
    return SuppressionList(suppressions=[SuppressionOut(**{k: row[k] for k in SuppressionOut.model_fields})
                                         for row in await store.suppressions()])


async def add_suppression(ctx: RequestContext[SuppressionIn, None, Any]) -> SuppressionOut:
    from ..identity.users import normalised_email

    address = normalised_email(ctx.body.address, "body.address")
    await store.suppress(address, ctx.body.reason, ctx.body.detail)
    row = await store.suppression(address)
    assert row is not None
    return SuppressionOut(**{k: row[k] for k in SuppressionOut.model_fields})


async def remove_suppression(ctx: RequestContext[None, None, AddressPath]) -> None:
    try:
        address = normalise_address(ctx.path.address)
    except ValueError:
        address = ""
    if not address or not await store.unsuppress(address):
        raise NotFound(f"{ctx.path.address} is not suppressed.")


def routes() -> list[Route]:
    me = {"tags": ("email",), "authenticated": True, "responses": {409: "The account has no email address."}}
    admin = {"tags": ("email", "admin"), "authenticated": True}
    return [
        Route("GET", "/preferences", show_preferences, name="preferences", response=PreferencesOut,
              summary="My email preferences", **me),
        Route("PATCH", "/preferences", update_preferences, name="update_preferences", body=PreferencesIn,
              response=PreferencesOut, summary="Change my email preferences",
              description="Security mail (verification, password reset, sign-in alerts) is always sent and never "
                          "tracked, whatever these say.", **me),
        Route("GET", "/messages", list_messages, name="list_messages", query=MessagesQuery, response=MessageList,
              permission=MESSAGES_VIEW, summary="Messages sent, with their events", **admin),
        Route("GET", "/messages/{message_id}", show_message, name="show_message", path_params=MessagePath,
              response=MessageOut, permission=MESSAGES_VIEW, summary="One message and its events", **admin),
        Route("GET", "/suppressions", list_suppressions, name="list_suppressions", response=SuppressionList,
              permission=SUPPRESSIONS_MANAGE, summary="Suppressed addresses", **admin),
        Route("POST", "/suppressions", add_suppression, name="add_suppression", body=SuppressionIn,
              response=SuppressionOut, status_code=201, permission=SUPPRESSIONS_MANAGE,
              summary="Mark an address as bouncing or complaining",
              description="Non-essential mail to it stops; security mail (sign-in, password) still goes.", **admin),
        Route("DELETE", "/suppressions/{address}", remove_suppression, name="remove_suppression",
              path_params=AddressPath, status_code=204, media_type=None, permission=SUPPRESSIONS_MANAGE,
              summary="Lift a suppression", **admin),
    ]
