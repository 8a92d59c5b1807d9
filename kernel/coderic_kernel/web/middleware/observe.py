"""Report every request once it is answered: to the metrics and to the access log."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from urllib.parse import unquote_plus

from starlette.types import Scope

from ...observability import logs
from ...observability.metrics import Metrics
from .labels import UNMATCHED

access_log = logging.getLogger("coderic.access")
SENSITIVE_QUERY_KEYS = ("token", "code", "state", "password", "secret", "key", "signature", "sig", "session")


class RequestObserver:
    """Reports each finished request to the metrics and the access log. Runs once per
    request, so it reads what it needs straight from the scope and builds nothing twice."""

    def __init__(self, metrics: Metrics | None, owners: Mapping[str, str], access_log: bool = True) -> None:
        self.http = metrics.http if metrics is not None else None
        self.owners = owners
        self.access_log = access_log

    def started(self) -> None:
        if self.http is not None:
            self.http.started()

    def finished(self, scope: Scope, status: int, elapsed: float) -> None:
        status = status or 500  # no response started: the server answers 500
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        plugin = self.owners.get(template, "kernel")
        method = scope["method"]
        if self.http is not None:
            self.http.finished()
            self.http.observe((method, template, str(status), plugin), elapsed)
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            _log(scope, method, template, plugin, status, elapsed)


def _log(scope: Scope, method: str, template: str, plugin: str, status: int, elapsed: float) -> None:
    state = scope.get("state") or {}
    path = logs.redact(scope["path"])  # user input: scrubbed once, for the path and the message
    request_id = state.get("request_id", "")
    duration_ms = round(elapsed * 1000, 3)
    query = scope.get("query_string")
    shown_query = redact_query(query.decode("latin-1")) if query else None
    user_id = state.get("user_id")
    sink = logs.fast_access_sink()
    if sink is not None and logs.access_format == "json" and user_id is None:
        # The server process's usual line, in one step: it is written once per request.
        sink.write_line(
            logs.access_json(time.time(), request_id, method, template, path, status, duration_ms, plugin, shown_query)
        )
        return
    fields: dict[str, object] = {
        "request_id": request_id, "method": method, "route": template, "path": path, "status": status,
        "duration_ms": duration_ms, "plugin": plugin,
    }
    if shown_query is not None:
        fields["query"] = shown_query
    if user_id is not None:
        fields["user_id"] = user_id
    message = f"{method} {path} {status}"
    if sink is not None:
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
