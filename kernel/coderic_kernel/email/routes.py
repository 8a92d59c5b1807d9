"""HTTP endpoints of the email service, under ``/api/v1/email/``. None needs a login: each
is authorised by the signed token in its path (or, for SNS, by the message's signature).

- ``GET /open/{token}``: the tracking pixel; records an ``open`` event.
- ``GET /click/{token}``: records a ``click`` and redirects to the link that was in the message.
- ``GET /unsubscribe/{token}``: a page with one button; ``POST`` to the same URL unsubscribes
  (RFC 8058 one-click: mail clients POST ``List-Unsubscribe=One-Click`` there). A GET never
  unsubscribes: link scanners fetch every GET in a message.
- ``POST /ses``: SES notifications through SNS: bounces and complaints suppress the address.
"""

from __future__ import annotations

import html
import json
import logging
from typing import Any

from coderic_sdk import Forbidden, NotFound, RequestContext, Route, Schema
from pydantic import Field
from starlette.responses import HTMLResponse, RedirectResponse, Response

from . import store
from .service import service_for
from .sns import NotGenuine, SnsVerifier
from .tables import EmailMessage
from .tracking import PIXEL_GIF

logger = logging.getLogger("coderic.email")
MAX_SNS_BYTES = 256 * 1024
NO_STORE = {"Cache-Control": "no-store, private"}
TEXTS = {
    "en": {
        "title": "Unsubscribe", "ask": "Stop sending {what} to {address}?", "button": "Unsubscribe",
        "done": "{address} will no longer receive {what}.",
        "newsletter": "the newsletter", "digest": "the weekly digest", "notifications": "notification emails",
        "all": "any email that is not about your account's security",
    },
    "es": {
        "title": "Darse de baja", "ask": "¿Dejar de enviar {what} a {address}?", "button": "Darme de baja",
        "done": "{address} ya no recibirá {what}.",
        "newsletter": "el boletín", "digest": "el resumen semanal", "notifications": "los correos de notificaciones",
        "all": "ningún correo que no trate de la seguridad de tu cuenta",
    },
}


class TokenPath(Schema):
    token: str = Field(min_length=1, max_length=2048, description="The signed token from the message.")


def _service(ctx: RequestContext[Any, Any, Any]) -> Any:
    return service_for(ctx.plugin.kernel)  # type: ignore[arg-type]


async def open_pixel(ctx: RequestContext[None, None, TokenPath]) -> Response:
    fields = _service(ctx).signer.verify("open", ctx.path.token, 1)
    if fields is None or await store.message(fields[0]) is None:
        raise NotFound("No such message.")
    await store.record_event(fields[0], "open")
    return Response(PIXEL_GIF, media_type="image/gif", headers=NO_STORE)


async def click(ctx: RequestContext[None, None, TokenPath]) -> Response:
    fields = _service(ctx).signer.verify("click", ctx.path.token, 2)
    if fields is None or not fields[1].isdigit():
        raise NotFound("No such link.")
    row = await EmailMessage.select(EmailMessage.links).where(EmailMessage.uid == fields[0]).first()
    links = row["links"] if row else []
    links = json.loads(links) if isinstance(links, str) else links
    index = int(fields[1])
    if index >= len(links):
        raise NotFound("No such link.")
    await store.record_event(fields[0], "click", url=links[index])
    return RedirectResponse(links[index], status_code=302, headers=NO_STORE)


async def _unsubscribe_target(ctx: RequestContext[None, None, TokenPath]) -> tuple[str, str, dict[str, str]]:
    service = _service(ctx)
    fields = service.signer.verify("unsubscribe", ctx.path.token, 2)
    if fields is None:
        raise NotFound("No such subscription.")
    address, category = fields
    prefs = await store.preferences(address)
    language = (prefs or {}).get("language") or service.settings.default_language
    return address, category, TEXTS.get(language, TEXTS["en"])


def _page(texts: dict[str, str], body: str) -> HTMLResponse:
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">'
        f'<title>{texts["title"]}</title></head><body style="font-family:sans-serif;max-width:32rem;margin:4rem auto">'
        f"{body}</body></html>"
    )
    return HTMLResponse(page, headers=NO_STORE)


