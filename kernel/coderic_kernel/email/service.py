"""The email service of one kernel, and ``plugin.email``, each plugin's view of it.

``queue`` renders a message once, stores it (``kernel_email_message``) and enqueues the
``email.send`` job, both in the caller's transaction. ``deliver`` is what that job does: it
sends a stored message unless it went already, so a retried job never sends twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from coderic_sdk import DigestSource, Recipient

from ..services.per_kernel import per_kernel
from . import store
from .backends import EmailBackend, PermanentFailure, backend_from_url
from .message import build, mailbox, message_id, normalise_address, parse_from
from .sns import SnsVerifier
from .tables import EmailMessage
from .templates import Registered, Rendered, Templates, collect
from .tokens import Signer
from .tracking import ROUTES, track, unsubscribe_url

if TYPE_CHECKING:
    from ..kernel import Kernel

logger = logging.getLogger("coderic.email")
SEND_JOB = "email.send"
CATEGORIES = ("transactional", "notifications", "digest", "newsletter")


@per_kernel
def service_for(kernel: Kernel) -> EmailService:
    """The kernel's email service, made on first use: the built-in ``email`` plugin asks for it
    while routes are collected at boot, so a bad template stops boot naming its plugin."""
    return EmailService(kernel)


class EmailService:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.settings = kernel.config.kernel
        self.public_url = self.settings.public_url
        self.sender = parse_from(self.settings.email_from)
        self.signer = Signer(self.settings)
        self.backend: EmailBackend = backend_from_url(self.settings.email_url)
        self.sns = SnsVerifier(self.settings.email_sns_topics)
        self.templates = Templates(
            collect(kernel.hooks, list(kernel.contexts.values())), self.settings.email_templates_dir, self.settings.default_language
        )
        self.digest_sources: list[tuple[str, DigestSource]] = [
            (plugin.name, source) for plugin in kernel.contexts.values() for source in kernel.hooks.digest_sources(plugin)
        ]

    # links ---------------------------------------------------------------------------------

    def link(self, path: str, **query: str) -> str:
        if not path.startswith("/"):
            raise ValueError("a link path starts with '/'")
        return self.public_url + path + (f"?{urlencode(query)}" if query else "")

    def unsubscribe_url(self, address: str, category: str) -> str:
        return unsubscribe_url(self.signer, self.public_url, address, category)

    # rendering -----------------------------------------------------------------------------

    def render(self, name: str, recipient: Recipient, context: Mapping[str, Any], languages: Sequence[str | None],
               unsubscribe: str | None = None) -> Rendered:
        values = {
            **context,
            "recipient": {"address": recipient.address, "name": recipient.name, "user_id": recipient.user_id},
            "link": self.link,
            "public_url": self.public_url,
            "unsubscribe_url": unsubscribe,
        }
        return self.templates.render(name, values, languages)

    def sample(self, name: str, language: str, address: str = "ana@example.org") -> tuple[Registered, Rendered]:
        entry = self.templates.get(name)
        recipient = Recipient(address, name="Ana")
        category = entry.template.category
        unsubscribe = self.unsubscribe_url(address, category) if category != "transactional" else None
        return entry, self.render(name, recipient, entry.template.sample, [language], unsubscribe)

    # queueing ------------------------------------------------------------------------------

    async def queue(
        self,
        to: str | Recipient,
        *,
        template: str | None = None,
        context: Mapping[str, Any] | None = None,
        language: str | None = None,
        key: str | None = None,
        subject: str = "",
        text: str = "",
        html: str | None = None,
        category: str = "transactional",
    ) -> str:
        """Render and store one message and enqueue its sending; return its uid."""
        recipient = Recipient(to) if isinstance(to, str) else to
        address = normalise_address(recipient.address)
        recipient = Recipient(address, recipient.name, recipient.user_id, recipient.language)
        if key is not None:
            existing = await EmailMessage.select(EmailMessage.uid).where(EmailMessage.key == key).first()
            if existing is not None:
                return str(existing["uid"])
        prefs = await store.preferences(address)
        essential, track_it = False, False
        if template is not None:
            entry = self.templates.get(template)
            category, essential, track_it = entry.template.category, entry.template.essential, entry.template.track
        if category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        unsubscribe = self.unsubscribe_url(address, category) if category != "transactional" and not essential else None
        uid = uuid.uuid4().hex
        if template is not None:
            wanted = [language, recipient.language, prefs["language"] if prefs else None]
            rendered = self.render(template, recipient, context or {}, wanted, unsubscribe)
        else:
            rendered = Rendered(subject, text, html, language or recipient.language or self.settings.default_language)
        links: list[str] = []
        body_html = rendered.html
        tracking = self.settings.email_tracking and track_it and not essential and (prefs is None or prefs["tracking"])
        if body_html is not None and tracking:
            body_html, links = track(body_html, uid, self.signer, self.public_url, lambda url: url.startswith(self.public_url + ROUTES))
        headers = {}
        if unsubscribe is not None:
            headers = {"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        built = build(
            sender=self.sender, to=mailbox(address, recipient.name), subject=rendered.subject, text=rendered.text,
            html=body_html, message_id=message_id(uid, self.sender), headers=headers,
        )
        row = EmailMessage(
            uid=uid, key=key, message_id=built["Message-ID"], to_address=address, user_id=recipient.user_id,
            template=template, language=rendered.language, category=category, essential=essential,
            subject=rendered.subject, raw=built.as_bytes().decode("utf-8", "surrogateescape"), links=links,
        )
        async with self.kernel.database.transaction():
            if recipient.user_id is not None and prefs is None:
                await store.set_preferences(address, user_id=recipient.user_id, language=recipient.language)
            query = EmailMessage.insert(row).returning(EmailMessage.uid)
            inserted = await (query.on_conflict(target=EmailMessage.key, action="DO NOTHING") if key is not None else query)
            if not inserted:  # the same key, queued concurrently
                existing = await EmailMessage.select(EmailMessage.uid).where(EmailMessage.key == key).first()
                return str(existing["uid"]) if existing else uid
            await self.kernel.plugin("email").jobs.enqueue(SEND_JOB, {"uid": uid}, key=uid)
        return uid

    # sending -------------------------------------------------------------------------------

    async def deliver(self, uid: str) -> str:
        """Send a queued message once; return what became of it."""
        row = await store.message(uid)
        if row is None:
            return "missing"
        if row["status"] != "queued":
            return row["status"]  # sent (or settled) by an earlier attempt: never twice
        reason = await store.blocked(row)
        if reason is not None:
            await self._settle(uid, "suppressed", reason)
            logger.info("email %s to %s not sent: %s", row["message_id"], row["to_address"], reason)
            return "suppressed"
        try:
            provider_id = await self.backend.send(
                row["raw"].encode("utf-8", "surrogateescape"), self.sender.addr_spec, [row["to_address"]], row["message_id"]
            )
        except PermanentFailure as exc:
            await self._settle(uid, "failed", str(exc))
            logger.error("email %s to %s refused for good: %s", row["message_id"], row["to_address"], exc)
            return "failed"
        await EmailMessage.update(
            {EmailMessage.status: "sent", EmailMessage.sent_at: datetime.now(timezone.utc), EmailMessage.provider_id: provider_id}
        ).where((EmailMessage.uid == uid) & (EmailMessage.status == "queued"))
        return "sent"

    async def _settle(self, uid: str, status: str, error: str) -> None:
        await EmailMessage.update({EmailMessage.status: status, EmailMessage.error: error}).where(EmailMessage.uid == uid)


class PluginMailer:
    """``plugin.email``: the SDK's ``Mailer`` for one plugin (short template names are its own)."""

    def __init__(self, service: EmailService, plugin: str) -> None:
        self.service = service
        self.plugin = plugin

    def _name(self, template: str) -> str:
        return template if template in self.service.templates.by_name else f"{self.plugin}.{template}"

    async def send(self, template: str, to: str | Recipient, context: Mapping[str, Any] | None = None, *,
                   language: str | None = None, key: str | None = None) -> str:
        return await self.service.queue(to, template=self._name(template), context=context, language=language, key=key)

    async def send_message(self, to: str | Recipient, subject: str, text: str, html: str | None = None, *,
                           category: str = "transactional", key: str | None = None) -> str:
        return await self.service.queue(to, subject=subject, text=text, html=html, category=category, key=key)

    def link(self, path: str, **query: str) -> str:
        return self.service.link(path, **query)

    async def subscribe(self, address: str, source: str) -> None:
        """Subscribe to the newsletter, recording consent (now, and ``source``)."""
        await store.subscribe(normalise_address(address), source)

    async def unsubscribe(self, address: str, category: str = "newsletter") -> None:
        await store.unsubscribe(normalise_address(address), category)

    async def set_preferences(self, address: str, *, language: str | None = None, user_id: str | None = None,
                              tracking: bool | None = None, notifications: bool | None = None,
                              digest: bool | None = None) -> None:
        await store.set_preferences(normalise_address(address), language=language, user_id=user_id, tracking=tracking,
                                    notifications=notifications, digest=digest)

    async def send_newsletter(self, template: str, context: Mapping[str, Any] | None = None) -> int:
        from .newsletter import start_issue

        return await start_issue(self.service, self._name(template), dict(context or {}))
