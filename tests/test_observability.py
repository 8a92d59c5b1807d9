"""Metrics, access logs and error tracking (issue 3)."""

from __future__ import annotations

import json
import logging

import pytest
from coderic_kernel.observability.logs import JsonFormatter, TextFormatter, redact

HELLO = pytest.mark.coderic(plugins=["hello"])


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one Prometheus sample in an exposition text, or None."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@HELLO
async def test_request_metrics_are_labelled_by_route_template(coderic_client) -> None:
    for _ in range(3):
        await coderic_client.get("/api/v1/hello/greetings/41")
    await coderic_client.get("/api/v1/hello/greetings/42")
    await coderic_client.get("/not/a/route/123")
    text = (await coderic_client.get("/metrics")).text
    labels = {"method": "GET", "plugin": "hello", "route": "/api/v1/hello/greetings/{greeting_id}", "status": "404"}
    assert sample(text, "coderic_http_requests_total", **labels) == 4
    assert sample(text, "coderic_http_request_duration_seconds_count", **labels) == 4
    assert "/api/v1/hello/greetings/41" not in text  # never a raw path
    unmatched = {"method": "GET", "plugin": "kernel", "route": "<unmatched>", "status": "404"}
    assert sample(text, "coderic_http_requests_total", **unmatched) == 1


@HELLO
async def test_metrics_describe_build_plugins_hooks_and_in_flight(coderic_client) -> None:
    text = (await coderic_client.get("/metrics")).text
    assert sample(text, "coderic_plugin_info", builtin="false", plugin="hello", version="0.1.0") == 1
    assert 'coderic_build_info{kernel_version="' in text
    assert sample(text, "coderic_hook_calls_total", hook="register_routes", plugin="hello") == 1
    assert sample(text, "coderic_http_requests_in_flight") == 1  # the scrape itself


@pytest.mark.coderic(config={"metrics_token": "s3cret-metrics"})
async def test_metrics_token_is_required_when_configured(coderic_client) -> None:
    missing = await coderic_client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = await coderic_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = await coderic_client.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics"})
    assert right.status_code == 200
    assert right.headers["content-type"].startswith("text/plain")


@pytest.mark.coderic(config={"metrics_enabled": False})
async def test_metrics_can_be_switched_off(coderic_client) -> None:
    assert (await coderic_client.get("/metrics")).status_code == 404


@HELLO
async def test_access_log_carries_request_id_and_no_secrets(coderic_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="coderic.access")
    response = await coderic_client.get(
        "/api/v1/hello/greeting?token=abc123&page=2",
        headers={"X-Request-ID": "req-12345678", "Cookie": "__Host-coderic_session=very-secret"},
    )
    assert response.status_code == 200
    [record] = [r for r in caplog.records if r.name == "coderic.access"]
    assert record.request_id == "req-12345678"
    assert record.route == "/api/v1/hello/greeting"
    assert record.status == 200 and record.plugin == "hello" and record.duration_ms >= 0
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["request_id"] == "req-12345678"
    assert entry["time"].endswith("Z")
    assert "abc123" not in line and "very-secret" not in line
    assert entry["query"] == "token=[redacted]&page=2"


