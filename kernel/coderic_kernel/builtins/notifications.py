"""The ``notifications`` built-in plugin: the kernel's notification types (system announcements,
security alerts), the inbox and preferences API, the real-time stream (WebSocket, SSE), Web
Push subscriptions, the fan-out, held-email, push and digest jobs, the broadcast handlers that
feed open streams, and ``coderic notifications vapid-keys``.

It uses the same hooks as any plugin; the service behind ``plugin.notifications`` is in
``coderic_kernel/notifications/``. See ``docs/notifications.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import click
from coderic_sdk import (
    EVENTS_RESUMED, CronJob, Event, EventHandler, Job, JobContext, NotificationType, Permission, PersonalData,
    PluginContext, Route, hookimpl,
)
from starlette.middleware import Middleware

from ..notifications import data, digests, push, push_routes, vapid
from ..notifications.routes import PERMISSIONS, routes
from ..notifications.service import (
    ANNOUNCEMENT, DELIVERED, EMAIL_JOB, FAN_OUT_JOB, SECURITY_ALERT, UNREAD, notifications_for,
)
from ..notifications.stream import StreamMiddleware, ping
from ..services.background import every, running

KERNEL_TYPES = (
    NotificationType(ANNOUNCEMENT, "Announcements from the platform's administrators",
                     default_channels=("in_app", "email_weekly")),
    NotificationType(SECURITY_ALERT, "Security alerts about your account (a new sign-in, a changed password)",
                     default_channels=("in_app", "email", "push"), email_template="email.security_alert",
                     digestible=False, required=True),
)


def _service(plugin: PluginContext) -> Any:
    return notifications_for(plugin.kernel)  # type: ignore[arg-type]


@hookimpl
def register_notification_types() -> list[NotificationType]:
    return list(KERNEL_TYPES)


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    _service(plugin)  # collects every plugin's types now, at boot: a bad one stops boot naming its plugin
    return [*routes(), *push_routes.routes()]


@click.command("vapid-keys")
def vapid_keys() -> None:
    """Make a VAPID key pair for Web Push (set the private key as notifications_vapid_private_key)."""
    private, public = vapid.generate()
    click.echo(f"CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY={private}")
    click.echo(f"# public key (GET /api/v1/notifications/push/key serves it): {public}")
    click.echo("Keep the private key secret. Replacing it later ends every browser's subscription.", err=True)


@hookimpl
def register_commands() -> list[click.Command]:
    return [vapid_keys]


@hookimpl
def register_permissions() -> list[Permission]:
    return list(PERMISSIONS)


@hookimpl
def register_personal_data() -> list[PersonalData]:
    return data.declarations()


@hookimpl
def register_middleware(plugin: PluginContext) -> list[Middleware]:
    return [Middleware(StreamMiddleware, kernel=plugin.kernel)]


async def fan_out(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await _service(ctx.plugin).fan_out(ctx.job_id, payload)


async def send_held(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await _service(ctx.plugin).send_held(int(payload["id"]))


async def send_push(ctx: JobContext, payload: Mapping[str, Any]) -> None:
    await push.send(_service(ctx.plugin), int(payload["notification"]), int(payload["subscription"]))


async def daily_digest(ctx: JobContext) -> None:
    ctx.plugin.logger.info("daily notification digest: %d sent", await digests.send_digests(_service(ctx.plugin), "daily"))


async def weekly_digest(ctx: JobContext) -> None:
    ctx.plugin.logger.info("weekly notification digest: %d sent", await digests.send_digests(_service(ctx.plugin), "weekly"))


async def prune(ctx: JobContext) -> None:
    await digests.prune(_service(ctx.plugin))


@hookimpl
def register_jobs() -> list[Job | CronJob]:
    return [
        Job(FAN_OUT_JOB.split(".", 1)[1], fan_out, max_attempts=10, backoff=1.0, timeout=600),
        Job(EMAIL_JOB.split(".", 1)[1], send_held, max_attempts=10, backoff=1.0, timeout=60),
        Job(push.PUSH_JOB.split(".", 1)[1], send_push, max_attempts=12, backoff=1.0, timeout=60),  # retries span ~35 min
        CronJob("daily_digest", daily_digest, hour=7, minute=0, timeout=600),  # 07:00 UTC
        CronJob("weekly_digest", weekly_digest, weekday=0, hour=7, minute=30, timeout=600),  # Mondays 07:30 UTC
        CronJob("prune", prune, hour=4, minute=23, timeout=600),
    ]


@hookimpl
def register_event_handlers(plugin: PluginContext) -> list[EventHandler]:
    hub = _service(plugin).hub

    async def delivered(event: Event) -> None:
        hub.deliver(event.data["notification"], event.data["to"])

    async def unread(event: Event) -> None:
        hub.unread(str(event.data["user_id"]), int(event.data["unread"]))

    async def resumed(event: Event) -> None:
        hub.resync()

    return [
        EventHandler(DELIVERED, delivered, name="stream_delivered", delivery="broadcast"),
        EventHandler(UNREAD, unread, name="stream_unread", delivery="broadcast"),
        EventHandler(EVENTS_RESUMED, resumed, name="stream_resync", delivery="broadcast"),
    ]


@hookimpl
def lifespan(plugin: PluginContext):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def watching_streams() -> AsyncIterator[None]:
        service = _service(plugin)
        settings, hub = service.settings, service.hub
        heartbeat = settings.notifications_heartbeat_seconds

        async def ping_silent() -> None:
            hub.ping_silent(heartbeat, ping)

        # The sweep runs every half heartbeat: a socket hears something at least every heartbeat and a half.
        async with running(
            every(settings.notifications_session_check_seconds, hub.check_sessions, plugin.logger,
                  "check the sessions of open streams"),
            every(heartbeat / 2, ping_silent, plugin.logger, "ping the silent streams"),
        ):
            yield

    return watching_streams()
