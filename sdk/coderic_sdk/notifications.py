"""Notifications: the types a plugin declares and the ``Notifier`` it sends them with.

A plugin declares each kind of notification once (``register_notification_types``) and then
calls ``plugin.notifications.notify(recipients, type, data)``. The kernel does the rest: the
member's inbox, real-time delivery to their open pages, email right away or in a daily or
weekly digest, Web Push to their browsers, as each member chose per type, and quiet hours. See ``docs/notifications.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

#: Where a notification can go: the in-app inbox (and open pages, in real time), an email
#: right away, a line in the daily or weekly digest email, or a Web Push notification to the
#: member's subscribed browsers. A type's email goes one way only.
Channel = Literal["in_app", "email", "email_daily", "email_weekly", "push"]
CHANNELS: tuple[Channel, ...] = ("in_app", "email", "email_daily", "email_weekly", "push")
EMAIL_CHANNELS: tuple[Channel, ...] = ("email", "email_daily", "email_weekly")
_KEY = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class NotificationType:
    """One kind of notification, ``<plugin>.<name>`` (``projects.update``).

    ``default_channels`` are where it goes for members who chose nothing for it.
    ``email_template`` renders its emails (the kernel's ``email.notification`` shows
    ``data["title"]``, ``data["body"]`` and ``data["url"]``); ``digestible``: members may
    receive it in a daily or weekly digest instead of one email each. ``required`` types
    (security alerts) ignore preferences and quiet hours: they always go to their default
    channels, and members cannot turn them off.
    """

    key: str
    description: str
    default_channels: tuple[Channel, ...] = ("in_app",)
    email_template: str = "email.notification"
    digestible: bool = True
    required: bool = False

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"notification type {self.key!r} must be named '<plugin>.<name>' (lower case)")
        unknown = [c for c in self.default_channels if c not in CHANNELS]
        if unknown:
            raise ValueError(f"notification type {self.key!r}: unknown channel(s) {unknown}; channels are {list(CHANNELS)}")
        if sum(c in EMAIL_CHANNELS for c in self.default_channels) > 1:
            raise ValueError(f"notification type {self.key!r}: pick one of {list(EMAIL_CHANNELS)} as its email channel")
        if not self.digestible and any(c in ("email_daily", "email_weekly") for c in self.default_channels):
            raise ValueError(f"notification type {self.key!r} is not digestible but defaults to a digest")


@runtime_checkable
class Notifier(Protocol):
    """``plugin.notifications``: sends this plugin's notification types."""

    async def notify(self, recipients: Iterable[str], type: str, data: Mapping[str, Any], *,
                     key: str | None = None) -> str:
        """Notify each user id of ``recipients`` of ``type`` (``<plugin>.<name>``, or ``<name>``
        of this plugin) with JSON-safe ``data`` (``title`` required; ``body``, ``url`` usual).

        Written to the outbox in the caller's database transaction, if any: members are
        notified if and only if the change that caused it commits. A job then delivers it to
        each recipient's channels. ``key`` makes the call idempotent. Returns the job's id.
        """
        ...
