"""Report every request once it is answered: to the metrics and to the access log."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import unquote_plus

from starlette.types import Scope

from ...observability import logs
from ...observability.metrics import Metrics
from .labels import route_labels

access_log = logging.getLogger("coderic.access")
SENSITIVE_QUERY_KEYS = ("token", "code", "state", "password", "secret", "key", "signature", "sig", "session")


class RequestObserver:
    """Reports each finished request to the metrics and the access log."""

    def __init__(self, metrics: Metrics | None, owners: Mapping[str, str]) -> None:
        self.metrics = metrics
        self.owners = owners

    def started(self) -> None:
        if self.metrics is not None:
            self.metrics.http.started()

    def finished(self, scope: Scope, status: int, elapsed: float) -> None:
        template, plugin = route_labels(scope, self.owners)
        if self.metrics is not None:
            self.metrics.http.finished()
            self.metrics.observe_request(scope["method"], template, status or 500, plugin, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            _log(scope, template, plugin, status or 500, elapsed)


def _log(scope: Scope, template: str, plugin: str, status: int, elapsed: float) -> None:
    state = scope.get("state", {})
    path = logs.redact(scope["path"])  # user input: scrubbed once, for the path and the message
    fields = {
        "request_id": state.get("request_id", ""),
        "method": scope["method"],
        "route": template,
        "path": path,
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
    message = f"{scope['method']} {path} {status}"
    sink = logs.fast_access_sink()
    if sink is not None:  # the server process: the line goes straight to the log's buffer
        sink.write_line(logs.access_line(logs.access_format, time.time(), message, fields))
        return
    # Elsewhere (tests, an embedding app) a regular record, so logging's own handlers see it;
    # makeRecord + handle skips Logger.findCaller's stack walk.
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, message, (), None, extra=fields)
    access_log.handle(record)


def redact_query(query: str) -> str:
    """Keep the shape of a query string for debugging; hide values that may be secrets."""
    parts = []
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if sep and any(word in unquote_plus(key).lower() for word in SENSITIVE_QUERY_KEYS):
            value = "[redacted]"
        parts.append(f"{key}{sep}{value}")
    return "&".join(parts)
