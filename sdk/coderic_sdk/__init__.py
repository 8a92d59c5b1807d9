"""The Coderic SDK: the only package a plugin imports.

A plugin is a module whose ``@hookimpl`` functions contribute settings, tables, routes,
middleware, health checks, lifespans and commands. See ``docs/plugins.md``.
"""

from importlib.metadata import PackageNotFoundError, version

from ._markers import ENTRY_POINT_GROUP, hookimpl
from .cache import Cache
from .email import DigestItem, DigestSource, EmailTemplate, Mailer, Recipient
from .events import Event, EventBus, EventHandler
from .jobs import CronJob, Job, JobContext, JobHandler, Jobs
from .problems import Conflict, FieldError, Forbidden, NotFound, Problem
from .ratelimit import RateLimitDecision, RateLimitPolicy, RateLimits
from .routes import Endpoint, RequestContext, Route
from .schema import Schema
from .services import Database, Kernel, PluginContext
from .settings import PluginSettings, Secret
from .storage import FilePurpose, SignedUpload, Storage, StorageUsage, StoredFile
from .types import HealthCheck, PluginInfo

try:
    __version__ = version("coderic-sdk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "Cache",
    "Conflict",
    "CronJob",
    "Database",
    "DigestItem",
    "DigestSource",
    "EmailTemplate",
    "Endpoint",
    "Event",
    "EventBus",
    "EventHandler",
    "FieldError",
    "FilePurpose",
    "Forbidden",
    "HealthCheck",
    "Job",
    "JobContext",
    "JobHandler",
    "Jobs",
    "Kernel",
    "Mailer",
    "NotFound",
    "PluginContext",
    "PluginInfo",
    "PluginSettings",
    "Problem",
    "RateLimitDecision",
    "RateLimitPolicy",
    "RateLimits",
    "Recipient",
    "RequestContext",
    "Route",
    "Schema",
    "Secret",
    "SignedUpload",
    "Storage",
    "StorageUsage",
    "StoredFile",
    "__version__",
    "hookimpl",
]
