"""Turn an unhandled exception into a 500 problem with no internals in the body.

The full error goes to the log with the request id the client also receives, so an
operator can find it from a user's report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from coderic_sdk import Problem
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...observability import sentry
from ..problems import http_exception_problem, problem_response, render_problem
from .labels import route_labels

logger = logging.getLogger("coderic.errors")


def error_response(scope: Scope, exc: Exception, owners: Mapping[str, str]) -> Response:
    """The answer to an exception nothing inside handled: a ``Problem`` (raised by plugin
    middleware, outside Starlette's handlers) as itself, an ``HTTPException`` (the router's)
    as its problem; anything else logged, reported to Sentry, and answered with a 500 that
    holds nothing but the request id."""
    if isinstance(exc, Problem):
        return render_problem(scope, exc)
    if isinstance(exc, HTTPException):  # the router's 404 and 405 (no ExceptionMiddleware: see stack.py)
        return http_exception_problem(scope, exc)
    request_id = scope.get("state", {}).get("request_id", "")
    route, plugin = route_labels(scope, owners)
    logger.error(
        "unhandled error in %s %s (request %s)", scope.get("method"), scope.get("path"), request_id,
        exc_info=exc, extra={"request_id": request_id, "route": route, "plugin": plugin},
    )
    sentry.capture(exc, request_id=request_id, plugin=plugin, route=route)
    return problem_response(
        scope, 500, detail=f"An unexpected error occurred. Quote request id {request_id} when reporting it."
    )


class UnhandledErrorMiddleware:
    """Its own layer only when CORS sits between it and the request pipeline (so error
    responses carry CORS headers); otherwise the pipeline does the same job itself."""

    def __init__(self, app: ASGIApp, owners: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.owners = owners or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            response = error_response(scope, exc, self.owners)
            if started:
                raise  # the response is under way: the server closes the connection
            await response(scope, receive, send)
