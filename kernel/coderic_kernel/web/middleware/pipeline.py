"""The kernel's per-request work in one ASGI layer: request id, security headers, metrics
and access log, and (unless CORS needs to sit in between) turning unhandled errors into
problems. Each concern is its own module; composing them here costs one coroutine and one
``send`` wrapper per request instead of one of each per concern."""

from __future__ import annotations

from collections.abc import Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...observability.metrics import Metrics
from .errors import error_response
from .lifespan import run_lifespan
from .observe import RequestObserver
from .request_id import HEADER, RequestIds, _current, _incoming
from .security_headers import ADDED_NAMES, SecurityHeaders, add_missing

if TYPE_CHECKING:
    from ...kernel import Kernel

#: Where Starlette's ExceptionMiddleware leaves the handlers for each route's wrapper:
#: (handlers by exception class, handlers by status code).
HANDLERS_KEY = "starlette.exception_handlers"
ExceptionHandlers = tuple[dict[Any, Any], dict[int, Any]]


class RequestPipeline:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics | None,
        owners: Mapping[str, str],
        hsts_max_age: int,
        catch_errors: bool,
        lifespan_of: Kernel | None = None,
        access_log: bool = True,
        exception_handlers: ExceptionHandlers | None = None,
    ) -> None:
        self.app = app
        # Starlette's table of exception handlers, which each route's own wrapper reads from
        # the scope: set here when this layer stands in for ExceptionMiddleware (stack.py).
        self.exception_handlers = exception_handlers
        self.lifespan_of = lifespan_of  # the kernel this server starts and stops, if any
        self.owners = owners
        self.catch_errors = catch_errors
        self.ids = RequestIds()
        self.new_id = self.ids.new_id
        self.headers = SecurityHeaders(hsts_max_age)
        self.observer = RequestObserver(metrics, owners, access_log)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan" and self.lifespan_of is not None:
                await run_lifespan(self.lifespan_of, receive, send)
            elif kind == "websocket":
                if self.exception_handlers is not None:
                    scope[HANDLERS_KEY] = self.exception_handlers
                _, token = self.ids.assign(scope)
                try:
                    await self.app(scope, receive, send)
                finally:
                    self.ids.reset(token)
            else:
                await self.app(scope, receive, send)
            return
        # The per-request steps of request_id and security_headers, written out here: this is
        # the hottest code of the kernel, and each function call costs as much as its body.
        request_id = _incoming(scope) or self.new_id()
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        if self.exception_handlers is not None:
            scope[HANDLERS_KEY] = self.exception_handlers
        token = _current.set(request_id)
        if scope.get("scheme") == "https" or scope["path"].startswith("/docs"):
            secure = self.headers.for_scope(scope)
        else:  # the usual case
            secure = self.headers.api
        status = 0  # no response started yet
        started = perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                for name, _ in headers:
                    if name in ADDED_NAMES:  # the response set one of them itself: it keeps its own
                        message["headers"] = add_missing(list(headers), [*secure, (HEADER, request_id.encode())])
                        break
                else:
                    message["headers"] = [*headers, *secure, (HEADER, request_id.encode())]
            await send(message)

        self.observer.started()
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            if not self.catch_errors:
                status = status or 500
                raise
            response = error_response(scope, exc, self.owners)
            if status:
                raise  # the response is under way: the server closes the connection
            await response(scope, receive, send_with_headers)
        finally:
            self.observer.finished(scope, status, perf_counter() - started, request_id)
            _current.reset(token)
