"""Turn an unhandled exception into a 500 problem with no internals in the body.

The full error goes to the log with the request id the client also receives, so an
operator can find it from a user's report.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from coderic_sdk import Problem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...observability import sentry
from ..problems import problem_response, render_problem
from .labels import route_labels

logger = logging.getLogger("coderic.errors")


class UnhandledErrorMiddleware:
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
        except Problem as problem:  # raised by plugin middleware, outside Starlette's handlers
            if started:
                raise
            await render_problem(scope, problem)(scope, receive, send)
        except Exception as exc:
            request_id = scope.get("state", {}).get("request_id", "")
            route, plugin = route_labels(scope, self.owners)
            logger.exception(
                "unhandled error in %s %s (request %s)", scope.get("method"), scope.get("path"), request_id,
                extra={"request_id": request_id, "route": route, "plugin": plugin},
            )
            sentry.capture(exc, request_id=request_id, plugin=plugin, route=route)
            if started:
                raise  # the response is under way: the server closes the connection
            response = problem_response(
                scope, 500, detail=f"An unexpected error occurred. Quote request id {request_id} when reporting it."
            )
            await response(scope, receive, send)
