"""The Coderic SDK: the only package a plugin imports.

A plugin is a module whose ``@hookimpl`` functions contribute settings, tables, routes,
middleware, health checks, lifespans and commands. See ``docs/plugins.md``.
"""

from importlib.metadata import PackageNotFoundError, version

from ._markers import ENTRY_POINT_GROUP, hookimpl
from .auth import AuthMethod, CurrentUser
from .cache import Cache
from .email import DigestItem, DigestSource, EmailTemplate, Mailer, Recipient
from .events import EVENTS_RESUMED, Event, EventBus, EventHandler
from .jobs import CronJob, Job, JobContext, JobHandler, Jobs
from .notifications import Notifier, NotificationType
from .permissions import BUILTIN_ROLES, Permission, Permissions, Resource, ResourcePolicy, Role, from_path
from .personal_data import PersonalData
from .problems import Conflict, FieldError, Forbidden, NotFound, Problem, Unauthorized
from .profiles import AUDIENCES, ActivityLog, Audience, ProfileSection
from .ratelimit import RateLimitDecision, RateLimitPolicy, RateLimits
from .routes import Endpoint, RequestContext, Route
from .search import (
    Search, SearchAttribute, SearchDocument, SearchField, SearchHit, SearchIndex, SearchQuery, SearchResults,
    search_route,
)
from .schema import Schema
from .services import Database, Kernel, PluginContext
from .settings import PluginSettings, Secret
from .storage import FilePurpose, SignedUpload, Storage, StorageUsage, StoredFile
from .types import HealthCheck, PluginInfo
from .users import UserSummary, Users

try:
    __version__ = version("coderic-sdk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
    __version__ = "0.0.0"

__all__ = [
    "AUDIENCES",
    "ENTRY_POINT_GROUP",
    "EVENTS_RESUMED",
    "ActivityLog",
    "Audience",
    "AuthMethod",
    "BUILTIN_ROLES",
    "Cache",
    "Conflict",
    "CurrentUser",
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
    "NotificationType",
    "Notifier",
    "PluginInfo",
    "Permission",
    "Permissions",
    "PersonalData",
    "PluginSettings",
    "Problem",
    "ProfileSection",
    "RateLimitDecision",
    "RateLimitPolicy",
    "RateLimits",
    "Recipient",
    "RequestContext",
    "Resource",
    "ResourcePolicy",
    "Role",
    "Route",
    "Schema",
    "Search",
    "SearchAttribute",
    "SearchDocument",
    "SearchField",
    "SearchHit",
    "SearchIndex",
    "SearchQuery",
    "SearchResults",
    "Secret",
    "SignedUpload",
    "Storage",
    "StorageUsage",
    "StoredFile",
    "Unauthorized",
    "UserSummary",
    "Users",
    "__version__",
    "from_path",
    "hookimpl",
    "search_route",
]
