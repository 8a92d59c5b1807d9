"""Roles and permissions: what plugins declare and how handlers ask.

A **permission** is an action, ``<plugin>.<action>`` (``projects.update``), declared through
``register_permissions`` with the roles that hold it by default. A **role** is a set of
permissions; the kernel has seven (``BUILTIN_ROLES``), plugins may declare their own
(``register_roles``) and admins create custom ones. A role is **granted** to a user globally
(``moderator``) or on one resource (``project_owner`` of project 42). Deny by default: a user
may do what one of their roles allows, on that resource or globally.

Everyone has ``guest``; signed-in users also have ``member``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .auth import CurrentUser
    from .routes import RequestContext

GUEST = "guest"
MEMBER = "member"
PROJECT_OWNER = "project_owner"
FREELANCER = "freelancer"
MENTOR = "mentor"
MODERATOR = "moderator"
ADMIN = "admin"
#: The product owner's seven roles. ``project_owner`` is only ever granted on a resource.
BUILTIN_ROLES = (GUEST, MEMBER, PROJECT_OWNER, FREELANCER, MENTOR, MODERATOR, ADMIN)
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$")


def valid_name(name: str) -> bool:
    """``<plugin>.<action>``: lower-case, digits and underscores, dot-separated."""
    return bool(_NAME.match(name))


@dataclass(frozen=True, slots=True)
class Permission:
    """An action of a plugin. ``default_roles`` hold it unless an admin says otherwise;
    ``admin`` holds every permission and needs no mention."""

    name: str
    description: str
    default_roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not valid_name(self.name):
            raise ValueError(f"permission {self.name!r} must be named '<plugin>.<action>' (lower case)")


@dataclass(frozen=True, slots=True)
class Role:
    """A role a plugin brings (``projects.maintainer``). ``scoped`` roles are only granted on a
    resource of ``resource_type``."""

    name: str
    description: str
    scoped: bool = False
    resource_type: str | None = None


@dataclass(frozen=True, slots=True)
class Resource:
    """One thing permissions can be scoped to: ``Resource("projects.project", "42")``."""

    type: str
    id: str


#: How a route finds the resource its permission is about, from the validated request.
ResourceFinder = Callable[["RequestContext[object, object, object]"], "Resource | None | Awaitable[Resource | None]"]


def from_path(resource_type: str, parameter: str) -> ResourceFinder:
    """The resource whose id is the path parameter ``parameter``: ``from_path("projects.project", "project_id")``."""

    def find(ctx: RequestContext[object, object, object]) -> Resource | None:
        path = ctx.path
        value = getattr(path, parameter, None) if not isinstance(path, dict) else path.get(parameter)
        return None if value is None else Resource(resource_type, str(value))

    find.__qualname__ = f"from_path({resource_type!r}, {parameter!r})"
    return find


@dataclass(frozen=True, slots=True)
class ResourcePolicy:
    """A plugin's own say over its resources of ``resource_type``: ``decide(user, permission,
    resource)`` returns ``True`` (allow), ``False`` (deny, whatever the roles say) or ``None``
    (let the roles decide). ``exists(resource)`` tells whether the resource exists, so that a
    denial on something the caller may not see can be a 404 instead of a 403.
    """

    resource_type: str
    decide: Callable[[CurrentUser | None, str, Resource], Awaitable[bool | None]] | None = None
    visible: Callable[[CurrentUser | None, Resource], Awaitable[bool]] | None = None


@runtime_checkable
class Permissions(Protocol):
    """Checks and grants, for handlers (``ctx.plugin.permissions``). Decisions are cached for
    the request when a ``RequestContext`` is passed."""

    async def allowed(self, user: CurrentUser | None, permission: str, resource: Resource | None = None) -> bool:
        """Whether ``user`` (``None``: a guest) may do ``permission`` (on ``resource``)."""
        ...

    async def require(self, user: CurrentUser | None, permission: str, resource: Resource | None = None,
                      *, hide: bool = False) -> None:
        """Raise 401 (a guest), 404 (``hide``: the caller must not learn the resource exists)
        or 403 unless allowed."""
        ...

    async def filter(self, user: CurrentUser | None, permission: str, resources: Iterable[Resource]) -> list[Resource]:
        """The resources on which ``user`` may do ``permission``, in their order (for lists and search)."""
        ...

    async def grant(self, user_id: str, role: str, resource: Resource | None = None, *,
                    by: str | None = None, reason: str = "") -> None:
        """Give ``user_id`` the role (on ``resource``); audited with who and why."""
        ...

    async def revoke(self, user_id: str, role: str, resource: Resource | None = None, *,
                     by: str | None = None, reason: str = "") -> bool:
        """Take the role back; ``False`` if the user did not have it."""
        ...

    async def holders(self, role: str, resource: Resource) -> list[str]:
        """Ids of the users holding ``role`` on ``resource`` (the owners of a project)."""
        ...
