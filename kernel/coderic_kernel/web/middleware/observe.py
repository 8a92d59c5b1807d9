"""Report every request once it is answered: to the metrics and to the access log."""

from __future__ import annotations

import logging
import time
from logging import INFO
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from starlette.types import Scope

from ...observability import logs
from ...observability.metrics import FIRST_BUCKET, LATENCY_BUCKETS, Metrics, RequestKey
from .labels import UNMATCHED

access_log = logging.getLogger("coderic.access")
SENSITIVE_QUERY_KEYS = ("token", "code", "state", "password", "secret", "key", "signature", "sig", "session")
#: Enough for every route x method x status an application answers; past it (a client
#: inventing methods), requests are still reported, only without the shortcut.
MAX_KNOWN = 4096


class Known(NamedTuple):
    """What every request with one route, method and status shares, worked out once."""

    labels: RequestKey  # method, route template, status, plugin
    series: list[Any] | None  # its metrics series, when this process keeps them itself
    line: logs.AccessParts  # the constant pieces of its JSON access line


class RequestObserver:
    """Reports each finished request to the metrics and the access log. Runs once per
    request: what depends only on the route, method and status is looked up, not rebuilt."""

    def __init__(self, metrics: Metrics | None, owners: Mapping[str, str], access_log: bool = True) -> None:
        self.http = metrics.http if metrics is not None else None
        self.owners = owners
        self.access_log = access_log
        self.known: dict[tuple[str | None, str, int], Known] = {}  # by route template, method, status
        #: Called when a request starts (counts requests in flight).
        self.started = self.http.started if self.http is not None else _nothing

    def finished(self, scope: Scope, status: int, elapsed: float, request_id: str) -> None:
        try:
            template = scope["route"].path
        except (KeyError, AttributeError):  # no route matched (or one without a path)
            template = None
        key = (template, scope["method"], status or 500)  # no response started: the server answers 500
        known = self.known.get(key) or self._learn(key)
        labels, series, line = known
        if series is not None:  # metrics.record_request, written out: this runs for every request
            series[0] += elapsed
            series[1 if elapsed <= FIRST_BUCKET else 1 + bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        elif self.http is not None:
            self.http.observe(labels, elapsed)
        if not self.access_log or not access_log.isEnabledFor(INFO):
            return
        query = scope.get("query_string")
        shown_query = redact_query(query.decode("latin-1")) if query else None
        user_id = scope["state"].get("user_id")
        handlers = logging.root.handlers
        if len(handlers) == 1 and handlers[0] is logs.json_access_sink:
            # The server process's usual line, written straight to its handler.
            handlers[0].write_line(logs.access_json(line, request_id, scope["path"], elapsed, shown_query, user_id))
        else:
            _log(labels, request_id, scope["path"], elapsed, shown_query, user_id)

    def _learn(self, key: tuple[str | None, str, int]) -> Known:
        template, method, status = key
        template = template or UNMATCHED
        plugin = self.owners.get(template, "kernel")
        labels = (method, template, str(status), plugin)
        series = self.http.entry(labels) if self.http is not None else None
        known = Known(labels, series, logs.access_json_parts(method, template, status, plugin))
        if len(self.known) < MAX_KNOWN:
            self.known[key] = known
        return known


def _nothing() -> None:
    pass


def _log(labels: RequestKey, request_id: str, path: str, elapsed: float, query: str | None, user_id: object) -> None:
    """The access record where the JSON line cannot go straight to the kernel's handler: in
    text format, or when logging was configured by someone else (tests, an embedding app)."""
    method, template, status, plugin = labels
    path = logs.redact(path)  # user input: scrubbed once, for the path and the message
    fields: dict[str, object] = {
        "request_id": request_id, "method": method, "route": template, "path": path, "status": int(status),
        "duration_ms": round(elapsed * 1000, 3), "plugin": plugin,
    }
    if query is not None:
        fields["query"] = query
    if user_id is not None:
        fields["user_id"] = user_id
    message = f"{method} {path} {status}"
    sink = logs.fast_access_sink()
    if sink is not None:
        sink.write_line(logs.access_line(logs.access_format, time.time(), message, fields))
        return
    # A regular record, so logging's own handlers see it; makeRecord + handle skips
    # Logger.findCaller's stack walk.
    record = access_log.makeRecord(access_log.name, INFO, __file__, 0, message, (), None, extra=fields)
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