@HELLO
async def test_unhandled_error_is_logged_with_route_plugin_and_request_id(coderic_client, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="coderic.errors")
    response = await coderic_client.get("/api/v1/hello/boom", headers={"X-Request-ID": "trace-abcdef12"})
    assert response.status_code == 500
    [record] = [r for r in caplog.records if r.name == "coderic.errors"]
    assert (record.request_id, record.plugin, record.route) == ("trace-abcdef12", "hello", "/api/v1/hello/boom")
    assert record.exc_info is not None


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("coderic.test", logging.INFO, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_user_input_cannot_forge_a_log_line() -> None:
    hostile = "/x\r\n2026-01-01T00:00:00.000Z INFO coderic.access GET /admin 200"
    record = _record("GET %s", path=hostile)
    record.args = (hostile,)
    for formatter in (TextFormatter(), JsonFormatter()):
        line = formatter.format(record)
        assert "\n" not in line and "\r" not in line
    assert json.loads(JsonFormatter().format(record))["path"] == hostile


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("login with password=hunter2hunter2", "hunter2hunter2"),
        ("connect postgresql://app:pa55word@db/coderic", "pa55word"),
        ("token: tok_live_123", "tok_live_123"),
    ],
)
def test_secrets_are_redacted_from_log_messages(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert secret not in TextFormatter().format(_record(text))


def test_the_fast_access_line_is_the_general_one_and_stays_one_line() -> None:
    from coderic_kernel.observability.logs import access_json, access_json_parts, access_line

    hostile_path = '/api/v1/x/token=abc123/"quoted"\n2026-01-01T00:00:00.000Z INFO forged'
    fields = {
        "request_id": "abcdef012345", "method": "GET", "route": "/api/v1/x/{id}", "path": redact(hostile_path),
        "status": 404, "duration_ms": 1.25, "plugin": "hello", "query": "page=2&token=[redacted]", "user_id": 7,
    }
    parts = access_json_parts("GET", "/api/v1/x/{id}", 404, "hello")
    fast = access_json(parts, "abcdef012345", hostile_path, 0.00125, "page=2&token=[redacted]", 7, 1_700_000_000_042)
    general = access_line("json", 1.7e9 + 0.0429, f"GET {redact(hostile_path)} 404", fields)
    assert "\n" not in fast and "abc123" not in fast
    assert json.loads(fast) == json.loads(general)
    assert json.loads(fast)["time"] == "2023-11-14T22:13:20.042Z"
    assert '"duration_ms":1.250,' in fast
    # A path equal to its route is the route's own text; a longer duration has more digits.
    route = json.loads(access_json(parts, "abcdef012345", "/api/v1/x/{id}", 2.5))
    assert "query" not in route and "user_id" not in route
    assert (route["path"], route["message"], route["duration_ms"]) == ("/api/v1/x/{id}", "GET /api/v1/x/{id} 404", 2500.0)
    assert route.keys() == json.loads(general).keys() - {"query", "user_id"}


@HELLO
async def test_the_server_writes_access_lines_straight_to_its_handler(coderic_client) -> None:
    import io

    from coderic_kernel.observability import logs

    stream = io.StringIO()
    handler = logs.BufferedStreamHandler(stream, interval=3600)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logs.json_access_sink
    root.handlers[:], logs.json_access_sink = [handler], handler  # as configure_logging("INFO", "json") does
    root.setLevel(logging.INFO)
    try:
        for _ in range(2):
            response = await coderic_client.get(
                "/api/v1/hello/greeting?password=hunter2&page=1", headers={"Authorization": "Bearer very-secret"}
            )
        assert stream.getvalue() == ""  # batched
        handler.flush()
    finally:
        root.handlers[:], level, logs.json_access_sink = saved
        root.setLevel(level)
    assert stream.getvalue().endswith("\n")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [entry for entry in lines if entry["logger"] == "coderic.access"]
    assert len(access) == 2
    entry, status = access[-1], response.status_code  # 401: the bearer token is no session
    assert entry["request_id"] == response.headers["x-request-id"]
    assert entry["message"] == f"GET /api/v1/hello/greeting {status}"
    assert (entry["method"], entry["route"], entry["path"]) == ("GET", "/api/v1/hello/greeting", "/api/v1/hello/greeting")
    assert (entry["status"], entry["plugin"], entry["level"]) == (status, "hello", "INFO")
    assert entry["query"] == "password=[redacted]&page=1" and entry["duration_ms"] > 0
    assert "hunter2" not in stream.getvalue() and "very-secret" not in stream.getvalue()


def test_uvicorn_keeps_its_records_but_writes_no_access_line_of_its_own(keep_logging: None) -> None:
    from coderic_kernel.observability import logs

    logs.configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    # uvicorn formats its access line for every request when this says True, even with the
    # logger disabled: the kernel writes its own line, so uvicorn must find no handler at all.
    assert not logging.getLogger("uvicorn.access").hasHandlers()
    assert logging.getLogger("uvicorn.error").hasHandlers()  # its warnings and errors reach the kernel's handler
    assert isinstance(handler, logs.BufferedStreamHandler) and handler is logs.json_access_sink


def test_buffered_lines_are_written_in_batches_and_warnings_at_once() -> None:
    import io

    from coderic_kernel.observability.logs import BufferedStreamHandler

    stream = io.StringIO()
    handler = BufferedStreamHandler(stream, capacity=3, interval=3600)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.write_line("one")
    handler.write_line("two")
    assert stream.getvalue() == ""
    handler.write_line("three")
    assert stream.getvalue() == "one\ntwo\nthree\n"
    handler.write_line("four")
    handler.emit(logging.LogRecord("x", logging.WARNING, __file__, 1, "careful", (), None))
    assert stream.getvalue().endswith("three\nfour\ncareful\n")
    handler.write_line("five")
    handler.flush()
    assert stream.getvalue().endswith("careful\nfive\n")


@pytest.mark.coderic(plugins=["hello"], config={"access_log": False})
async def test_the_access_log_can_be_switched_off(coderic_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="coderic.access")
    assert (await coderic_client.get("/api/v1/hello/greeting")).status_code == 200
    assert [r for r in caplog.records if r.name == "coderic.access"] == []
    text = (await coderic_client.get("/metrics")).text  # metrics still count the request
    assert 'route="/api/v1/hello/greeting"' in text
