"""The app factory: wiring only. ``uvicorn --factory coderic_kernel.web.app:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from coderic_sdk import Problem
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route as StarletteRoute

from ..kernel import Kernel
from .health import healthz, readyz_endpoint
from .middleware import RequestIdMiddleware, UnhandledErrorMiddleware
from .problems import handle_http_exception, handle_problem
from .routing import starlette_routes


def create_app(kernel: Kernel | None = None, *, manage_lifespan: bool = True) -> Starlette:
    """Build the combined API of the kernel and every enabled plugin.

    With ``manage_lifespan`` the server's lifespan starts and stops the kernel; the test
    harness starts the kernel itself and passes ``False``.
    """
    kernel = kernel or Kernel.boot()
    routes = [
        StarletteRoute("/healthz", healthz, methods=["GET"]),
        StarletteRoute("/readyz", readyz_endpoint(kernel.health_checks), methods=["GET"]),
        *starlette_routes(kernel.routes, kernel.config.kernel.max_body_bytes),
    ]
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(UnhandledErrorMiddleware),
        *kernel.middleware,
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with kernel.started():
            yield

    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: handle_http_exception, Problem: handle_problem},
        lifespan=lifespan if manage_lifespan else None,
    )
    app.state.kernel = kernel
    return app
