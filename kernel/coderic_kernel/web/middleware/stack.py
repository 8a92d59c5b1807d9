"""The kernel's middleware, outermost first. Every entry is pure ASGI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .errors import UnhandledErrorMiddleware
from .pipeline import RequestPipeline

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
    """Starlette without the ``ServerErrorMiddleware`` it wraps around everything else.

    The request pipeline (or ``UnhandledErrorMiddleware`` when CORS is on) already answers an
    unhandled error with a 500 problem and logs it. What still escapes (an error once the
    response is under way, or one in a layer outside the pipeline) reaches the server, which
    logs it and answers 500 or closes the connection: what it does after that layer, too,
    re-raises. Without it each request runs one coroutine and one ``send`` wrapper fewer.
    """

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if isinstance(stack, ServerErrorMiddleware) and stack.handler is None and not stack.debug:
            return stack.app
        return stack
