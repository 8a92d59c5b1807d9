"""The member's inbox, their preferences, the SSE stream and admins' announcements, under
``/api/v1/notifications``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from coderic_sdk import FieldError, NotFound, Permission, Problem, RequestContext, Route, Schema
from pydantic import Field
from starlette.responses import StreamingResponse

from ..identity.tables import User
from . import preferences
from .service import ITEM_COLUMNS, as_item, notifications_for
from .stream import sse_response
from .tables import Notification, NotificationPreference, NotificationQuietHours

ANNOUNCE = "notifications.announce"
PERMISSIONS = (Permission(ANNOUNCE, "Send system announcements to everyone or to the holders of a role."),)
N = Notification
TAGS = ("notifications",)
CHANNEL_FIELDS = ("in_app", "email", "push")


class NotificationOut(Schema):
    id: int
    type: str = Field(description="`<plugin>.<name>`, a declared notification type.")
    source: str = Field(description="The plugin that sent it.")
    data: dict[str, Any] = Field(description="What the plugin sent: `title`, usually `body` and `url`, and its own keys.")
    created_at: datetime
    read: bool
    read_at: datetime | None


class Page(Schema):
    items: list[NotificationOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; `null` on the last.")
    unread: int


class ListQuery(Schema):
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")
    unread: bool = Field(False, description="Only unread notifications.")
    limit: int = Field(20, ge=1, le=100)


class IdPath(Schema):
    notification_id: int


class UnreadOut(Schema):
    unread: int


class StreamQuery(Schema):
    after: int | None = Field(None, ge=0, description="Replay notifications newer than this id first.")


class TypeChoice(Schema):
    in_app: bool | None = Field(None, description="Show in the inbox and open pages; `null`: the type's default; "
                                "left out: as it was.")
    email: Literal["immediately", "daily", "weekly", "off"] | None = Field(None, description="`null`: the type's default; "
                                                                            "left out: as it was.")
    push: bool | None = Field(None, description="Web Push to your subscribed browsers; `null`: the type's default; "
                              "left out: as it was.")


class QuietHours(Schema):
    start: str = Field(description="Local time (your profile's timezone) from which email waits, `HH:MM`.", examples=["22:00"])
    end: str = Field(description="Local time at which held email goes out, `HH:MM`.", examples=["07:00"])


class TypePreference(Schema):
    type: str
    description: str
    in_app: bool
    email: Literal["immediately", "daily", "weekly", "off"]
    push: bool = Field(description="Pushed to your subscribed browsers (when the platform has Web Push).")
    default_in_app: bool
    default_email: Literal["immediately", "daily", "weekly", "off"]
    default_push: bool
    digestible: bool = Field(description="May go in the daily or weekly digest.")
    required: bool = Field(description="Security alerts: always sent, preferences do not apply.")


class PreferencesOut(Schema):
    types: list[TypePreference]
    quiet_hours: QuietHours | None
    timezone: str = Field(description="Quiet hours are in this timezone (the profile's).")


class PreferencesIn(Schema):
    types: dict[str, TypeChoice] = Field(default_factory=dict, description="Type -> choice; types left out stay as they are.")
    quiet_hours: QuietHours | None = Field(None, description="`null` turns quiet hours off; leave out to keep them.")


class AnnouncementIn(Schema):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field("", max_length=5000)
    url: str | None = Field(None, max_length=2048)
    role: str | None = Field(None, description="Only holders of this role (global grants); unset: every active member.")


class AnnouncementOut(Schema):
    job_id: str


async def list_notifications(ctx: RequestContext[None, ListQuery, None]) -> Page:
    user = ctx.require_user()
    query = ctx.query
    where = (N.user_id == user.id) & N.in_app.eq(True)
    if query.cursor is not None:
        if not query.cursor.isdigit():
            raise Problem(422, "The request query is invalid.", errors=[FieldError("query.cursor", "not a cursor this API gave")])
        where &= N.id < int(query.cursor)
    if query.unread:
        where &= N.read_at.is_null()
    rows = await N.select(*ITEM_COLUMNS).where(where).order_by(N.id, ascending=False).limit(query.limit + 1)
    more = len(rows) > query.limit
    rows = rows[:query.limit]
    service = notifications_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    return Page(items=[NotificationOut.model_validate(as_item(r)) for r in rows],
                next_cursor=str(rows[-1]["id"]) if more else None, unread=await service.unread_count(user.id))


async def unread_count(ctx: RequestContext[None, None, None]) -> UnreadOut:
    service = notifications_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    return UnreadOut(unread=await service.unread_count(ctx.require_user().id))


async def _mark(ctx: RequestContext[None, None, IdPath], read: bool) -> UnreadOut:
    user = ctx.require_user()
    mine = (N.id == ctx.path.notification_id) & (N.user_id == user.id) & N.in_app.eq(True)
    if not await N.exists().where(mine):
        raise NotFound("No such notification in your inbox.")
    await N.update({N.read_at: datetime.now(timezone.utc) if read else None}).where(
        mine & (N.read_at.is_null() if read else N.read_at.is_not_null())
    )
    return UnreadOut(unread=await notifications_for(ctx.plugin.kernel).publish_unread(user.id))  # type: ignore[arg-type]


async def mark_read(ctx: RequestContext[None, None, IdPath]) -> UnreadOut:
    return await _mark(ctx, True)


async def mark_unread(ctx: RequestContext[None, None, IdPath]) -> UnreadOut:
    return await _mark(ctx, False)


async def mark_all_read(ctx: RequestContext[None, None, None]) -> UnreadOut:
    user = ctx.require_user()
    await N.update({N.read_at: datetime.now(timezone.utc)}).where((N.user_id == user.id) & N.read_at.is_null())
    return UnreadOut(unread=await notifications_for(ctx.plugin.kernel).publish_unread(user.id))  # type: ignore[arg-type]


async def get_preferences(ctx: RequestContext[None, None, None]) -> PreferencesOut:
    user = ctx.require_user()
    service = notifications_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    rows = {r["type"]: r for r in await NotificationPreference.select().where(NotificationPreference.user_id == user.id)}
    types = []
    for key, (_, kind) in sorted(service.types.items()):
        chosen, default = preferences.resolve(kind, rows.get(key)), preferences.default_choice(kind)
        types.append(TypePreference(type=key, description=kind.description, in_app=chosen.in_app, email=chosen.email,
                                    push=chosen.push, default_in_app=default.in_app, default_email=default.email,
                                    default_push=default.push,
                                    digestible=kind.digestible, required=kind.required))
    quiet = await NotificationQuietHours.select().where(NotificationQuietHours.user_id == user.id).first()
    profile = await User.select(User.timezone).where(User.uid == user.id).first()
    return PreferencesOut(types=types, quiet_hours=QuietHours(start=quiet["start"], end=quiet["end"]) if quiet else None,
                          timezone=(profile or {}).get("timezone") or "UTC")


def _check(service: Any, body: PreferencesIn) -> list[FieldError]:
    errors = []
    for key, choice in body.types.items():
        where = f"body.types.{key}"
        if key not in service.types:
            errors.append(FieldError(where, "not a notification type (GET /api/v1/notifications/preferences lists them)", "unknown"))
            continue
        kind = service.kind(key)
        if kind.required and any(getattr(choice, f) is not None for f in CHANNEL_FIELDS):
            errors.append(FieldError(where, f"{kind.description}: cannot be turned off or changed", "required"))
        elif choice.email in ("daily", "weekly") and not kind.digestible:
            errors.append(FieldError(f"{where}.email", "this type is never put in a digest", "not_digestible"))
    if body.quiet_hours is not None:
        for part in ("start", "end"):
            try:
                preferences.parse_clock(getattr(body.quiet_hours, part))
            except ValueError as exc:
                errors.append(FieldError(f"body.quiet_hours.{part}", str(exc)))
    return errors


async def set_preferences(ctx: RequestContext[PreferencesIn, None, None]) -> PreferencesOut:
    user, body = ctx.require_user(), ctx.body
    service = notifications_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    errors = _check(service, body)
    if errors:
        raise Problem(422, "The request body is invalid.", errors=errors)
    now = datetime.now(timezone.utc)
    P, Q = NotificationPreference, NotificationQuietHours
    async with ctx.plugin.kernel.database.transaction():
        for key, choice in body.types.items():
            given = choice.model_fields_set  # left out: as it was; null: the type's default
            values = {P.updated_at: now, **{getattr(P, f): getattr(choice, f) for f in CHANNEL_FIELDS if f in given}}
            await P.insert(P(key=f"{user.id} {key}", user_id=user.id, type=key, in_app=choice.in_app,
                             email=choice.email, push=choice.push, updated_at=now)).on_conflict(target=P.key, action="DO UPDATE", values=list(values.items()))
        if "quiet_hours" in body.model_fields_set:
            await Q.delete().where(Q.user_id == user.id)
            if body.quiet_hours is not None:
                await Q.insert(Q(user_id=user.id, start=body.quiet_hours.start, end=body.quiet_hours.end, updated_at=now))
    return await get_preferences(ctx)  # type: ignore[arg-type]


async def stream(ctx: RequestContext[None, StreamQuery, None]) -> StreamingResponse:
    user = ctx.require_user()
    if "text/event-stream" not in ctx.request.headers.get("accept", ""):
        raise Problem(406, "Ask for text/event-stream (EventSource does), or open a WebSocket at this path.")
    after = ctx.query.after
    last = ctx.request.headers.get("last-event-id")
    if last is not None and last.isdigit():
        after = int(last)  # the browser's own reconnect says where it stopped
    return sse_response(notifications_for(ctx.plugin.kernel), user, after)  # type: ignore[arg-type]


async def announce(ctx: RequestContext[AnnouncementIn, None, None]) -> AnnouncementOut:
    user, body = ctx.require_user(), ctx.body
    service = notifications_for(ctx.plugin.kernel)  # type: ignore[arg-type]
    return AnnouncementOut(job_id=await service.announce(user.id, body.title, body.body, body.url, body.role))


def routes() -> list[Route]:
    common: dict[str, Any] = {"authenticated": True, "tags": TAGS}
    return [
        Route("GET", "", list_notifications, name="list", query=ListQuery, response=Page,
              summary="Your notifications", description="Newest first, a page at a time (`cursor`); `unread=true` for unread only.",
              **common),
        Route("GET", "/unread-count", unread_count, name="unread_count", response=UnreadOut, summary="How many are unread", **common),
        Route("POST", "/{notification_id}/read", mark_read, name="mark_read", path_params=IdPath, response=UnreadOut,
              summary="Mark one read", responses={404: "Not in your inbox."}, **common),
        Route("POST", "/{notification_id}/unread", mark_unread, name="mark_unread", path_params=IdPath, response=UnreadOut,
              summary="Mark one unread", responses={404: "Not in your inbox."}, **common),
        Route("POST", "/read-all", mark_all_read, name="mark_all_read", response=UnreadOut, summary="Mark all read", **common),
        Route("GET", "/preferences", get_preferences, name="get_preferences", response=PreferencesOut,
              summary="Where each type goes", description="Per type: in the inbox or not, email immediately, in the daily "
              "or weekly digest, or never, and pushed to your browsers or not; quiet hours hold email.", **common),
        Route("PATCH", "/preferences", set_preferences, name="set_preferences", body=PreferencesIn, response=PreferencesOut,
              summary="Choose where each type goes", responses={422: "An unknown type, a required one, a bad time."}, **common),
        Route("GET", "/stream", stream, name="stream", query=StreamQuery, media_type="text/event-stream",
              summary="New notifications as they happen (Server-Sent Events)",
              description="The fallback of the WebSocket at the same path: `event: notification|unread|hello`, `id:` the "
              "notification's id; a comment line every heartbeat. `after` or `Last-Event-ID` replays what came since. "
              "The request must accept `text/event-stream` (406 otherwise).",
              **common),
        Route("POST", "/announcements", announce, name="announce", body=AnnouncementIn, response=AnnouncementOut,
              status_code=202, permission=ANNOUNCE, summary="Announce to everyone or a role",
              description="Queued: every active member (or each holder of `role`) gets a `notifications.announcement`.",
              tags=TAGS),
    ]
