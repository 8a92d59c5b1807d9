"""The kernel's implementation of the SDK's ``PluginContext``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from coderic_sdk import PluginInfo, PluginSettings

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..email.service import PluginMailer
    from ..services.cache import PluginCache
    from ..services.events import PluginEvents
    from ..notifications.service import PluginNotifier
    from ..permissions.service import PluginPermissions
    from ..profiles.activity import PluginActivity
    from ..services.jobs import PluginJobs
    from ..services.ratelimit import PluginRateLimits
    from ..search.service import PluginSearch
    from ..storage.service import PluginFiles
    from ..identity.directory import Directory


class NoSettings(PluginSettings):
    """The settings of a plugin that declares none: any key given for it is refused."""


@dataclass
class PluginContextImpl:
    info: PluginInfo
    settings: PluginSettings
    kernel: Kernel
    logger: logging.Logger = field(init=False)

    def __post_init__(self) -> None:
        self.logger = logging.getLogger(f"coderic.plugins.{self.info.name}")
        self._cache: PluginCache | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def jobs(self) -> PluginJobs:
        from ..services.jobs import PluginJobs

        return PluginJobs(self.kernel.jobs, self.name)

    @property
    def events(self) -> PluginEvents:
        from ..services.events import PluginEvents

        return PluginEvents(self.kernel.jobs, self.name)

    @property
    def cache(self) -> PluginCache:
        if self._cache is None:
            from ..services.cache import PluginCache

            self._cache = PluginCache(self.kernel.cache_store, self.name)
        return self._cache

    @property
    def email(self) -> PluginMailer:
        from ..email.service import PluginMailer, service_for

        return PluginMailer(service_for(self.kernel), self.name)

    @property
    def files(self) -> PluginFiles:
        from ..storage.service import PluginFiles, store_for

        return PluginFiles(store_for(self.kernel), self.name, self.kernel.config.kernel.public_url)

    @property
    def notifications(self) -> PluginNotifier:
        from ..notifications.service import PluginNotifier, notifications_for

        return PluginNotifier(notifications_for(self.kernel), self.name, self.info.builtin)

    @property
    def permissions(self) -> PluginPermissions:
        from ..permissions.service import PluginPermissions

        return PluginPermissions(self.kernel.permissions, self.name, self.info.builtin)

    @property
    def rate_limits(self) -> PluginRateLimits:
        from ..services.ratelimit import PluginRateLimits

        return PluginRateLimits(self.kernel.rate_limiter, self.name)

    @property
    def activity(self) -> PluginActivity:
        from ..profiles.activity import PluginActivity

        return PluginActivity(self.name)

    @property
    def users(self) -> Directory:
        from ..identity.directory import Directory

        return Directory()

    @property
    def search(self) -> PluginSearch:
        from ..search.service import PluginSearch, search_for

        return PluginSearch(search_for(self.kernel), self.name, self.info.builtin)
