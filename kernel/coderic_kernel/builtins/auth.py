"""The ``auth`` built-in plugin: accounts and sign-in (passwords, GitHub, OpenID Connect),
tokens, sessions, 2FA and the audit trail, under ``/api/v1/auth`` and ``/api/v1/me``.

It uses the same hooks as any plugin; the service is ``coderic_kernel/identity/``. Every
plugin's routes see the caller through ``ctx.user``, set by the identity service's
authenticator (``web/routing.py``). See ``docs/auth.md``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
from coderic_sdk import (
    EVENTS_RESUMED, CronJob, EmailTemplate, Event, EventHandler, FilePurpose, Job, JobContext, PersonalData,
    PluginContext, RateLimitPolicy, Route, SearchIndex, hookimpl,
)

from ..identity import email_flows
from ..identity.commands import commands
from ..identity.ended_sessions import RELOAD_SECONDS
from ..identity.routes import email, oauth, password, personal_tokens, profile, roles, sessions, two_factor
from ..identity.service import identity_for
from ..identity.tables import AuthEvent, OneTimeToken, RefreshToken, Session
from ..personal_data import deletion, exports
from ..personal_data import identity as identity_data
from ..personal_data import profiles as profile_data
from ..personal_data.registry import personal_data_for
from ..personal_data.routes import routes as personal_data_routes
from ..profiles import routes as profile_routes
from ..profiles.sections import sections_for
from ..profiles.service import AVATAR
from ..search.users import users_index
from ..services.background import every, running

logger = logging.getLogger("coderic.auth")
#: Audit entries are kept this long; sessions and tokens that ended, a week (for the session centre's sake).
AUDIT_RETENTION = timedelta(days=365)
ENDED_RETENTION = timedelta(days=7)
#: Broadcast when sessions end, so that every process refuses their access tokens at once.
SESSIONS_ENDED = "auth.sessions_ended"
TEMPLATES = Path(__file__).resolve().parent.parent / "identity" / "templates"
_SECURITY = {"when": "2026-11-28 09:30 UTC", "device": "Firefox on Linux", "ip": "203.0.113.7",
             "security_url": "https://coderic.example/account/security"}


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    sections_for(plugin.kernel)  # type: ignore[arg-type]  # every plugin's profile sections, checked at boot
    personal_data_for(plugin.kernel)  # type: ignore[arg-type]  # every plugin's personal data, checked at boot
    return [*sessions.routes(), *profile.routes(), *personal_tokens.routes(), *roles.routes(), *oauth.routes(),
            *two_factor.routes(), *password.routes(), *email.routes(),
            *profile_routes.routes(), *personal_data_routes()]


@hookimpl
def register_commands(plugin: PluginContext) -> list[click.Command]:
    return commands(plugin)


@hookimpl
def register_search_indexes() -> list[SearchIndex]:
    return [users_index()]  # auth.users: members by their public profile fields (search/users.py)


@hookimpl
def register_rate_limits() -> list[RateLimitPolicy]:
    # Sensitive: with the store unreachable these answer 503 instead of letting guesses through.
    return [
        RateLimitPolicy.parse("auth.refresh", "60/minute", key=("ip",), sensitive=True),
        RateLimitPolicy.parse(profile_routes.REFRESH_LIMIT, "10/hour", key=("user",)),  # GitHub allows 60/hour per address
        RateLimitPolicy.parse("auth.oauth", "30/minute", key=("ip",), sensitive=True),
        # 2FA codes, per account and per address: 10 at once, then one a minute (ASVS 2.2.1: < 100 an hour).
        RateLimitPolicy.parse("auth.two_factor", "60/hour", key=("ip",), burst=10, sensitive=True),
        # Email and password (routes/password.py): per client address on the routes; per account in the handlers
        # (10 guesses at once, then one every 90 s; and at most 100 a day from everywhere: bounded, never a lock).
        RateLimitPolicy.parse("auth.login", "30/10 minutes", key=("ip",), sensitive=True),
        RateLimitPolicy.parse("auth.login_account", "10/15 minutes", key=("ip",), sensitive=True),
        RateLimitPolicy.parse("auth.login_account_daily", "100/day", key=("ip",), sensitive=True),
        RateLimitPolicy.parse("auth.email", "30/hour", key=("ip",), sensitive=True),  # asking for mail
        RateLimitPolicy.parse("auth.email_address", "5/hour", key=("ip",), sensitive=True),  # mail to one address
        RateLimitPolicy.parse("auth.token", "30/10 minutes", key=("ip",), sensitive=True),  # using a link's token
    ]


@hookimpl
def register_email_templates() -> list[EmailTemplate]:
    # Security mail: essential (sent even to suppressed addresses), never tracked.
    return [
        EmailTemplate("two_factor_changed", TEMPLATES, essential=True, track=False,
                      sample={"change": "recovery_code_used", "remaining": 2, **_SECURITY}),
        EmailTemplate("password_changed", TEMPLATES, essential=True, track=False, sample={"how": "changed", **_SECURITY}),
        EmailTemplate("account_exists", TEMPLATES, track=False,
                      sample={"reset_url": "https://coderic.example/reset-password"}),
        EmailTemplate("confirm_email_change", TEMPLATES, essential=True, track=False,
                      sample={"confirm_url": "https://coderic.example/confirm-email?token=sample", "expires_minutes": 60}),
    ]


@hookimpl
def lifespan(plugin: PluginContext):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def identity_started() -> AsyncIterator[None]:
        service = identity_for(plugin.kernel)  # type: ignore[arg-type]
        await service.start()

        async def announce(session_ids: list[str]) -> None:
            await plugin.events.publish(SESSIONS_ENDED, {"sessions": session_ids})

        service.sessions.announce = announce
        try:
            # What a lost event would have said, from the database.
            async with running(every(RELOAD_SECONDS, service.sessions.ended.load, logger,
                                     "read the recently ended sessions")):
                yield
        finally:
            service.sessions.announce = None

    return identity_started()


@hookimpl
def register_event_handlers(plugin: PluginContext) -> list[EventHandler]:
    ended = identity_for(plugin.kernel).sessions.ended  # type: ignore[arg-type]

    async def sessions_ended(event: Event) -> None:
        ended.add(str(s) for s in event.data["sessions"])

    async def resumed(event: Event) -> None:
        await ended.load()

    return [
        EventHandler(SESSIONS_ENDED, sessions_ended, name="refuse_ended_sessions", delivery="broadcast"),
        EventHandler(EVENTS_RESUMED, resumed, name="reload_ended_sessions", delivery="broadcast"),
    ]


async def rotate_keys(ctx: JobContext) -> None:
    kid = await identity_for(ctx.plugin.kernel).rotate_if_due()  # type: ignore[arg-type]
    if kid is not None:
        ctx.plugin.logger.info("rotated the token signing key: %s", kid)


async def prune(ctx: JobContext) -> None:
    """Forget what has ended: used or expired one-time tokens, ended sessions, old audit entries."""
    now = datetime.now(timezone.utc)
    await OneTimeToken.delete().where((OneTimeToken.expires_at < now - ENDED_RETENTION))
    await RefreshToken.delete().where(RefreshToken.expires_at < now - ENDED_RETENTION)
    await Session.delete().where(
        (Session.expires_at < now - ENDED_RETENTION) | (Session.revoked_at < now - ENDED_RETENTION)
    )
    await AuthEvent.delete().where(AuthEvent.at < now - AUDIT_RETENTION)
    await email_flows.forget_unverified(now)


@hookimpl
def register_jobs() -> list[Job | CronJob]:
    return [
        CronJob("rotate_keys", rotate_keys, hour=3, minute=17, timeout=120),
        CronJob("prune", prune, hour=3, minute=47, timeout=600),
        Job(exports.BUILD_JOB, exports.build_export, max_attempts=exports.BUILD_ATTEMPTS, timeout=3600),
        CronJob("expire_exports", exports.expire_exports, minute=37, timeout=600),  # hourly
        Job(deletion.DELETE_JOB, deletion.delete_account, max_attempts=deletion.DELETE_ATTEMPTS, backoff=5.0, timeout=3600),
    ]


@hookimpl
def register_file_purposes() -> list[FilePurpose]:
    return [AVATAR, exports.EXPORT_PURPOSE]


@hookimpl
def register_personal_data(plugin: PluginContext) -> list[PersonalData]:
    # The account's own entries come last: the deletion job clears the account after the rest.
    return [*profile_data.declarations(), *identity_data.declarations(plugin.kernel)]  # type: ignore[arg-type]
