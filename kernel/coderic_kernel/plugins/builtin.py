"""The kernel's own features, registered as plugins through the same hooks as any other."""

from __future__ import annotations

from dataclasses import dataclass

from coderic_sdk import PluginInfo

from .. import __version__


@dataclass(frozen=True)
class BuiltinPlugin:
    name: str
    module: str
    description: str

    def info(self) -> PluginInfo:
        return PluginInfo(
            name=self.name,
            version=__version__,
            description=self.description,
            distribution="coderic-kernel",
            builtin=True,
        )


BUILTINS: tuple[BuiltinPlugin, ...] = (
    BuiltinPlugin("kernel", "coderic_kernel.builtins.core", "Kernel core: database health, plugin listing."),
    BuiltinPlugin("email", "coderic_kernel.builtins.email", "Email: templates, sending through the outbox, tracking, digests, newsletter."),
    BuiltinPlugin("auth", "coderic_kernel.builtins.auth", "Identity: accounts, sign-in, tokens, sessions, 2FA, audit."),
    BuiltinPlugin("files", "coderic_kernel.builtins.files", "Files: uploads, signed URLs, validation, quotas, image variants, lifecycle."),
    BuiltinPlugin("notifications", "coderic_kernel.builtins.notifications",
                  "Notifications: inbox, preferences, email and digests, real-time streams, announcements."),
    BuiltinPlugin("search", "coderic_kernel.builtins.search",
                  "Search: indexes of every plugin on SQLite FTS5, PostgreSQL full text or Meilisearch; filters, facets."),
)
