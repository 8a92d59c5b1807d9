"""Typed route declarations. The kernel turns each into a Starlette route that validates the
request before the handler runs and serialises what the handler returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from starlette.requests import Request

from .auth import CurrentUser
from .permissions import ResourceFinder
from .problems import Unauthorized

if TYPE_CHECKING:
    from pydantic import BaseModel

    from .services import PluginContext

BodyT = TypeVar("BodyT")
QueryT = TypeVar("QueryT")
PathT = TypeVar("PathT")

HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@dataclass(slots=True)
class RequestContext(Generic[BodyT, QueryT, PathT]):
    """What a handler receives: the validated inputs and the plugin that owns the route.

    ``body``, ``query`` and ``path`` are instances of the route's models, or ``None`` /
    the raw path parameters when the route declares no model for them.
    """

    request: Request
    plugin: PluginContext
    body: BodyT
    query: QueryT
    path: PathT

    @property
    def request_id(self) -> str:
        return str(self.request.scope.get("state", {}).get("request_id", ""))

    @property
    def user(self) -> CurrentUser | None:
        """The signed-in caller, or ``None`` for an anonymous request."""
        return self.request.scope.get("state", {}).get("user")  # type: ignore[no-any-return]

    def require_user(self) -> CurrentUser:
        """The signed-in caller; answers 401 when there is none."""
        user = self.user
        if user is None:
            raise Unauthorized()
        return user


#: A handler: ``async def handler(ctx: RequestContext) -> Schema | dict | list | Response | None``.
Endpoint = Callable[[RequestContext[Any, Any, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """One operation of a plugin's API, mounted at ``/api/v1/<prefix><path>``.

    ``name`` makes the stable operation id ``<plugin>.<name>``. ``prefix`` defaults to the
    plugin's name; claiming another prefix fails at start-up if another plugin holds it.
    ``body`` models must forbid unknown fields (subclass :class:`coderic_sdk.Schema`).
    ``response`` describes the success body; ``responses`` documents other statuses.
    ``authenticated`` answers 401 before the handler runs unless a user is signed in.
    ``permission`` names what the caller needs (``<plugin>.<action>``), checked before the
    handler runs; ``resource`` finds what it is about (``permissions.from_path(...)``), so a
    role granted on that resource counts. Denied: 401 for a guest, 404 when the caller may not
    see the resource, 403 otherwise.
    ``rate_limit`` names a policy (``<plugin>.<name>`` or a kernel one such as ``default``);
    routes without one share the ``default`` policy.
    ``deprecated`` is the date the route was deprecated and ``sunset`` the date it goes away;
    responses then carry ``Deprecation`` (RFC 9745) and ``Sunset`` (RFC 8594) headers.
    ``media_type`` is what a successful answer carries: JSON unless the handler returns a
    Starlette ``Response`` of another type (an image, a page), or ``None`` for no body (a
    redirect). Only JSON routes refuse, with 406, a request whose ``Accept`` excludes JSON.
    ``raw_body`` documents a body the handler reads itself from ``ctx.request.stream()`` (a
    multipart upload): media type -> model of its parts, for the OpenAPI document only.
    """

    method: str
    path: str
    endpoint: Endpoint
    name: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: type[BaseModel] | None = None
    response: Any = None
    status_code: int = 200
    responses: Mapping[int, Any] = field(default_factory=dict)
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    permission: str | None = None
    authenticated: bool = False
    resource: ResourceFinder | None = None
    rate_limit: str | None = None
    prefix: str | None = None
    deprecated: date | None = None
    sunset: date | None = None
    media_type: str | None = "application/json"
    raw_body: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        method = self.method.upper()
        if method not in HTTP_METHODS:
            raise ValueError(f"route {self.name!r}: method {self.method!r} is not one of {sorted(HTTP_METHODS)}")
        object.__setattr__(self, "method", method)
        if not self.path.startswith("/") and self.path != "":
            raise ValueError(f"route {self.name!r}: path {self.path!r} must start with '/'")
        if self.body is not None and method in {"GET", "DELETE"}:
            raise ValueError(f"route {self.name!r}: a {method} route cannot take a body")
        if self.raw_body and (self.body is not None or method in {"GET", "DELETE"}):
            raise ValueError(f"route {self.name!r}: raw_body is for routes without a body model that take a body")
        if self.resource is not None and self.permission is None:
            raise ValueError(f"route {self.name!r}: a resource is only looked up for a permission")
        if self.sunset is not None and self.deprecated is None:
            raise ValueError(f"route {self.name!r}: a sunset date needs a deprecation date")
