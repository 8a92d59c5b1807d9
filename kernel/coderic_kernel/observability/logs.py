"""Structured logs: JSON lines in production, readable text in development.

Every record carries the UTC time, level, logger and the current request id. Values are
escaped so that user input with CR/LF cannot forge a line, and anything that looks like a
credential is redacted before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any, Literal

from ..web.middleware.request_id import current_request_id

#: Attributes every LogRecord has; anything else was passed as ``extra=`` and is a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message",  # uvicorn's copy of the message with ANSI colours
}
_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(password|passwd|secret|token|api_key|apikey|authorization)(\s*[=:]\s*)([^\s,;&\"']+)"), r"\1\2[redacted]"),
    (re.compile(r"(?i)(://[^/\s:@]+:)[^@\s/]+@"), r"\1[redacted]@"),
]
#: Fields the kernel fills itself with values that cannot hold a secret (the access log's
#: query string is redacted by key before it gets here); every other string is scrubbed.
TRUSTED_FIELDS = frozenset({"request_id", "method", "route", "status", "duration_ms", "plugin", "user_id", "query"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


#: One cheap search that every secret pattern would also match; most lines have none.
_MAYBE_SECRET = re.compile(r"(?i)bearer|basic|password|passwd|secret|token|api_?key|authorization|://[^/\s]*@")


def redact(text: str) -> str:
    # Every pattern needs '=', ':' or '@', or the word bearer/basic: most lines have none,
    # and these substring tests cost a fraction of one regex search.
    if "=" not in text and ":" not in text and "@" not in text:
        lowered = text.lower()
        if "bearer" not in lowered and "basic" not in lowered:
            return text
    if not _MAYBE_SECRET.search(text):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def escape_controls(text: str) -> str:
    """``\\n`` becomes the two characters backslash-n: one record is always one line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    attributes = record.__dict__
    fields = {key: attributes[key] for key in attributes.keys() - _STANDARD}
    request_id = fields.pop("request_id", None) or current_request_id()
    if request_id:
        fields = {"request_id": request_id, **fields}
    return fields


_second_cache: tuple[int, str] = (0, "")


def _timestamp(record: logging.LogRecord) -> str:
    return _format_time(record.created)


def _format_time(created: float) -> str:
    """ISO 8601 UTC with milliseconds; the date-and-time part is formatted once per second."""
    global _second_cache
    whole = int(created)
    if _second_cache[0] != whole:
        _second_cache = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second_cache[1]}.{int((created - whole) * 1000):03d}Z"


_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  # the C escaper json.dumps uses
ACCESS_LOGGER = "coderic.access"
_access_sink: BufferedStreamHandler | None = None
access_format: Literal["json", "text"] = "json"


def access_line(fmt: Literal["json", "text"], created: float, message: str, fields: dict[str, Any]) -> str:
    """One access-log line, assembled directly: written once per request, it must be cheap.

    ``fields`` are the kernel's own (method, route, path, status, duration_ms, plugin,
    request_id, optional query and user_id). The caller has already scrubbed the path (user
    input) and the query; JSON escaping or control-character escaping keeps each one line.
    """
    stamp = _format_time(created)
    if fmt == "text":
        rest = " ".join(
            f"{key}={escape_controls(value) if key in ('path', 'query') else value}" for key, value in fields.items()
        )
        return f"{stamp} INFO    {ACCESS_LOGGER} {escape_controls(message)} {rest}"
    # The fields every access record has, in one f-string; then the optional ones.
    line = (
        f'{{"time":"{stamp}","level":"INFO","logger":"{ACCESS_LOGGER}","message":{_json_string(message)},'
        f'"request_id":{_json_string(fields["request_id"])},"method":{_json_string(fields["method"])},'
        f'"route":{_json_string(fields["route"])},"path":{_json_string(fields["path"])},'
        f'"status":{int(fields["status"])},"duration_ms":{float(fields["duration_ms"])!r},'
        f'"plugin":{_json_string(fields["plugin"])}'
    )
    if "query" in fields:
        line += f',"query":{_json_string(fields["query"])}'
    if "user_id" in fields:
        line += f',"user_id":{json.dumps(fields["user_id"], default=str)}'
    return line + "}"


def access_json(
    created: float, request_id: str, method: str, route: str, path: str, status: int, duration_ms: float,
    plugin: str, query: str | None,
) -> str:
    """The JSON access line without a user: the one written for most requests, so built in
    one f-string. ``request_id`` (checked on the way in), ``method`` (an HTTP token) and
    ``plugin`` (a checked name) need no escaping; the route and path are escaped."""
    stamp = _format_time(created)
    line = (
        f'{{"time":"{stamp}","level":"INFO","logger":"{ACCESS_LOGGER}","message":{_json_string(f"{method} {path} {status}")},'
        f'"request_id":"{request_id}","method":"{method}","route":{_json_string(route)},"path":{_json_string(path)},'
        f'"status":{status},"duration_ms":{duration_ms!r},"plugin":"{plugin}"'
    )
    if query is not None:
        return f'{line},"query":{_json_string(query)}}}'
    return line + "}"


def fast_access_sink() -> BufferedStreamHandler | None:
    """The handler access lines go to directly when the kernel configured logging itself
    (and nobody has replaced its handler since)."""
    handlers = logging.root.handlers
    if len(handlers) == 1 and handlers[0] is _access_sink:
        return _access_sink
    return None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in _fields(record).items():
            entry[key] = redact(value) if isinstance(value, str) and key not in TRUSTED_FIELDS else value
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), f"{record.levelname:<7}", record.name, escape_controls(redact(record.getMessage()))]
        parts += [
            f"{key}={escape_controls(str(value) if key in TRUSTED_FIELDS else redact(str(value)))}"
            for key, value in _fields(record).items()
        ]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))  # development only: readable traceback
        return line


class BufferedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes lines in batches: one system call per request would cost more than the request.

    Buffered lines are written when the buffer passes ``capacity`` bytes, when the oldest is
    ``interval`` seconds old (a timer thread checks), at once for warnings and errors, and
    when logging shuts down (at exit).
    """

    def __init__(self, stream: Any = None, capacity: int = 64 * 1024, interval: float = 0.2) -> None:
        super().__init__(stream)
        self.capacity = capacity
        self.interval = interval
        self._pending: list[str] = []
        self._size = 0
        self._timer = threading.Thread(target=self._flush_periodically, name="coderic-log-flush", daemon=True)
        self._timer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line, urgent=record.levelno >= logging.WARNING)

    def write_line(self, line: str, *, urgent: bool = False) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line + self.terminator)
            self._size += len(line) + 1
            urgent = urgent or self._size >= self.capacity
        if urgent:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                self.stream.write("".join(self._pending))
                self._pending.clear()
                self._size = 0
            if hasattr(self.stream, "flush"):
                self.stream.flush()

    def _flush_periodically(self) -> None:
        while True:
            time.sleep(self.interval)
            try:
                self.flush()
            except Exception:  # a closed stream at interpreter exit
                return


def configure_logging(level: str, fmt: Literal["json", "text"]) -> None:
    """Send every log record, uvicorn's included, through one handler on stderr."""
    # Our formatters use neither thread nor process names; not collecting them makes every
    # LogRecord markedly cheaper (this process's logging is ours to configure).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _access_sink, access_format
    handler = BufferedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _access_sink, access_format = handler, fmt
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # the kernel writes its own access log
