"""The Coderic SDK: the only package a plugin imports.

A plugin is a module whose ``@hookimpl`` functions contribute settings, tables, routes,
middleware, health checks, lifespans and commands. See ``docs/plugins.md``.
"""

from importlib.metadata import PackageNotFoundError, version

from ._markers import ENTRY_POINT_GROUP, hookimpl
from .problems import Conflict, FieldError, Forbidden, NotFound, Problem
from .routes import Endpoint, RequestContext, Route
from .schema import Schema
from .services import Database, Kernel, PluginContext
from .settings import PluginSettings, Secret
from .types import HealthCheck, PluginInfo

try:
    __version__ = version("coderic-sdk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "Conflict",
    "Database",
    "Endpoint",
    "FieldError",
    "Forbidden",
    "HealthCheck",
    "Kernel",
    "NotFound",
    "PluginContext",
    "PluginInfo",
    "PluginSettings",
    "Problem",
    "RequestContext",
    "Route",
    "Schema",
    "Secret",
    "__version__",
    "hookimpl",
]
