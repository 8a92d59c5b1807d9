"""The kernel's middleware, outermost first. Every entry is pure ASGI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException, WebSocketException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp
from starlette.websockets import WebSocket
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .errors import UnhandledErrorMiddleware
from .pipeline import ExceptionHandlers, RequestPipeline

if TYPE_CHECKING:
    from ...kernel import Kernel

CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "X-CSRF-Token"]
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Location", "Retry-After", "RateLimit", "RateLimit-Policy", "Deprecation", "Sunset"]


def kernel_middleware(kernel: Kernel, *, manage_lifespan: bool = True) -> list[Middleware]:
    settings = kernel.config.kernel
    owners = {mounted.path: mounted.plugin.name for mounted in kernel.routes}
    stack = []
    if settings.trusted_proxies:  # client address and scheme from X-Forwarded-* of these hosts only
        stack.append(Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies))
    stack.append(
        Middleware(
            RequestPipeline,
            metrics=kernel.metrics if settings.metrics_enabled else None,
            owners=owners,
            hsts_max_age=settings.hsts_max_age,
            catch_errors=not settings.cors_origins,
            lifespan_of=kernel if manage_lifespan else None,
            access_log=settings.access_log,
        )
    )
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_credentials=settings.cors_allow_credentials,
                allow_methods=CORS_METHODS,
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_EXPOSED_HEADERS,
                max_age=600,
            )
        )
        stack.append(Middleware(UnhandledErrorMiddleware, owners=owners))  # inside CORS: errors get its headers
    stack += kernel.middleware
    return stack


class KernelStarlette(Starlette):
    """Starlette without the two layers it wraps around the kernel's middleware.

    ``ServerErrorMiddleware``: the request pipeline (or ``UnhandledErrorMiddleware`` when
    CORS is on) already answers an unhandled error with a 500 problem and logs it. What still
    escapes (an error once the response is under way, or one in a layer outside the pipeline)
    reaches the server, which logs it and answers 500 or closes the connection.

    ``ExceptionMiddleware``, when the pipeline catches errors: it puts the table of exception
    handlers in the scope for each route's own wrapper (the pipeline does that now) and
    answers the router's 404 and 405 (the pipeline's error response does). Each layer gone is
    one coroutine and one ``send`` wrapper fewer per request.
    """

    def build_middleware_stack(self) -> ASGIApp:
        table = self._handler_table()
        if table is None:
            stack = super().build_middleware_stack()
            if isinstance(stack, ServerErrorMiddleware) and stack.handler is None and not stack.debug:
                return stack.app
            return stack
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            if cls is RequestPipeline:
                kwargs = {**kwargs, "exception_handlers": table}
            app = cls(app, *args, **kwargs)
        return app

    def _handler_table(self) -> ExceptionHandlers | None:
        """The handlers ``ExceptionMiddleware`` would put in the scope, when the pipeline can
        stand in for it; ``None`` when it cannot (CORS on, debug, a 500 handler, a body limit)."""
        pipeline = next((m for m in self.user_middleware if m.cls is RequestPipeline), None)
        if pipeline is None or not pipeline.kwargs.get("catch_errors") or self.debug or self.max_body_size is not None:
            return None
        if HTTPException not in self.exception_handlers or {500, Exception} & self.exception_handlers.keys():
            return None
        by_class: dict[Any, Any] = {WebSocketException: _close_websocket}
        by_status: dict[int, Any] = {}
        for key, handler in self.exception_handlers.items():
            if isinstance(key, int):
                by_status[key] = handler
            else:
                by_class[key] = handler
        return by_class, by_status


async def _close_websocket(websocket: WebSocket, exc: Exception) -> None:
    """What ExceptionMiddleware does with a ``WebSocketException``."""
    assert isinstance(exc, WebSocketException)
    await websocket.close(code=exc.code, reason=exc.reason)
