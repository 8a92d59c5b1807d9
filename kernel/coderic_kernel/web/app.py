"""The app factory: wiring only. ``uvicorn --factory coderic_kernel.web.app:create_app``."""

from __future__ import annotations

from coderic_sdk import Problem
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from ..kernel import Kernel
from ..observability.metrics import metrics_endpoint
from ..observability.process import prepare_process
from .docs_page import docs_routes
from .health import healthz, readyz_endpoint
from .jwks import JWKS_PATH, jwks_endpoint
from .middleware.stack import KernelStarlette, kernel_middleware
from .openapi import OPENAPI_PATH, openapi_endpoint
from .problems import handle_http_exception, handle_problem
from .routing import endpoint_route, starlette_routes


def create_app(kernel: Kernel | None = None, *, manage_lifespan: bool = True) -> Starlette:
    """Build the combined API of the kernel and every enabled plugin.

    With ``manage_lifespan`` the server's lifespan starts and stops the kernel; the test
    harness starts the kernel itself and passes ``False``. Called without a kernel (as
    uvicorn's factory), it also sets up this process's logging and error tracking.
    """
    if kernel is None:
        kernel = Kernel.boot()
        prepare_process(kernel.config.kernel)
    settings = kernel.config.kernel
    routes = [
        endpoint_route("/healthz", healthz, ["GET"]),
        endpoint_route("/readyz", readyz_endpoint(kernel.health_checks), ["GET"]),
        endpoint_route(OPENAPI_PATH, openapi_endpoint(kernel), ["GET"]),
        endpoint_route(JWKS_PATH, jwks_endpoint(kernel), ["GET"]),
        *docs_routes(),
        *starlette_routes(kernel.routes, settings.max_body_bytes),
    ]
    if settings.metrics_enabled:
        routes.append(endpoint_route("/metrics", metrics_endpoint(kernel.metrics, settings.metrics_token), ["GET"]))

    app = KernelStarlette(
        routes=routes,
        middleware=kernel_middleware(kernel, manage_lifespan=manage_lifespan),
        exception_handlers={HTTPException: handle_http_exception, Problem: handle_problem},
    )
    app.state.kernel = kernel
    return app
