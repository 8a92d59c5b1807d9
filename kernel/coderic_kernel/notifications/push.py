"""Web Push delivery: one ``notifications.push`` job per notification and subscribed browser.

The fan-out queues the jobs in its own transaction (``queue``), so pushing never holds it up.
Each job encrypts a small JSON payload for the browser (aes128gcm, RFC 8291) and posts it to
the browser's push service with a VAPID signature (RFC 8292), both through pywebpush. The push
service's answer decides what happens: 404 or 410, the browser unsubscribed, so the
subscription goes; 429, a 5xx or no answer, the job fails and the job system retries it; any
other refusal is recorded on the subscription and not retried (it would be refused again).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import aiohttp
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async

from . import vapid
from .tables import Notification, PushSubscription, to_dict

if TYPE_CHECKING:
    from ..config.model import KernelSettings
    from .service import NotificationService

PUSH_JOB = "notifications.push"
#: The most plaintext one aes128gcm record carries when push services accept 4,096-byte bodies:
#: 4,096 less the 86-byte header (salt, record size, sender key), the 16-byte tag and the delimiter.
MAX_PAYLOAD = 3_993
MAX_URL = 1_024
TIMEOUT = aiohttp.ClientTimeout(total=30)
GONE = (404, 410)
S = PushSubscription


class PushRefused(Exception):
    """The push service refused or did not answer in a way worth retrying: the job fails and is retried."""


def enabled(settings: KernelSettings) -> bool:
    return settings.notifications_vapid_private_key is not None


@lru_cache(maxsize=4)
def _signer(private_key: str) -> Vapid02:
    return vapid.load(private_key)


def signer(settings: KernelSettings) -> Vapid02:
    """The configured VAPID key as a signer; only call when ``enabled``."""
    assert settings.notifications_vapid_private_key is not None
    return _signer(settings.notifications_vapid_private_key.get_secret_value())


def endpoint_key(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


async def subscriptions_of(user_ids: Sequence[str]) -> dict[str, list[int]]:
    """The ids of the subscribed browsers of each of ``user_ids`` that has any."""
    if not user_ids:
        return {}
    found: dict[str, list[int]] = {}
    for row in await S.select(S.id, S.user_id).where(S.user_id.is_in(list(user_ids))).order_by(S.id):
        found.setdefault(row["user_id"], []).append(row["id"])
    return found


async def queue(service: NotificationService, notification_id: int, subscription_ids: Sequence[int]) -> None:
    """Queue one push per browser, in the caller's transaction (the fan-out's)."""
    for subscription_id in subscription_ids:
        await service.plugin.jobs.enqueue(PUSH_JOB, {"notification": notification_id, "subscription": subscription_id},
                                          key=f"{notification_id}:{subscription_id}")


def payload(row: Mapping[str, Any], data: Mapping[str, Any]) -> bytes:
    """``{id, type, title, body, url}`` as UTF-8 JSON of at most ``MAX_PAYLOAD`` bytes: a long body
    is cut (with "…"), a URL too long to fit is left out (the client then opens the inbox)."""
    url = data.get("url")
    message = {
        "id": row["id"], "type": row["type"], "title": str(data.get("title") or "")[:200],
        "body": str(data.get("body") or ""), "url": url if isinstance(url, str) and len(url) <= MAX_URL else None,
    }
    while True:
        encoded = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        excess = len(encoded) - MAX_PAYLOAD
        if excess <= 0:
            return encoded
        body = message["body"].encode()  # type: ignore[union-attr]
        message["body"] = body[:max(0, len(body) - excess - len("…".encode()))].decode("utf-8", "ignore") + "…"


async def send(service: NotificationService, notification_id: int, subscription_id: int) -> None:
    """Push notification ``notification_id`` to browser ``subscription_id`` (the job's work)."""
    settings = service.settings
    if not enabled(settings):
        return  # push was turned off after the job was queued
    N = Notification
    row = await N.select(N.id, N.type, N.data, N.user_id).where(N.id == notification_id).first()
    subscription = await S.select().where(S.id == subscription_id).first()
    if row is None or subscription is None or subscription["user_id"] != row["user_id"]:
        return  # pruned, unsubscribed, or the browser now belongs to someone else
    now = datetime.now(timezone.utc)
    if subscription["expires_at"] is not None and subscription["expires_at"] <= now:
        await S.delete().where(S.id == subscription_id)
        return
    kind = service.types.get(row["type"], (None, None))[1]  # None: its plugin was disabled since
    try:
        await webpush_async(
            {"endpoint": subscription["endpoint"], "keys": {"p256dh": subscription["p256dh"], "auth": subscription["auth"]}},
            data=payload(row, to_dict(row["data"])).decode(),
            vapid_private_key=signer(settings), vapid_claims={"sub": settings.vapid_subject() or ""},
            ttl=settings.notifications_push_ttl_seconds, timeout=TIMEOUT,  # type: ignore[arg-type]
            headers={"Urgency": "high" if kind is not None and kind.required else "normal"},
        )
    except WebPushException as exc:
        status = exc.status_code
        if status in GONE:
            await S.delete().where(S.id == subscription_id)
            return
        reason = getattr(exc.response, "reason", None) or ""
        await _failed(subscription_id, f"{status} {reason}".strip() if status else exc.message)
        if status is None or status == 429 or status >= 500:
            raise PushRefused(f"push service answered {status}; retrying") from exc
        service.plugin.logger.warning("push to subscription %s refused: %s %s", subscription_id, status, reason)
        return
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        await _failed(subscription_id, f"unreachable: {type(exc).__name__}")
        raise PushRefused("push service unreachable; retrying") from exc
    await S.update({S.last_success_at: datetime.now(timezone.utc), S.failures: 0}).where(S.id == subscription_id)


async def _failed(subscription_id: int, error: str) -> None:
    await S.update({S.last_failure_at: datetime.now(timezone.utc), S.last_error: error[:200], S.failures: S.failures + 1}).where(
        S.id == subscription_id
    )
