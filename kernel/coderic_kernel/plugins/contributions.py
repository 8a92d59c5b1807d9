"""Collect what each plugin contributes and refuse clashes, naming both plugins."""

from __future__ import annotations

from collections.abc import Sequence

from coderic_sdk import HealthCheck, PluginContext, PluginInfo, RateLimitPolicy
from starlette.middleware import Middleware

from ..database import PluginApp
from ..errors import PluginError
from ..web.routing import API_PREFIX, MountedRoute, api_path
from .hooks import PluginHooks


def collect_apps(hooks: PluginHooks, plugins: Sequence[PluginInfo]) -> list[PluginApp]:
    """Each plugin's Piccolo app; tables must carry the plugin's prefix and be unique."""
    owners: dict[str, str] = {}
    apps = []
    for info in plugins:
        app = hooks.piccolo_app(info.name)
        if app is None:
            continue
        if app.app_name != info.name:
            raise PluginError(info.name, "database", f"its Piccolo app is named {app.app_name!r}; name it {info.name!r}")
        for table in app.table_classes:
            tablename = table._meta.tablename
            if not tablename.startswith(f"{info.name}_"):
                raise PluginError(info.name, "database", f"table {tablename!r} must be named '{info.name}_<name>'")
            if tablename in owners:
                raise PluginError(info.name, "database", f"table {tablename!r} is already defined by plugin '{owners[tablename]}'")
            owners[tablename] = info.name
        apps.append(PluginApp(info.name, app))
    return apps


def collect_routes(hooks: PluginHooks, contexts: Sequence[PluginContext]) -> list[MountedRoute]:
    """Every route at its full path; a URL prefix belongs to exactly one plugin."""
    prefix_owner: dict[str, str] = {}
    operations: dict[tuple[str, str], str] = {}
    mounted = []
    for plugin in contexts:
        names: set[str] = set()
        for route in hooks.routes(plugin):
            prefix = plugin.name if route.prefix is None else route.prefix.strip("/")
            if prefix == "" and not plugin.info.builtin:
                raise PluginError(plugin.name, "routes", f"route {route.name!r}: only built-in plugins serve routes at {API_PREFIX}/")
            claim = (prefix or route.path.strip("/")).split("/", 1)[0]  # a prefix's first segment is its owner's
            owner = prefix_owner.setdefault(claim, plugin.name)
            if owner != plugin.name:
                raise PluginError(plugin.name, "routes", f"route prefix '{API_PREFIX}/{claim}' is already claimed by plugin '{owner}'")
            if route.name in names:
                raise PluginError(plugin.name, "routes", f"two routes are named {route.name!r}")
            names.add(route.name)
            if route.body is not None and route.body.model_config.get("extra") != "forbid":
                raise PluginError(
                    plugin.name, "routes",
                    f"route {route.name!r}: body model {route.body.__name__} must refuse unknown fields (subclass coderic_sdk.Schema)",
                )
            path = api_path(prefix, route.path)
            key = (route.method, path)
            if key in operations:
                raise PluginError(plugin.name, "routes", f"{route.method} {path} is already served by plugin '{operations[key]}'")
            operations[key] = plugin.name
            mounted.append(MountedRoute(plugin, route, path))
    return mounted


def collect_middleware(hooks: PluginHooks, contexts: Sequence[PluginContext]) -> list[Middleware]:
    return [entry for plugin in contexts for entry in hooks.middleware(plugin)]


def collect_health_checks(hooks: PluginHooks, contexts: Sequence[PluginContext]) -> list[HealthCheck]:
    owners: dict[str, str] = {}
    checks = []
    for plugin in contexts:
        for check in hooks.health_checks(plugin):
            owner = owners.setdefault(check.name, plugin.name)
            if owner != plugin.name:
                raise PluginError(plugin.name, "start", f"health check {check.name!r} is already registered by plugin '{owner}'")
            checks.append(check)
    return checks


def collect_rate_limits(
    hooks: PluginHooks, contexts: Sequence[PluginContext], routes: Sequence[MountedRoute]
) -> list[RateLimitPolicy]:
    """Plugins' policies, each named ``<plugin>.<name>``; every route must name a known policy."""
    names: set[str] = set()
    policies = []
    for plugin in contexts:
        for policy in hooks.rate_limits(plugin):
            local = policy.name.removeprefix(f"{plugin.name}.")
            if local == policy.name or not local:
                raise PluginError(plugin.name, "routes", f"rate limit policy {policy.name!r} must be named '{plugin.name}.<name>'")
            if policy.name in names:
                raise PluginError(plugin.name, "routes", f"two rate limit policies are named {policy.name!r}")
            names.add(policy.name)
            policies.append(policy)
    known = {"default", *names}
    for mounted in routes:
        chosen = mounted.route.rate_limit
        if chosen is not None and chosen not in known:
            raise PluginError(
                mounted.plugin.name, "routes",
                f"route {mounted.route.name!r}: rate_limit {chosen!r} names no registered policy (known: {', '.join(sorted(known))})",
            )
    return policies
