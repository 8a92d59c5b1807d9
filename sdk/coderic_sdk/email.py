"""Email: what a plugin contributes (templates, digest sources) and the ``Mailer`` it sends with.

Every send goes through the kernel's job outbox, in the caller's database transaction: the
message exists if and only if the change that caused it commits, and a retried job never
sends it twice. See ``docs/email.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

#: What a message is, for opt-outs: transactional mail always goes (unless the address is
#: suppressed); the others honour the recipient's preferences and carry one-click unsubscribe.
Category = Literal["transactional", "notifications", "digest", "newsletter"]


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom a message goes to. ``user_id`` and ``language`` let identity plug in later; without
    a language the kernel uses the address's stored preference, then ``default_language``."""

    address: str
    name: str | None = None
    user_id: str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    """One template of a plugin, named ``<plugin>.<name>``, read from ``folder``:
    ``<folder>/<language>/<name>.subject.txt``, ``<name>.txt`` and (optionally) ``<name>.html``.

    ``essential`` mail (security: password reset, verification) still reaches addresses
    suppressed after complaints, is never tracked and has no unsubscribe link. ``sample`` is
    the context ``coderic email preview`` renders the template with.
    """

    name: str
    folder: Path
    category: Category = "transactional"
    essential: bool = False
    track: bool = True
    sample: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One entry of a weekly digest: a line of text and, usually, a link."""

    title: str
    url: str | None = None
    summary: str | None = None


#: ``async def collect(recipient, since) -> list[DigestItem]``: what is new for this recipient.
DigestCollector = Callable[[Recipient, datetime], Awaitable[Sequence[DigestItem]]]


@dataclass(frozen=True, slots=True)
class DigestSource:
    """A section of the weekly digest, contributed by a plugin. ``title`` heads the section;
    a recipient for whom every source returns nothing gets no digest that week."""

    name: str
    title: str
    collect: DigestCollector


@runtime_checkable
class Mailer(Protocol):
    """``plugin.email``: sends through the outbox; returns the message's id."""

    async def send(
        self,
        template: str,
        to: str | Recipient,
        context: Mapping[str, Any] | None = None,
        *,
        language: str | None = None,
        key: str | None = None,
    ) -> str:
        """Render ``template`` (``<plugin>.<name>``, or ``<name>`` of this plugin) for ``to``
        and queue it. ``key`` makes the call idempotent: a second send with the same key
        returns the first message's id and sends nothing."""
        ...

    async def send_message(
        self,
        to: str | Recipient,
        subject: str,
        text: str,
        html: str | None = None,
        *,
        category: Category = "transactional",
        key: str | None = None,
    ) -> str:
        """Queue a message without a template (no layout, no tracking)."""
        ...

    def link(self, path: str, **query: str) -> str:
        """An absolute link on the platform, from the configured ``public_url``."""
        ...

    async def subscribe(self, address: str, source: str) -> None:
        """Subscribe to the newsletter, recording consent: now, and ``source`` (where it was given)."""
        ...

    async def unsubscribe(self, address: str, category: str = "newsletter") -> None:
        """Stop ``newsletter``, ``digest``, ``notifications`` or ``all`` non-essential mail."""
        ...

    async def set_preferences(
        self,
        address: str,
        *,
        language: str | None = None,
        user_id: str | None = None,
        tracking: bool | None = None,
        notifications: bool | None = None,
        digest: bool | None = None,
    ) -> None:
        """Store an address's preferences (``None`` leaves one as it is). An address with
        preferences and ``digest`` on receives the weekly digest."""
        ...

    async def send_newsletter(self, template: str, context: Mapping[str, Any] | None = None) -> int:
        """Send an issue of ``template`` to every subscriber, in resumable batches; return its id."""
        ...
