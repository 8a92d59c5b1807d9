"""Web Push for members, under ``/api/v1/notifications/push``: the platform's public key for
``PushManager.subscribe``, and the member's subscribed browsers (add, list, remove)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from coderic_sdk import FieldError, NotFound, Problem, RequestContext, Route, Schema
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import ConfigDict, Field

from . import push, vapid
from .service import notifications_for
from .tables import PushSubscription

S = PushSubscription
TAGS = ("notifications",)
NOT_SET_UP = "Web Push is not set up on this platform (the operator has not configured a VAPID key)."
LOOPBACK_NAMES = ("localhost",)


class KeyOut(Schema):
    public_key: str = Field(description="The application server key, base64url: `applicationServerKey` of "
                            "`PushManager.subscribe`.")


class PushKeys(Schema):
    p256dh: str = Field(max_length=200, description="The browser's P-256 public key, base64url (65 bytes).")
    auth: str = Field(max_length=100, description="The browser's authentication secret, base64url (16 bytes).")


class SubscriptionIn(Schema):
    """What the browser's ``PushSubscription.toJSON()`` gives."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: str = Field(max_length=2048, description="The push service URL of this browser (https).")
    expiration_time: int | None = Field(None, alias="expirationTime", ge=0,
                                        description="When the subscription ends, in milliseconds since 1970 (UTC).")
    keys: PushKeys


class SubscriptionOut(Schema):
    id: int
    endpoint: str
    created_at: datetime
    expires_at: datetime | None
    last_success_at: datetime | None = Field(description="The last push the push service accepted.")
    last_failure_at: datetime | None = Field(description="The last push it refused or did not answer.")
    last_error: str = Field(description="Its status and reason then; empty when none failed.")
    failures: int = Field(description="Failed pushes since the last success.")


class SubscriptionList(Schema):
    items: list[SubscriptionOut]


class SubscriptionPath(Schema):
    subscription_id: int


COLUMNS = (S.id, S.endpoint, S.created_at, S.expires_at, S.last_success_at, S.last_failure_at, S.last_error, S.failures)


def _settings(ctx: RequestContext[Any, Any, Any]) -> Any:
    """The kernel's settings, once Web Push is known to be set up (404 otherwise)."""
    settings = notifications_for(ctx.plugin.kernel).settings  # type: ignore[arg-type]
    if not push.enabled(settings):
        raise Problem(404, NOT_SET_UP, title="Web Push is off")
    return settings


def _endpoint_error(endpoint: str, production: bool) -> str | None:
    """Why ``endpoint`` cannot be a push service URL, or ``None``. Plain http is only for a
    push service on this machine (tests, development), never in production."""
    parts = urlsplit(endpoint)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        return "not a URL"
    if not host or parts.username is not None or parts.password is not None or parts.fragment:
        return "a push service URL is https://host/path, without user or fragment"
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = host in LOOPBACK_NAMES or (address is not None and address.is_loopback)
    if parts.scheme == "http" and loopback and not production:
        return None
    if parts.scheme != "https":
        return "must be an https:// URL"
    if address is not None and not address.is_global and not (loopback and not production):
        return "must be a push service on the internet, not a private address"
    return None


def _key_error(value: str, size: int, point: bool) -> str | None:
    try:
        raw = vapid.b64url_decode(value)
    except ValueError as exc:
        return str(exc)
    if len(raw) != size:
        return f"must be {size} bytes, base64url (got {len(raw)})"
    if point:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            return "not a P-256 public key (an uncompressed point)"
    return None


def _check(body: SubscriptionIn, production: bool, now: datetime) -> list[FieldError]:
    errors = []
    reason = _endpoint_error(body.endpoint, production)
    if reason:
        errors.append(FieldError("body.endpoint", reason))
    for field, size, point in (("p256dh", 65, True), ("auth", 16, False)):
        reason = _key_error(getattr(body.keys, field), size, point)
        if reason:
            errors.append(FieldError(f"body.keys.{field}", reason))
    if body.expiration_time is not None and body.expiration_time <= now.timestamp() * 1000:
        errors.append(FieldError("body.expirationTime", "the subscription has already expired"))
    return errors


