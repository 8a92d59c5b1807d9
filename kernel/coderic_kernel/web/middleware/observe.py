"""Measure every request once and report it twice: to metrics and to the access log."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import unquote_plus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...observability.metrics import Metrics
from .labels import route_labels

access_log = logging.getLogger("coderic.access")
SENSITIVE_QUERY_KEYS = ("token", "code", "state", "password", "secret", "key", "signature", "sig", "session")


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics | None, owners: Mapping[str, str]) -> None:
        self.app = app
        self.metrics = metrics
        self.owners = owners

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.metrics
        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observing_send)
        finally:
            elapsed = time.perf_counter() - started
            template, plugin = route_labels(scope, self.owners)
            if metrics is not None:
                metrics.in_flight.dec()
                metrics.observe_request(scope["method"], template, status, plugin, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _log(scope, template, plugin, status, elapsed)


def _log(scope: Scope, template: str, plugin: str, status: int, elapsed: float) -> None:
    state = scope.get("state", {})
    fields = {
        "request_id": state.get("request_id", ""),
        "method": scope["method"],
        "route": template,
        "path": scope["path"],
        "status": status,
        "duration_ms": round(elapsed * 1000, 3),
        "plugin": plugin,
    }
    query = scope.get("query_string", b"")
    if query:
        fields["query"] = redact_query(query.decode("latin-1"))
    user_id = state.get("user_id")
    if user_id is not None:
        fields["user_id"] = user_id
    access_log.info("%s %s %s", scope["method"], scope["path"], status, extra=fields)


def redact_query(query: str) -> str:
    """Keep the shape of a query string for debugging; hide values that may be secrets."""
    parts = []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and any(word in unquote_plus(key).lower() for word in SENSITIVE_QUERY_KEYS):
            value = "[redacted]"
        parts.append(f"{key}{sep}{value}")
    return "&".join(parts)
