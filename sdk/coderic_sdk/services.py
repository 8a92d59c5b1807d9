"""Protocols for the kernel services a plugin may use. Plugins type against these, never
against ``coderic_kernel``, so the kernel's internals stay free to change."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from piccolo.engine.base import Engine

    from .cache import Cache
    from .email import Mailer
    from .events import EventBus
    from .jobs import Jobs
    from .notifications import Notifier
    from .permissions import Permissions
    from .profiles import ActivityLog
    from .ratelimit import RateLimits
    from .search import Search
    from .settings import PluginSettings
    from .storage import Storage
    from .types import PluginInfo
    from .users import Users


@runtime_checkable
class Database(Protocol):
    """The kernel's database. Tables of enabled plugins are already bound to ``engine``."""

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]: ...

    @property
    def engine(self) -> Engine: ...

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        """A transaction; nested calls join the outer one."""
        ...

    async def ping(self) -> None:
        """Return when the database answers a trivial query; raise otherwise."""
        ...


@runtime_checkable
class Kernel(Protocol):
    """The running kernel as a plugin sees it."""

    @property
    def environment(self) -> str: ...

    @property
    def database(self) -> Database: ...

    @property
    def plugins(self) -> Sequence[PluginInfo]:
        """Enabled plugins, built-ins first, each after the plugins it requires."""
        ...

    def started(self) -> AbstractAsyncContextManager[Kernel]:
        """Open the database and run every lifespan hook (for CLI commands that need them)."""
        ...


@runtime_checkable
class PluginContext(Protocol):
    """One plugin's view of itself: passed to every hook that takes ``plugin``."""

    @property
    def name(self) -> str: ...

    @property
    def info(self) -> PluginInfo: ...

    @property
    def settings(self) -> PluginSettings: ...

    @property
    def kernel(self) -> Kernel: ...

    @property
    def logger(self) -> logging.Logger: ...

    @property
    def cache(self) -> Cache:
        """The plugin's own cache namespace."""
        ...

    @property
    def events(self) -> EventBus:
        """Publishes events named ``<this plugin>.<what>``."""
        ...

    @property
    def jobs(self) -> Jobs: ...

    @property
    def rate_limits(self) -> RateLimits: ...

    @property
    def email(self) -> Mailer:
        """Sends this plugin's templates (and any other) through the outbox."""
        ...

    @property
    def notifications(self) -> Notifier:
        """Sends this plugin's notification types to members (inbox, real time, email)."""
        ...

    @property
    def permissions(self) -> Permissions:
        """Checks and role grants (``allowed``, ``require``, ``filter``, ``grant``, ``revoke``)."""
        ...

    @property
    def files(self) -> Storage:
        """Stores and serves files of this plugin's purposes (local disk or S3)."""
        ...

    @property
    def activity(self) -> ActivityLog:
        """Records members' activities of types ``<this plugin>.<what>`` (their profile's history)."""
        ...

    @property
    def users(self) -> Users:
        """Looks up active members by id (name and avatar only), e.g. to check an invitee exists."""
        ...

    @property
    def search(self) -> Search:
        """Feeds and asks this plugin's search indexes (``index``, ``delete``, ``refresh``, ``query``)."""
        ...
