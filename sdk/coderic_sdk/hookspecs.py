"""Every hook a plugin can implement, grouped by the phase of the kernel's life that calls it.

The kernel calls each hook once per plugin and keeps what each plugin returned apart, so a
contribution can always be traced to the plugin that made it (errors name that plugin). An
implementation may accept fewer arguments than its spec: adding an argument here is a
compatible change, removing one is a breaking change.

Hooks are plain functions, never ``async def``: they return declarations. Work that needs
``await`` belongs in ``lifespan`` or in a route handler.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._markers import hookspec

if TYPE_CHECKING:
    import click
    from piccolo.conf.apps import AppConfig
    from starlette.middleware import Middleware

    from .email import DigestSource, EmailTemplate
    from .events import EventHandler
    from .jobs import CronJob, Job
    from .ratelimit import RateLimitPolicy
    from .routes import Route
    from .services import PluginContext
    from .settings import PluginSettings
    from .storage import FilePurpose
    from .types import HealthCheck


# --------------------------------------------------------------------------------------
# Registration: read while the kernel boots, before any plugin code does work.
# --------------------------------------------------------------------------------------


@hookspec
def register_settings_model() -> type[PluginSettings] | None:
    """Return the model (a ``PluginSettings`` subclass) of this plugin's ``plugins.toml`` table.

    The kernel validates ``[plugins.<name>]`` plus ``CODERIC_PLUGINS__<NAME>__<KEY>`` variables
    against it and hands the result to every hook as ``plugin.settings``. Without this hook
    the plugin takes no settings, and any key given for it is refused.
    """


# --------------------------------------------------------------------------------------
# Database: tables and migrations.
# --------------------------------------------------------------------------------------


@hookspec
def register_piccolo_app() -> AppConfig | None:
    """Return the Piccolo ``AppConfig`` holding this plugin's tables and migrations folder.

    ``app_name`` must be the plugin's name and every table name must start with
    ``<name>_``. Migrations run in plugin dependency order (a plugin's after those of the
    plugins it requires). One app per plugin.
    """


# --------------------------------------------------------------------------------------
# Web: what the plugin adds to the combined API.
# --------------------------------------------------------------------------------------


@hookspec
def register_routes(plugin: PluginContext) -> Iterable[Route]:
    """Return the plugin's ``Route`` declarations.

    Each is mounted at ``/api/v1/<prefix><path>`` where ``prefix`` is the plugin's name
    unless the route claims another; two plugins claiming one prefix stop boot.
    """


@hookspec
def register_middleware(plugin: PluginContext) -> Iterable[Middleware]:
    """Return pure ASGI middleware (``starlette.middleware.Middleware`` entries).

    They run inside the kernel's own middleware (request id, error handling), in plugin
    order: a plugin's middleware sees the request before that of plugins loaded after it.
    """


@hookspec
def register_rate_limits(plugin: PluginContext) -> Iterable[RateLimitPolicy]:
    """Return rate-limit policies named ``<plugin>.<name>``, for ``Route.rate_limit`` and
    ``plugin.rate_limits.hit``. An operator's ``[kernel] rate_limits`` table overrides their rates.
    """


# --------------------------------------------------------------------------------------
# Background work: jobs, schedules and reactions to events.
# --------------------------------------------------------------------------------------


@hookspec
def register_jobs(plugin: PluginContext) -> Iterable[Job | CronJob]:
    """Return the plugin's jobs and cron jobs, named ``<plugin>.<name>``.

    ``coderic worker`` runs them (``coderic serve`` too, in-process, when no Redis is set).
    """


@hookspec
def register_event_handlers(plugin: PluginContext) -> Iterable[EventHandler]:
    """Return handlers for events of any plugin, matched by pattern (``projects.*``).

    Durable handlers run once per event through the outbox; broadcast handlers run in every
    process. Handlers are named ``<plugin>.<name>`` (the function name by default).
    """


# --------------------------------------------------------------------------------------
# Email: templates and digest sections (see docs/email.md).
# --------------------------------------------------------------------------------------


@hookspec
def register_email_templates(plugin: PluginContext) -> Iterable[EmailTemplate | Path]:
    """Return the plugin's email templates: ``EmailTemplate`` entries, or folders in which
    every ``<language>/<name>.subject.txt`` is a (transactional) template.

    Each is named ``<plugin>.<name>``; results of all plugins are merged, a name used twice stops boot.
    """


@hookspec
def register_digest_sources(plugin: PluginContext) -> Iterable[DigestSource]:
    """Return sections of the weekly digest: each ``collect(recipient, since)`` is awaited per
    recipient and returns what is new. Recipients with nothing new in any section get no digest.
    """


# --------------------------------------------------------------------------------------
# Files: what uploads may be (see docs/storage.md).
# --------------------------------------------------------------------------------------


@hookspec
def register_file_purposes(plugin: PluginContext) -> Iterable[FilePurpose]:
    """Return the kinds of file the plugin stores: size limit, allowed types, visibility, image variants.

    Each is named ``<plugin>.<name>``; results of all plugins are merged. Uploads name a purpose.
    """


# --------------------------------------------------------------------------------------
# Lifecycle: resources that live as long as the process serves.
# --------------------------------------------------------------------------------------


@hookspec
def lifespan(plugin: PluginContext) -> AbstractAsyncContextManager[Any] | None:
    """Return an async context manager that opens the plugin's resources and closes them.

    Entered after the database opens, in plugin order; exited in reverse order. An error on
    entry stops start-up with the plugin named.
    """


@hookspec
def register_health_checks(plugin: PluginContext) -> Iterable[HealthCheck]:
    """Return readiness checks for the backends this plugin depends on.

    ``/readyz`` and ``coderic doctor`` run every check; any failure makes the process not ready.
    """


# --------------------------------------------------------------------------------------
# Command line.
# --------------------------------------------------------------------------------------


@hookspec
def register_commands(plugin: PluginContext) -> Iterable[click.Command]:
    """Return click commands, offered as ``coderic <plugin> <command>``.

    Commands that need the database open it with ``async with plugin.kernel.started(): ...``.
    """
