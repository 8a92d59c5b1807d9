"""Build messages with the standard library's ``email`` package (``EmailMessage``, policy
SMTP: CRLF line ends, folded headers, encoded words for non-ASCII).

Nothing that came from outside reaches a header unchecked: a line break (or NUL) in an
address, a display name or a subject raises ``HeaderInjection`` before a message exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

FORBIDDEN = ("\r", "\n", "\0")


class HeaderInjection(ValueError):
    """A header value carried a line break: refused, never "cleaned"."""


def check_header(name: str, value: str) -> str:
    if any(char in value for char in FORBIDDEN):
        raise HeaderInjection(f"the {name} header cannot contain a line break")
    return value


def normalise_address(address: str) -> str:
    """The address as stored and compared: checked, stripped, lower-cased."""
    check_header("To", address)
    address = address.strip()
    try:
        parsed = Address(addr_spec=address)
    except (HeaderParseError, IndexError, ValueError) as exc:
        raise ValueError(f"{address!r} is not an email address") from exc
    if not parsed.username or not parsed.domain or "." not in parsed.domain:
        raise ValueError(f"{address!r} is not an email address")
    return parsed.addr_spec.lower()


def mailbox(address: str, name: str | None = None) -> Address:
    if name is not None:
        check_header("display name", name)
    local, _, domain = address.rpartition("@")
    return Address(display_name=name or "", username=local, domain=domain)


def parse_from(value: str) -> Address:
    """``email_from`` (``Name <address>`` or a bare address) as an ``Address``."""
    check_header("From", value)
    name, address = parseaddr(value)
    if "@" not in address:
        raise ValueError(f"email_from {value!r} has no address")
    return mailbox(address, name or None)


def message_id(uid: str, sender: Address) -> str:
    return f"<{uid}@{sender.domain or 'localhost'}>"


def build(
    *,
    sender: Address,
    to: Address,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """A text message, or multipart/alternative with text first and HTML second."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = check_header("Subject", subject)
    message["Date"] = format_datetime(date or datetime.now(timezone.utc))
    message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = check_header(name, value)
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message
