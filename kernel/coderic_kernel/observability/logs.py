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
from math import floor
from time import time_ns
from typing import Any, Literal, NamedTuple

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


#: ".000" to ".999": the fractional part of times and durations, looked up instead of formatted.
_THOUSANDTHS = [f".{n:03d}" for n in range(1000)]
_NUMBERS = [str(n) for n in range(1000)]
_second, _second_text = -1, ""  # the last second formatted, and its text: many lines share it


def _timestamp(record: logging.LogRecord) -> str:
    return _format_time(record.created)


def _format_time(created: float) -> str:
    """ISO 8601 UTC with milliseconds."""
    millisecond = floor(created * 1000)
    second = millisecond // 1000
    return f"{_second_text if second == _second else _format_second(second)}{_THOUSANDTHS[millisecond - second * 1000]}Z"


def _format_second(second: int) -> str:
    """The date and time of day of ``second``, formatted once per second."""
    global _second, _second_text
    _second, _second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return _second_text


_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]  # the C escaper json.dumps uses
ACCESS_LOGGER = "coderic.access"
_access_sink: BufferedStreamHandler | None = None
#: The handler JSON access lines go to directly (see ``access_json``), when the kernel
#: configured logging with the JSON format.
json_access_sink: BufferedStreamHandler | None = None
access_format: Literal["json", "text"] = "json"


def access_line(fmt: Literal["json", "text"], created: float, message: str, fields: dict[str, Any]) -> str:
    """One access-log line, assembled directly, from the fields of a record.

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
    line = (
        f'{{"time":"{stamp}","level":"INFO","logger":"{ACCESS_LOGGER}","message":{_json_string(message)},'
        f'"request_id":{_json_string(fields["request_id"])},"method":{_json_string(fields["method"])},'
        f'"route":{_json_string(fields["route"])},"path":{_json_string(fields["path"])},'
        f'"status":{int(fields["status"])},"duration_ms":{float(fields["duration_ms"])!r},'
        f'"plugin":{_json_string(fields["plugin"])}'
    )
    return line + _optional_access_fields(fields.get("query"), fields.get("user_id")) + "}"


def _optional_access_fields(query: str | None, user_id: object) -> str:
    text = "" if query is None else f',"query":{_json_string(query)}'
    if user_id is not None:
        text += f',"user_id":{json.dumps(user_id, default=str)}'
    return text


class AccessParts(NamedTuple):
    """The pieces of the JSON access line that every request with one method, route
    template, status and plugin shares; ``access_json`` puts the rest between them."""

    route: str  # the template: a path equal to it is the developer's text, not user input
    # Between the time and the request id, and between it and the duration, when the path
    # is the route: the whole line is then these two and four values.
    route_to_request_id: str
    route_to_duration: str
    # The same around a path of its own (it appears twice: in the message and as "path").
    to_path: str
    path_to_request_id: str
    request_id_to_path: str
    path_to_duration: str
    end: str  # after the duration: the plugin and the closing brace


def access_json_parts(method: str, route: str, status: int, plugin: str) -> AccessParts:
    method_json, route_json = _json_string(method), _json_string(route)
    to_path = f'Z","level":"INFO","logger":"{ACCESS_LOGGER}","message":"{method_json[1:-1]} '
    path_to_request_id = f' {status}","request_id":"'
    request_id_to_path = f'","method":{method_json},"route":{route_json},"path":"'
    path_to_duration = f'","status":{status},"duration_ms":'
    return AccessParts(
        route,
        f"{to_path}{route_json[1:-1]}{path_to_request_id}",
        f"{request_id_to_path}{route_json[1:-1]}{path_to_duration}",
        to_path, path_to_request_id, request_id_to_path, path_to_duration,
        f',"plugin":{_json_string(plugin)}}}',
    )


def access_json(
    parts: AccessParts, request_id: str, path: str, seconds: float, query: str | None = None, user_id: object = None,
    millisecond: int | None = None,
) -> str:
    """The JSON access line of one request, at ``millisecond`` (since the epoch; now by
    default). The line every request writes, so it is joined from ``parts`` and what varies:
    the time, the request id (checked on the way in: it needs no escaping), the path (user
    input, unless it is the route itself: redacted and escaped), the duration, and the query
    (already redacted by key) and user id when there are any. The fields of ``access_line``,
    with ``duration_ms`` always written with three decimals."""
    route, route_to_request_id, route_to_duration, to_path, path_to_request_id, request_id_to_path, path_to_duration, end = parts
    if millisecond is None:
        millisecond = time_ns() // 1_000_000
    second = millisecond // 1000
    day_and_time = _second_text if second == _second else _format_second(second)
    time_fraction = _THOUSANDTHS[millisecond - second * 1000]
    micros = floor(seconds * 1e6 + 0.5)
    millis = micros // 1000
    duration = _NUMBERS[millis] if millis < 1000 else millis
    duration_fraction = _THOUSANDTHS[micros - millis * 1000]
    if path == route:
        line = (
            f'{{"time":"{day_and_time}{time_fraction}{route_to_request_id}{request_id}{route_to_duration}'
            f"{duration}{duration_fraction}{end}"
        )
    else:
        path = _json_string(redact(path))[1:-1]
        line = (
            f'{{"time":"{day_and_time}{time_fraction}{to_path}{path}{path_to_request_id}{request_id}'
            f"{request_id_to_path}{path}{path_to_duration}{duration}{duration_fraction}{end}"
        )
    if query is None and user_id is None:
        return line
    return f"{line[:-1]}{_optional_access_fields(query, user_id)}}}"


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

    Waiting lines are written when ``capacity`` of them are waiting, when a timer thread
    finds some (every ``interval`` seconds), at once for warnings and errors, and when
    logging shuts down (at exit). A process killed without warning (SIGKILL, a crash of the
    interpreter) loses what was waiting: at most ``capacity`` lines, at most ``interval``
    seconds' worth.
    """

    def __init__(self, stream: Any = None, capacity: int = 256, interval: float = 0.2) -> None:
        super().__init__(stream)
        self.capacity = capacity
        self.interval = interval
        self._pending: list[str] = []
        self._timer = threading.Thread(target=self._flush_periodically, name="coderic-log-flush", daemon=True)
        self._timer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write_line(line)
        if record.levelno >= logging.WARNING:
            self.flush()

    def write_line(self, line: str) -> None:
        # No lock: appending to a list is atomic, and flush removes only the lines it takes.
        pending = self._pending
        pending.append(line)
        if len(pending) >= self.capacity:
            self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            pending = self._pending
            if pending:
                taken = pending[:]
                del pending[: len(taken)]  # lines appended meanwhile stay for the next flush
                taken.append("")  # the terminator of the last line
                self.stream.write(self.terminator.join(taken))
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
    global _access_sink, json_access_sink, access_format
    handler = BufferedStreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    _access_sink, access_format = handler, fmt
    json_access_sink = handler if fmt == "json" else None
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # The kernel writes its own access log. uvicorn formats its access line for every request
    # when its logger "has handlers" (its own or, propagating, the root's), even a disabled
    # one: with none and no propagation it does not (11k instructions per request).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
