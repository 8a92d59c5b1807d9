"""The ``kernel`` built-in plugin: database readiness, the list of enabled plugins, the kernel's
permissions and the admin API (``/api/v1/admin``)."""

from __future__ import annotations

from coderic_sdk import HealthCheck, Permission, PluginContext, RequestContext, Route, Schema, hookimpl

from ..admin.permissions import KERNEL_PERMISSIONS, PLUGINS_VIEW
from ..admin.routes import routes as admin_routes


class PluginOut(Schema):
    name: str
    version: str
    description: str
    distribution: str
    requires: list[str]
    sdk_range: str
    builtin: bool
    hooks: list[str]


class PluginList(Schema):
    plugins: list[PluginOut]


async def list_plugins(ctx: RequestContext[None, None, dict[str, str]]) -> PluginList:
    return PluginList(plugins=[PluginOut.model_validate(p.as_dict()) for p in ctx.plugin.kernel.plugins])


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    return [
        Route(
            "GET", "/plugins", list_plugins, name="list_plugins", prefix="", response=PluginList,
            summary="Enabled plugins", description="Every enabled plugin, built-ins first, in load order.",
            tags=("kernel",), permission=PLUGINS_VIEW,
        ),
        *admin_routes(),
    ]


@hookimpl
def register_permissions() -> list[Permission]:
    return list(KERNEL_PERMISSIONS)


@hookimpl
def register_piccolo_app():  # type: ignore[no-untyped-def]
    from ..piccolo_app import APP_CONFIG

    return APP_CONFIG


@hookimpl
def register_health_checks(plugin: PluginContext) -> list[HealthCheck]:
    checks = [HealthCheck("database", plugin.kernel.database.ping)]
    redis = getattr(plugin.kernel, "redis", None)  # the kernel's own plugin may see its internals
    if redis is not None:
        checks.append(HealthCheck("redis", redis.ping))
    return checks
