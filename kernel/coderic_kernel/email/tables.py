"""The email service's tables, part of the kernel's Piccolo app (``kernel_email_*``).

Addresses are stored lower-cased. Users do not exist yet: preferences are kept per address
(with an optional ``user_id``), so the identity plugin can fill them in later.
"""

from __future__ import annotations

from piccolo.columns import JSON, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

#: queued: rendered, waiting for its job; sent: the backend accepted it; suppressed: not
#: sent (bounced/complained address, or the recipient opted out); failed: refused for good.
MESSAGE_STATUSES = ("queued", "sent", "suppressed", "failed")


class EmailMessage(Table, tablename="kernel_email_message"):
    """One message, rendered once: a retried send job sends exactly these bytes."""

    uid = Varchar(length=32, unique=True)  # in tokens and in the Message-ID
    key = Varchar(length=255, null=True, default=None, unique=True)  # the caller's idempotency key
    message_id = Varchar(length=255)  # the Message-ID header, with its angle brackets
    to_address = Varchar(length=320, index=True)
    user_id = Varchar(length=100, null=True, default=None)
    template = Varchar(length=100, null=True, default=None)
    language = Varchar(length=8)
    category = Varchar(length=16, default="transactional")
    essential = Boolean(default=False)
    subject = Varchar(length=998)
    raw = Text()  # the message as sent (RFC 5322, CRLF line ends)
    links = JSON(default=[])  # the original URLs behind the click tokens, by index
    status = Varchar(length=16, default="queued", index=True)
    provider_id = Varchar(length=255, null=True, default=None, index=True)  # SES MessageId
    error = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)


class EmailEvent(Table, tablename="kernel_email_event"):
    """What happened to a message after it left: open, click, bounce, complaint, delivery, unsubscribe."""

    message_uid = Varchar(length=32, index=True)
    kind = Varchar(length=16)
    url = Text(null=True, default=None)
    detail = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class EmailAddress(Table, tablename="kernel_email_address"):
    """Per-address preferences: language, tracking, and opt-outs of non-essential mail."""

    address = Varchar(length=320, unique=True)
    user_id = Varchar(length=100, null=True, default=None)
    language = Varchar(length=8, null=True, default=None)
    tracking = Boolean(default=True)
    notifications = Boolean(default=True)
    digest = Boolean(default=True)
    last_digest_at = Timestamptz(null=True, default=None)
    updated_at = Timestamptz(default=TimestamptzNow())


class EmailSubscription(Table, tablename="kernel_email_subscription"):
    """Newsletter subscription with its consent: when, and where it was given."""

    address = Varchar(length=320, unique=True)
    subscribed = Boolean(default=True, index=True)
    consent_at = Timestamptz(default=TimestamptzNow())
    consent_source = Varchar(length=200)
    unsubscribed_at = Timestamptz(null=True, default=None)


class EmailSuppression(Table, tablename="kernel_email_suppression"):
    """Addresses that bounced or complained: they get essential mail only (or none, for bounces)."""

    address = Varchar(length=320, unique=True)
    reason = Varchar(length=16)  # bounce, complaint, manual
    detail = Text(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class NewsletterIssue(Table, tablename="kernel_email_newsletter"):
    """One newsletter issue being sent: ``cursor`` is the last subscription id handled, so a
    stopped send resumes where it was."""

    template = Varchar(length=100)
    context = JSON(default={})
    status = Varchar(length=16, default="sending")  # sending, sent
    cursor = Integer(default=0)
    queued = Integer(default=0)
    created_at = Timestamptz(default=TimestamptzNow())
    finished_at = Timestamptz(null=True, default=None)


TABLES = [EmailMessage, EmailEvent, EmailAddress, EmailSubscription, EmailSuppression, NewsletterIssue]
