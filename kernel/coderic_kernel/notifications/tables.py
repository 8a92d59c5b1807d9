"""The kernel's notification tables: one inbox row per recipient, preferences per type, quiet hours,
and the browsers members subscribed to Web Push."""

from __future__ import annotations

import json
from typing import Any

from piccolo.columns import JSON, BigSerial, Boolean, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Notification(Table, tablename="kernel_notification"):
    """What one member was notified of. ``in_app`` rows show in the inbox; the others only
    wait for a digest. ``email`` is where its email stands: ``""`` (none), ``daily`` or
    ``weekly`` (waiting for that digest), ``held`` (until quiet hours end), ``sent``."""

    id = BigSerial(primary_key=True)
    key = Varchar(length=120, unique=True)  # "<fan-out job id>:<user id>": a retried job adds nothing twice
    user_id = Varchar(length=32, index=True)
    type = Varchar(length=120)
    source = Varchar(length=64)
    data = JSON()
    in_app = Boolean(default=True)
    email = Varchar(length=8, default="", index=True)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    read_at = Timestamptz(null=True, default=None)


class NotificationPreference(Table, tablename="kernel_notification_preference"):
    """A member's choice for one type; ``None`` keeps the type's default for that channel."""

    key = Varchar(length=200, unique=True)  # "<user id> <type>"
    user_id = Varchar(length=32, index=True)
    type = Varchar(length=120)
    in_app = Boolean(null=True, default=None)
    email = Varchar(length=12, null=True, default=None)  # immediately | daily | weekly | off
    push = Boolean(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class NotificationQuietHours(Table, tablename="kernel_notification_quiet_hours"):
    """Local times (``HH:MM`` in the member's timezone) between which email waits."""

    user_id = Varchar(length=32, unique=True)
    start = Varchar(length=5)
    end = Varchar(length=5)
    updated_at = Timestamptz(default=TimestamptzNow())


class PushSubscription(Table, tablename="kernel_push_subscription"):
    """One browser's Web Push subscription (its ``PushSubscription`` JSON). An endpoint belongs
    to one browser profile: subscribing it again, as anyone, replaces the row. ``last_*`` say how
    the latest push went (``last_error`` is the push service's status and reason)."""

    id = BigSerial(primary_key=True)
    key = Varchar(length=64, unique=True)  # sha256 of the endpoint: unique without indexing 2 KiB URLs
    user_id = Varchar(length=32, index=True)
    endpoint = Varchar(length=2048)
    p256dh = Varchar(length=100)  # the browser's P-256 public key, base64url
    auth = Varchar(length=32)  # its 16-byte authentication secret, base64url
    expires_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    last_success_at = Timestamptz(null=True, default=None)
    last_failure_at = Timestamptz(null=True, default=None)
    last_error = Varchar(length=200, default="")
    failures = Integer(default=0)  # in a row, since the last success


TABLES = [Notification, NotificationPreference, NotificationQuietHours, PushSubscription]


def to_dict(value: Any) -> dict[str, Any]:
    """A JSON column's value (drivers give text or a dict)."""
    return dict(json.loads(value)) if isinstance(value, (str, bytes)) else dict(value)
