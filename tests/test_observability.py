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
        headers={"X-Request-ID": "req-12345678", "Authorization": "Bearer very-secret"},
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
    from coderic_kernel.observability.logs import access_json, access_line

    hostile_path = '/api/v1/x/"quoted"\n2026-01-01T00:00:00.000Z INFO forged'
    fields = {
        "request_id": "abcdef012345", "method": "GET", "route": "/api/v1/x/{id}", "path": hostile_path,
        "status": 404, "duration_ms": 1.25, "plugin": "hello", "query": "page=2&token=[redacted]",
    }
    fast = access_json(1.7e9, "abcdef012345", "GET", "/api/v1/x/{id}", hostile_path, 404, 1.25, "hello",
                       "page=2&token=[redacted]")
    general = access_line("json", 1.7e9, f"GET {hostile_path} 404", fields)
    assert "\n" not in fast and json.loads(fast) == json.loads(general)
    assert json.loads(fast)["path"] == hostile_path


@pytest.mark.coderic(plugins=["hello"], config={"access_log": False})
async def test_the_access_log_can_be_switched_off(coderic_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="coderic.access")
    assert (await coderic_client.get("/api/v1/hello/greeting")).status_code == 200
    assert [r for r in caplog.records if r.name == "coderic.access"] == []
    text = (await coderic_client.get("/metrics")).text  # metrics still count the request
    assert 'route="/api/v1/hello/greeting"' in text
