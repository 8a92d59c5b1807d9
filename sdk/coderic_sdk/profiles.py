"""Profiles and activity: what a plugin adds to a member's profile, and what it records in
their activity history (see ``docs/profiles.md``).

Who may see a profile field or an activity is one of three **audiences**: ``public`` (anyone,
signed in or not), ``members`` (anyone signed in) and ``private`` (the member alone).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .auth import CurrentUser
    from .permissions import Resource

Audience = Literal["public", "members", "private"]
AUDIENCES: tuple[Audience, ...] = ("public", "members", "private")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

#: ``load(user_id, viewer)``: the section as ``viewer`` (``None``: a guest) may see it, or ``None`` to leave it out.
SectionLoader = Callable[[str, "CurrentUser | None"], Awaitable["dict[str, Any] | None"]]


@dataclass(frozen=True, slots=True)
class ProfileSection:
    """A part of every member's profile that a plugin fills (``freelancers.rates``).

    ``load`` is awaited for each profile shown, with the member's id and the viewer; it returns
    JSON-safe data, or ``None`` when there is nothing to show to that viewer (the plugin decides
    who sees what). Named ``<plugin>.<name>`` once registered.
    """

    name: str
    load: SectionLoader
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name.rsplit(".", 1)[-1]):
            raise ValueError(f"profile section {self.name!r}: a name is a lower-case letter, then letters, digits or '_'")


@runtime_checkable
class ActivityLog(Protocol):
    """The activity history (``plugin.activity``): what members did, shown on their profile.

    A type is named ``<this plugin>.<what>`` (``projects.created``). ``subject`` is what the
    activity is about; when its plugin's ``ResourcePolicy.visible`` says a viewer may not see
    it (or it is gone), the activity is left out of that viewer's feeds.
    """

    async def record(
        self, actor_id: str, type: str, subject: Resource | None = None, metadata: Mapping[str, Any] | None = None,
        visibility: Audience = "members",
    ) -> int | None:
        """Add an activity of ``actor_id``; its id, or ``None`` when the actor is not an active
        account (nothing is recorded). ``metadata`` is JSON-safe, at most 4 KiB as JSON."""
        ...

    async def forget(self, subject: Resource) -> int:
        """Remove this plugin's activities about ``subject`` (a deleted project); how many."""
        ...
