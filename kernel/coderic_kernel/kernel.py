"""``Kernel``: one instance of the platform, from configuration to a running database.

Booting (``Kernel.boot``) does every check that needs no I/O beyond imports, so a broken
plugin stops the process before it binds a port. Starting (``Kernel.started``) opens the
database, checks migrations and enters each plugin's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Literal

from coderic_sdk import PluginInfo
from piccolo.table import Table

from .config import Configuration, load_configuration
from .database import DatabaseService, MigrationRunner
from .database.migrations import MigrationRecord
from .errors import PluginError, StartupError, describe
from .jobs.runtime import JobsRuntime
from .observability.metrics import Metrics
from .plugins.context import PluginContextImpl
from .plugins.contributions import (
    collect_apps, collect_health_checks, collect_middleware, collect_rate_limits, collect_routes,
)
from .plugins.loader import LoadedPlugins, load_plugins
from .permissions.registry import PermissionRegistry
from .permissions.service import PermissionService
from .services.cache import cache_store
from .services.ratelimit import RateLimiter
from .services.redis import RedisService

if TYPE_CHECKING:
    from .identity.authenticate import Authenticator


class Kernel:
    def __init__(self, config: Configuration, loaded: LoadedPlugins, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.pm = loaded.pm
        self.hooks = loaded.hooks
        settings = config.kernel
        self.database = DatabaseService(
            settings.database_url, pool_min=settings.database_pool_min, pool_max=settings.database_pool_max
        )
        self.redis = RedisService(settings.redis_url) if settings.redis_url else None
        self.cache_store = cache_store(self.redis)
        self._plugins = tuple(p.info for p in loaded.plugins)
        self.contexts = {p.info.name: PluginContextImpl(p.info, p.settings, self) for p in loaded.plugins}
        ordered = list(self.contexts.values())
        self.apps = collect_apps(self.hooks, self._plugins)
        self.routes = collect_routes(self.hooks, ordered)
        self.middleware = collect_middleware(self.hooks, ordered)
        self.health_checks = collect_health_checks(self.hooks, ordered)
        self.permissions = PermissionService(self, PermissionRegistry.collect(self.hooks, ordered, self.routes))
        self.rate_limiter = RateLimiter.build(config, self.redis, collect_rate_limits(self.hooks, ordered, self.routes), self.metrics)
        self.migrations = MigrationRunner(self.database, self.apps)
        self.jobs = JobsRuntime(self)
        self.metrics.describe_build(self._plugins)
        self.metrics.watch_pool(self.database.pool_usage)
        self._running = False
        self.startup_error: StartupError | None = None  # set by the server's lifespan

    @classmethod
    def boot(cls, config: Configuration | None = None) -> Kernel:
        """Load configuration (unless given) and every enabled plugin; raise ``StartupError``."""
        config = config or load_configuration()
        metrics = Metrics()  # first, so that hook calls made while booting are counted too
        return cls(config, load_plugins(config, observe_hook=metrics.observe_hook), metrics)

    # The SDK's ``Kernel`` protocol -----------------------------------------------------

    @property
    def environment(self) -> str:
        return self.config.kernel.environment

    @property
    def plugins(self) -> Sequence[PluginInfo]:
        return self._plugins

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]:
        return self.database.dialect

    @property
    def authenticator(self) -> Authenticator:
        """Who sent a request; every route handler asks (``identity/authenticate.py``)."""
        from .identity.service import identity_for

        return identity_for(self).authenticator

    def plugin(self, name: str) -> PluginContextImpl:
        return self.contexts[name]

    def tables(self) -> list[type[Table]]:
        return [MigrationRecord, *(table for entry in self.apps for table in entry.app.table_classes)]

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Kernel]:
        """The database open, nothing else: for migrations and diagnostics."""
        try:
            await self.database.open(self.tables())
        except Exception as exc:
            raise StartupError(f"database {self.database.url} is unreachable: {describe(exc)}") from exc
        try:
            yield self
        finally:
            await self.database.close()
            if self.redis is not None:
                await self.redis.close()

    async def settle_migrations(self, migrate: bool | None = None) -> None:
        """Apply pending migrations (``migrate``, or the setting) or refuse to go on with any."""
        if self.config.kernel.migrate_on_start if migrate is None else migrate:
            await self.migrations.forwards()
            return
        pending = await self.migrations.pending()
        if pending:
            names = ", ".join(f"{m.plugin}:{m.id}" for m in pending[:5]) + (" ..." if len(pending) > 5 else "")
            raise StartupError(
                f"{len(pending)} migration(s) pending ({names}); run 'coderic migrate' or start with 'coderic serve --migrate'"
            )

    @asynccontextmanager
    async def started(self, *, migrate: bool | None = None, background: bool = False) -> AsyncIterator[Kernel]:
        """Open the database, apply or refuse pending migrations, enter every lifespan.

        ``background``: also take this process's part in jobs and events (API servers do;
        one-off commands do not). See ``jobs/runtime.py``.
        """
        if self._running:  # a CLI command inside an already started kernel
            yield self
            return
        async with self.opened():
            await self.settle_migrations(migrate)
            async with AsyncExitStack() as stack:
                for plugin in self.contexts.values():
                    manager = self.hooks.lifespan(plugin)
                    if manager is None:
                        continue
                    try:
                        await stack.enter_async_context(manager)
                    except Exception as exc:
                        raise PluginError(plugin.name, "start", describe(exc)) from exc
                if background:
                    await stack.enter_async_context(self.jobs.in_process())
                self._running = True
                try:
                    yield self
                finally:
                    self._running = False