async def unsubscribe_page(ctx: RequestContext[None, None, TokenPath]) -> Response:
    address, category, texts = await _unsubscribe_target(ctx)
    question = texts["ask"].format(what=texts.get(category, category), address=html.escape(address))
    return _page(texts, f'<form method="post"><p>{question}</p><button type="submit">{texts["button"]}</button></form>')


async def unsubscribe(ctx: RequestContext[None, None, TokenPath]) -> Response:
    address, category, texts = await _unsubscribe_target(ctx)
    await store.unsubscribe(address, category)
    logger.info("%s unsubscribed from %s", address, category)
    return _page(texts, f"<p>{texts['done'].format(what=texts.get(category, category), address=html.escape(address))}</p>")


async def ses_notification(ctx: RequestContext[None, None, dict[str, str]]) -> Response:
    return await handle_sns(_service(ctx).sns, await ctx.request.body())


async def handle_sns(verifier: SnsVerifier, raw: bytes) -> Response:
    refused = Forbidden("Not a genuine SNS message from a configured topic.")
    if len(raw) > MAX_SNS_BYTES:
        raise refused
    try:
        message = json.loads(raw)
        if not isinstance(message, dict):
            raise ValueError("not an object")
        await verifier.verify(message)
        if message["Type"] == "SubscriptionConfirmation":
            await verifier.confirm(message)
            logger.info("confirmed the SNS subscription to %s", message["TopicArn"])
    except (ValueError, NotGenuine) as exc:
        logger.warning("SNS message refused: %s", exc)
        raise refused from None
    if message["Type"] == "Notification":
        await apply_notification(message["Message"])
    return Response(status_code=204)


async def apply_notification(text: str) -> None:
    """Record an SES event; permanent bounces and complaints suppress their addresses."""
    try:
        note = json.loads(text)
    except ValueError:
        return
    kind = str(note.get("notificationType") or note.get("eventType") or "").lower()
    provider_id = (note.get("mail") or {}).get("messageId")
    row = None
    if provider_id:
        row = await EmailMessage.select(EmailMessage.uid).where(EmailMessage.provider_id == provider_id).first()
    addresses: list[str] = []
    detail = kind
    if kind == "bounce":
        bounce = note.get("bounce") or {}
        detail = f"bounce {bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
        if bounce.get("bounceType") == "Permanent":
            addresses = [r.get("emailAddress", "") for r in bounce.get("bouncedRecipients", [])]
    elif kind == "complaint":
        addresses = [r.get("emailAddress", "") for r in (note.get("complaint") or {}).get("complainedRecipients", [])]
    for address in addresses:
        if address:
            await store.suppress(address.strip().lower(), "complaint" if kind == "complaint" else "bounce", detail)
    if row is not None and kind in {"bounce", "complaint", "delivery"}:
        await store.record_event(row["uid"], kind, detail=detail)


def routes() -> list[Route]:
    token = {"path_params": TokenPath, "responses": {404: "The token is not genuine, or names nothing."}}
    return [
        Route("GET", "/open/{token}", open_pixel, name="open", media_type="image/gif", summary="Tracking pixel",
              description="Records that the message was opened; answers a 1x1 transparent GIF.", **token),
        Route("GET", "/click/{token}", click, name="click", status_code=302, media_type=None,
              summary="Tracked link", description="Records the click and redirects to the link the message carried.",
              **token),
        Route("GET", "/unsubscribe/{token}", unsubscribe_page, name="unsubscribe_page", media_type="text/html",
              summary="Unsubscribe page", description="A page asking to confirm; it changes nothing by itself.", **token),
        Route("POST", "/unsubscribe/{token}", unsubscribe, name="unsubscribe", media_type="text/html",
              summary="Unsubscribe (one click)",
              description="RFC 8058 one-click unsubscribe: a POST (any body) stops the mail the token names.", **token),
        Route("POST", "/ses", ses_notification, name="ses_notification", status_code=204,
              summary="SES notifications (SNS)",
              description="An SNS HTTP(S) subscription endpoint: confirms subscriptions, suppresses bounced and "
                          "complaining addresses. Only signed messages of topics in `email_sns_topics` are accepted.",
              responses={403: Forbidden}),
    ]