async def public_key(ctx: RequestContext[None, None, None]) -> KeyOut:
    return KeyOut(public_key=vapid.public_key(push.signer(_settings(ctx))))


async def subscribe(ctx: RequestContext[SubscriptionIn, None, None]) -> SubscriptionOut:
    user, body = ctx.require_user(), ctx.body
    settings = _settings(ctx)
    now = datetime.now(timezone.utc)
    errors = _check(body, settings.environment == "production", now)
    if errors:
        raise Problem(422, "The request body is invalid.", errors=errors)
    expires = None if body.expiration_time is None else datetime.fromtimestamp(body.expiration_time / 1000, timezone.utc)
    p256dh, auth = body.keys.p256dh.rstrip("="), body.keys.auth.rstrip("=")
    # The same endpoint again (a renewed subscription, or the browser now signed in as someone
    # else) replaces the row: new owner, keys and expiry, a fresh history.
    renewed = {S.user_id: user.id, S.p256dh: p256dh, S.auth: auth, S.expires_at: expires, S.created_at: now,
               S.last_success_at: None, S.last_failure_at: None, S.last_error: "", S.failures: 0}
    async with ctx.plugin.kernel.database.transaction():
        [row] = await S.insert(S(key=push.endpoint_key(body.endpoint), user_id=user.id, endpoint=body.endpoint,
                                 p256dh=p256dh, auth=auth, expires_at=expires, created_at=now)).on_conflict(
            target=S.key, action="DO UPDATE", values=list(renewed.items())
        ).returning(S.id)
        newest = await S.select(S.id).where(S.user_id == user.id).order_by(S.created_at, S.id, ascending=False)
        older = [r["id"] for r in newest[settings.notifications_push_subscriptions:]]  # at most a few rows
        if older:
            await S.delete().where(S.id.is_in(older))
    return SubscriptionOut.model_validate(await S.select(*COLUMNS).where(S.id == row["id"]).first())


async def list_subscriptions(ctx: RequestContext[None, None, None]) -> SubscriptionList:
    rows = await S.select(*COLUMNS).where(S.user_id == ctx.require_user().id).order_by(S.id)
    return SubscriptionList(items=[SubscriptionOut.model_validate(r) for r in rows])


async def unsubscribe(ctx: RequestContext[None, None, SubscriptionPath]) -> None:
    mine = (S.id == ctx.path.subscription_id) & (S.user_id == ctx.require_user().id)
    if not await S.exists().where(mine):
        raise NotFound("No such push subscription of yours.")
    await S.delete().where(mine)


def routes() -> list[Route]:
    common: dict[str, Any] = {"authenticated": True, "tags": TAGS}
    off = {404: "Web Push is not set up on this platform."}
    return [
        Route("GET", "/push/key", public_key, name="push_key", response=KeyOut, responses=off,
              summary="The key to subscribe a browser to push with",
              description="Pass it, decoded, as `applicationServerKey` to `PushManager.subscribe`.", **common),
        Route("POST", "/push/subscriptions", subscribe, name="push_subscribe", body=SubscriptionIn, response=SubscriptionOut,
              status_code=201, responses={**off, 422: "A bad endpoint or key, or an expired subscription."},
              summary="Subscribe this browser to push",
              description="The body is the browser's `PushSubscription` JSON. Subscribing an endpoint again renews it; "
              "past the per-member limit the oldest subscription is dropped.", **common),
        Route("GET", "/push/subscriptions", list_subscriptions, name="push_subscriptions", response=SubscriptionList,
              summary="Your browsers subscribed to push", **common),
        Route("DELETE", "/push/subscriptions/{subscription_id}", unsubscribe, name="push_unsubscribe",
              path_params=SubscriptionPath, status_code=204, media_type=None, responses={404: "Not one of yours."},
              summary="Stop pushing to a browser", **common),
    ]
