"""Turn SDK ``Route`` declarations into Starlette routes that validate before the handler runs.

Routes sharing a path become one Starlette route that dispatches on the method, so a wrong
method gets a 405 whose ``Allow`` lists every method of that path.
"""

from __future__ import annotations

import inspect
import typing
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timezone
from email.utils import format_datetime
from typing import Any

import pydantic_core
from coderic_sdk import FieldError, Forbidden, PluginContext, Problem, RequestContext, Route, Unauthorized
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Receive, Scope, Send

from ..permissions.service import decisions
from .negotiation import accepts_json

if typing.TYPE_CHECKING:
    from ..identity.authenticate import Authenticator
    from ..permissions.service import PermissionService
    from ..services.ratelimit import RouteLimit

API_PREFIX = "/api/v1"
JSON_TYPES = ("application/json",)
MULTI_VALUED = (list, tuple, set, frozenset)


def api_path(prefix: str, path: str) -> str:
    return API_PREFIX + (f"/{prefix}" if prefix else "") + path


@dataclass(frozen=True)
class MountedRoute:
    """A route as served: owner, declaration, and its full path."""

    plugin: PluginContext
    route: Route
    path: str

    @property
    def operation_id(self) -> str:
        return f"{self.plugin.name}.{self.route.name}"


class RouteHandler:
    """Validates path, query and body, calls the endpoint, serialises the result."""

    def __init__(self, mounted: MountedRoute, max_body_bytes: int) -> None:
        self.plugin = mounted.plugin
        self.route = mounted.route
        self.max_body_bytes = max_body_bytes
        self.response_adapter = TypeAdapter(mounted.route.response) if mounted.route.response is not None else None
        self.multi_valued = _multi_valued_fields(mounted.route.query)
        self.lifecycle_headers = lifecycle_headers(mounted.route)
        # The kernel's limiter and authenticator, found through the owner's context (test doubles may have none).
        kernel = getattr(mounted.plugin, "kernel", None)
        limiter = getattr(kernel, "rate_limiter", None)
        self.rate_limit: RouteLimit | None = limiter.for_route(mounted) if limiter is not None else None
        self.authenticator: Authenticator | None = getattr(kernel, "authenticator", None)
        self.permissions: PermissionService | None = getattr(kernel, "permissions", None) if self.route.permission else None

    async def __call__(self, request: Request) -> Response:
        if self.authenticator is not None:
            # Before the rate limit, so that limits keyed by user count the user.
            user = await self.authenticator.authenticate(request.scope)
            if user is None:
                if self.route.authenticated:
                    raise Unauthorized()
            elif not user.allows(self.plugin.name, request.method):
                raise Forbidden("This personal access token's scopes do not cover this route.")
        if self.rate_limit is None:
            return await self._handle(request)
        # First of all: a refused request costs one store round trip and nothing else.
        headers = await self.rate_limit.check(request.scope)
        try:
            response = await self._handle(request)
        except Problem as problem:  # the handler's error answers carry the counts too
            problem.headers = {**dict(headers), **problem.headers}
            raise
        for name, value in headers:
            response.headers.append(name, value)
        return response

    async def _handle(self, request: Request) -> Response:
        route = self.route
        if route.media_type in JSON_TYPES and not accepts_json(request.headers.get("accept")):
            raise Problem(406, "This API answers in application/json; the Accept header excludes it.")
        path = _validate(route.path_params, dict(request.path_params), "path") if route.path_params else request.path_params
        ctx = RequestContext(request, self.plugin, None, None, path)
        decisions.set({})  # this request's permission decisions, remembered until it is answered
        if self.permissions is not None:  # before the query and body are read: a refusal reveals nothing of them
            await self._check_permission(ctx)
        if route.query:
            ctx.query = _validate(route.query, self._query_values(request), "query")
        if route.body is not None:
            ctx.body = await self._body(request)
        result = await route.endpoint(ctx)
        response = self._render(result)
        if self.lifecycle_headers:
            response.headers.update(self.lifecycle_headers)
        return response

    async def _check_permission(self, ctx: RequestContext[Any, Any, Any]) -> None:
        """Before the handler: the route's permission, on its resource if it names one."""
        assert self.permissions is not None and self.route.permission is not None
        resource = None
        if self.route.resource is not None:
            found = self.route.resource(ctx)
            resource = await found if inspect.isawaitable(found) else found
        await self.permissions.require(ctx.user, self.route.permission, resource)  # type: ignore[arg-type]

    def _query_values(self, request: Request) -> dict[str, Any]:
        values: dict[str, Any] = {}
        repeated = []
        for key, value in request.query_params.multi_items():
            if key in self.multi_valued:
                values.setdefault(key, []).append(value)
            elif key in values:
                repeated.append(FieldError(f"query.{key}", "given more than once; it takes one value", "repeated"))
            else:
                values[key] = value
        if repeated:  # which of two values was meant is a guess the API does not make
            raise Problem(422, "The request query is invalid.", errors=repeated)
        return values

    async def _body(self, request: Request) -> BaseModel:
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type not in JSON_TYPES and not content_type.endswith("+json"):
            raise Problem(415, "Send the body as application/json.", headers={"Accept-Post": "application/json"})
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _too_large(self.max_body_bytes)
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            raise Problem(422, "A JSON body is required.", errors=[FieldError("body", "a JSON body is required", "missing")])
        assert self.route.body is not None
        try:
            return self.route.body.model_validate_json(raw)
        except ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                raise Problem(400, "The body is not valid JSON.", errors=[FieldError("body", "not valid JSON", "json_invalid")]) from None
            raise _unprocessable(exc, "body") from None

    def _render(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        status = self.route.status_code
        if result is None and status == 204:
            return Response(status_code=204)
        if isinstance(result, BaseModel):
            content = result.model_dump_json().encode()
        elif self.response_adapter is not None:
            content = self.response_adapter.dump_json(self.response_adapter.validate_python(result))
        else:
            content = pydantic_core.to_json(result)
        return Response(content, status_code=status, media_type="application/json")


def lifecycle_headers(route: Route) -> dict[str, str]:
    """``Deprecation`` (RFC 9745, ``@<epoch>``) and ``Sunset`` (RFC 8594, an HTTP date)."""
    headers = {}
    if route.deprecated is not None:
        moment = datetime.combine(route.deprecated, time(), tzinfo=timezone.utc)
        headers["Deprecation"] = f"@{int(moment.timestamp())}"
    if route.sunset is not None:
        moment = datetime.combine(route.sunset, time(), tzinfo=timezone.utc)
        headers["Sunset"] = format_datetime(moment, usegmt=True)
    return headers


def _validate(model: type[BaseModel], values: dict[str, Any], where: str) -> BaseModel:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise _unprocessable(exc, where) from None


def _unprocessable(exc: ValidationError, where: str) -> Problem:
    errors = [
        FieldError(
            ".".join([where, *(str(part) for part in error["loc"])]),
            "unknown field" if error["type"] == "extra_forbidden" else error["msg"],
            error["type"],
        )
        for error in exc.errors(include_url=False, include_input=False)
    ]
    return Problem(422, f"The request {where} is invalid.", errors=errors)


def _too_large(limit: int) -> Problem:
    return Problem(413, f"The body is larger than {limit} bytes.")


def _multi_valued_fields(model: type[BaseModel] | None) -> frozenset[str]:
    if model is None:
        return frozenset()
    names = set()
    for name, field in model.model_fields.items():
        if typing.get_origin(field.annotation) in MULTI_VALUED or field.annotation in MULTI_VALUED:
            names.add(field.alias or name)
    return frozenset(names)


Endpoint = Callable[[Request], Awaitable[Response]]


class RequestEndpoint:
    """The ASGI app of a ``request -> response`` endpoint.

    Starlette's own wrapper (``request_response``) also catches each route's exceptions with
    the handler table from the scope. The kernel already catches them once for the whole app,
    with the same handlers (the request pipeline, or Starlette's ExceptionMiddleware when CORS
    is on: see ``middleware/stack.py``), so this one lets them pass: one coroutine and one
    ``send`` wrapper fewer per request. Not a function, so Starlette serves it as it is."""

    __slots__ = ("endpoint",)

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


def endpoint_route(path: str, endpoint: Endpoint, methods: Sequence[str], name: str | None = None) -> StarletteRoute:
    """A Starlette route answering ``methods`` on ``path`` with ``endpoint``."""
    return StarletteRoute(path, RequestEndpoint(endpoint), methods=list(methods), name=name)


def starlette_routes(mounted: Sequence[MountedRoute], max_body_bytes: int) -> list[StarletteRoute]:
    by_path: dict[str, dict[str, RouteHandler]] = defaultdict(dict)
    for entry in mounted:
        by_path[entry.path][entry.route.method] = RouteHandler(entry, max_body_bytes)
    routes = []
    for path, handlers in by_path.items():
        endpoint = next(iter(handlers.values())) if len(handlers) == 1 else _MethodDispatch(handlers)
        routes.append(endpoint_route(path, endpoint, list(handlers)))
    return routes


class _MethodDispatch:
    def __init__(self, handlers: dict[str, RouteHandler]) -> None:
        self.handlers = dict(handlers)
        if "GET" in self.handlers:
            self.handlers.setdefault("HEAD", self.handlers["GET"])

    async def __call__(self, request: Request) -> Response:
        return await self.handlers[request.method](request)
