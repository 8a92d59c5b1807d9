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
    from .notifications import NotificationType
    from .permissions import Permission, ResourcePolicy, Role
    from .profiles import ProfileSection
    from .personal_data import PersonalData
    from .ratelimit import RateLimitPolicy
    from .routes import Route
    from .search import SearchIndex
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
# Permissions: what the plugin's users may do (see docs/permissions.md).
# --------------------------------------------------------------------------------------


@hookspec
def register_permissions(plugin: PluginContext) -> Iterable[Permission]:
    """Return the plugin's permissions, named ``<plugin>.<action>``, with the roles that hold
    them by default. A route naming a permission nobody registered stops boot.
    """


@hookspec
def register_roles(plugin: PluginContext) -> Iterable[Role]:
    """Return roles the plugin brings, named ``<plugin>.<role>`` (``projects.maintainer``);
    scoped ones are granted on a resource only. The seven built-in roles need no declaring.
    """


@hookspec
def register_resource_policies(plugin: PluginContext) -> Iterable[ResourcePolicy]:
    """Return the plugin's say over its own resources (a public project anyone may view), one
    per resource type, which must start with ``<plugin>.``.
    """


# --------------------------------------------------------------------------------------
# Personal data: what the plugin keeps about a member (see docs/personal-data.md).
# --------------------------------------------------------------------------------------


@hookspec
def register_personal_data(plugin: PluginContext) -> Iterable[PersonalData]:
    """Return each kind of data the plugin keeps about a user, with the async ``export`` and
    ``delete`` the kernel calls when the member asks for their data or deletes their account.

    Names are unique within the plugin; exports go into ``<plugin>.json`` of the member's archive.
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
# Notifications: what members can be notified of (see docs/notifications.md).
# --------------------------------------------------------------------------------------


@hookspec
def register_notification_types(plugin: PluginContext) -> Iterable[NotificationType]:
    """Return the plugin's notification types, named ``<plugin>.<name>``, with their default
    channels; members choose per type. Results of all plugins are merged, a key used twice stops boot.
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
# Profiles: what a member's profile shows (see docs/profiles.md).
# --------------------------------------------------------------------------------------


@hookspec
def register_profile_sections(plugin: PluginContext) -> Iterable[ProfileSection]:
    """Return sections the plugin adds to every member's profile (``freelancers.rates``).

    Each is named ``<plugin>.<name>``; results of all plugins are merged, a name used twice stops boot.
    """


# --------------------------------------------------------------------------------------
# Search: what members can find (see docs/search.md).
# --------------------------------------------------------------------------------------


@hookspec
def register_search_indexes(plugin: PluginContext) -> Iterable[SearchIndex]:
    """Return the plugin's search indexes, named ``<plugin>.<name>``: text fields with weights,
    filterable, facetable and sortable attributes, the language, and how to produce documents.

    The operator's backend (``CODERIC_SEARCH_URL``) keeps them; ``plugin.search`` feeds and asks
    them, and ``coderic search reindex`` rebuilds them. A name used twice stops boot.
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
