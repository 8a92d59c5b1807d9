"""A typed facade over pluggy: one method per hook, called for one plugin at a time.

Calling per plugin keeps every contribution attributed, so a bad return value or an
exception stops boot with the plugin and the phase named.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import click
import pluggy
from coderic_sdk import (
    CronJob, DigestSource, EmailTemplate, EventHandler, FilePurpose, HealthCheck, Job, NotificationType, Permission,
    PersonalData, PluginContext, PluginSettings, ProfileSection, ResourcePolicy, Role,
    Route, SearchIndex,
)
from coderic_sdk.ratelimit import RateLimitPolicy
from piccolo.conf.apps import AppConfig
from starlette.middleware import Middleware

from ..errors import Phase, PluginError, describe

T = TypeVar("T")

#: Told ``(plugin, hook, seconds)`` after every hook call (the kernel feeds metrics with it).
HookObserver = Callable[[str, str, float], None]


class PluginHooks:
    def __init__(self, pm: pluggy.PluginManager, observe: HookObserver | None = None) -> None:
        self.pm = pm
        self.observe = observe

    def implemented(self, plugin: str) -> tuple[str, ...]:
        """Names of the hooks a plugin implements, for ``/api/v1/plugins``."""
        obj = self.pm.get_plugin(plugin)
        callers = self.pm.get_hookcallers(obj) if obj is not None else None
        return tuple(sorted(caller.name for caller in callers or ()))

    def settings_model(self, plugin: str) -> type[PluginSettings] | None:
        model = self._call("register_settings_model", plugin, "settings")
        if model is not None and not (isinstance(model, type) and issubclass(model, PluginSettings)):
            raise PluginError(plugin, "settings", "register_settings_model must return a PluginSettings subclass")
        return model

    def piccolo_app(self, plugin: str) -> AppConfig | None:
        app = self._call("register_piccolo_app", plugin, "database")
        if app is not None and not isinstance(app, AppConfig):
            raise PluginError(plugin, "database", "register_piccolo_app must return a piccolo AppConfig")
        return app

    def routes(self, plugin: PluginContext) -> list[Route]:
        return self._items("register_routes", plugin, "routes", Route)

    def middleware(self, plugin: PluginContext) -> list[Middleware]:
        return self._items("register_middleware", plugin, "middleware", Middleware)

    def health_checks(self, plugin: PluginContext) -> list[HealthCheck]:
        return self._items("register_health_checks", plugin, "start", HealthCheck)

    def jobs(self, plugin: PluginContext) -> list[Job | CronJob]:
        return self._items("register_jobs", plugin, "register", (Job, CronJob))  # type: ignore[arg-type]

    def event_handlers(self, plugin: PluginContext) -> list[EventHandler]:
        return self._items("register_event_handlers", plugin, "register", EventHandler)

    def email_templates(self, plugin: PluginContext) -> list[EmailTemplate | Path]:
        return self._items("register_email_templates", plugin, "register", (EmailTemplate, Path))  # type: ignore[arg-type]

    def digest_sources(self, plugin: PluginContext) -> list[DigestSource]:
        return self._items("register_digest_sources", plugin, "register", DigestSource)

    def notification_types(self, plugin: PluginContext) -> list[NotificationType]:
        return self._items("register_notification_types", plugin, "register", NotificationType)

    def file_purposes(self, plugin: PluginContext) -> list[FilePurpose]:
        return self._items("register_file_purposes", plugin, "register", FilePurpose)

    def profile_sections(self, plugin: PluginContext) -> list[ProfileSection]:
        return self._items("register_profile_sections", plugin, "register", ProfileSection)

    def search_indexes(self, plugin: PluginContext) -> list[SearchIndex]:
        return self._items("register_search_indexes", plugin, "register", SearchIndex)

    def permissions(self, plugin: PluginContext) -> list[Permission]:
        return self._items("register_permissions", plugin, "register", Permission)

    def roles(self, plugin: PluginContext) -> list[Role]:
        return self._items("register_roles", plugin, "register", Role)

    def resource_policies(self, plugin: PluginContext) -> list[ResourcePolicy]:
        return self._items("register_resource_policies", plugin, "register", ResourcePolicy)

    def personal_data(self, plugin: PluginContext) -> list[PersonalData]:
        return self._items("register_personal_data", plugin, "register", PersonalData)

    def rate_limits(self, plugin: PluginContext) -> list[RateLimitPolicy]:
        return self._items("register_rate_limits", plugin, "routes", RateLimitPolicy)

    def commands(self, plugin: PluginContext) -> list[click.Command]:
        return self._items("register_commands", plugin, "commands", click.Command)

    def lifespan(self, plugin: PluginContext) -> AbstractAsyncContextManager[Any] | None:
        manager = self._call("lifespan", plugin.name, "start", plugin=plugin)
        if manager is not None and not isinstance(manager, AbstractAsyncContextManager):
            raise PluginError(plugin.name, "start", "lifespan must return an async context manager")
        return manager

    def _items(self, hook: str, plugin: PluginContext, phase: Phase, kind: type[T]) -> list[T]:
        result = self._call(hook, plugin.name, phase, plugin=plugin)
        if result is None:
            return []
        items = list(result) if isinstance(result, Iterable) else [result]
        for item in items:
            if not isinstance(item, kind):
                expected = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
                raise PluginError(plugin.name, phase, f"{hook} returned {type(item).__name__}, expected {expected}")
        return items

    def _call(self, hook: str, owner: str, phase: Phase, **kwargs: Any) -> Any:
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            if impl.plugin_name != owner:
                continue
            started = time.perf_counter()
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(owner, phase, f"{hook} raised {describe(exc)}") from exc
            finally:
                if self.observe is not None:
                    self.observe(owner, hook, time.perf_counter() - started)
            if inspect.isawaitable(result):
                getattr(result, "close", lambda: None)()
                raise PluginError(owner, phase, f"{hook} must be a plain function, not async")
            return result
        return None
