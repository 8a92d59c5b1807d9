"""Where one member's notification of one type goes: their choice per channel, else the type's
defaults; and how long quiet hours hold an email."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from coderic_sdk import NotificationType

from .tables import NotificationPreference, NotificationQuietHours

EmailMode = Literal["immediately", "daily", "weekly", "off"]
EMAIL_MODES: tuple[EmailMode, ...] = ("immediately", "daily", "weekly", "off")
_MODE_OF_CHANNEL: dict[str, EmailMode] = {"email": "immediately", "email_daily": "daily", "email_weekly": "weekly"}


@dataclass(frozen=True, slots=True)
class Choice:
    in_app: bool
    email: EmailMode
    push: bool = False  # to the member's subscribed browsers, if any


def default_choice(kind: NotificationType) -> Choice:
    email = next((_MODE_OF_CHANNEL[c] for c in kind.default_channels if c in _MODE_OF_CHANNEL), "off")
    return Choice("in_app" in kind.default_channels, email, "push" in kind.default_channels)


def resolve(kind: NotificationType, row: dict[str, Any] | None) -> Choice:
    """The member's choice where they made one, the type's default elsewhere; required types ignore choices."""
    default = default_choice(kind)
    if row is None or kind.required:
        return default
    in_app = default.in_app if row["in_app"] is None else bool(row["in_app"])
    email = row["email"] or default.email
    if not kind.digestible and email in ("daily", "weekly"):
        email = default.email
    push = default.push if row.get("push") is None else bool(row["push"])
    return Choice(in_app, email, push)


async def choices(user_ids: list[str], kind: NotificationType) -> dict[str, Choice]:
    rows = await NotificationPreference.select(
        NotificationPreference.user_id, NotificationPreference.in_app, NotificationPreference.email, NotificationPreference.push
    ).where(NotificationPreference.user_id.is_in(user_ids) & (NotificationPreference.type == kind.key))
    by_user = {row["user_id"]: row for row in rows}
    return {user: resolve(kind, by_user.get(user)) for user in user_ids}


async def quiet_hours(user_ids: list[str]) -> dict[str, tuple[str, str]]:
    rows = await NotificationQuietHours.select(
        NotificationQuietHours.user_id, NotificationQuietHours.start, NotificationQuietHours.end
    ).where(NotificationQuietHours.user_id.is_in(user_ids))
    return {row["user_id"]: (row["start"], row["end"]) for row in rows}


def parse_clock(value: str) -> time:
    """``HH:MM`` (24 h) or ``ValueError``."""
    hours, _, minutes = value.partition(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours + minutes).isdigit():
        raise ValueError("a time of day is HH:MM, 24-hour (22:00)")
    return time(int(hours), int(minutes))


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def quiet_delay(now: datetime, timezone_name: str | None, start: str, end: str) -> float:
    """Seconds until quiet hours ``start``-``end`` (local to the member) end; 0 outside them."""
    local = now.astimezone(zone(timezone_name))
    begin, finish, clock = parse_clock(start), parse_clock(end), local.time().replace(tzinfo=None)
    if begin == finish:
        return 0.0
    inside = begin <= clock < finish if begin < finish else (clock >= begin or clock < finish)
    if not inside:
        return 0.0
    until = local.replace(hour=finish.hour, minute=finish.minute, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return max(0.0, (until - local).total_seconds())
