"""The combined API as a client sees it: problem+json errors, validation, limits, request ids.

Every test starts a kernel with the hello test plugin through the SDK fixtures, once per
database named by ``--coderic-db`` / ``CODERIC_TEST_DATABASES``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from http import HTTPStatus
from importlib.metadata import metadata, version
from typing import Any

import pytest

MAX_BODY = 1024
GREETINGS = "/api/v1/hello/greetings"
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "instance", "request_id"}

pytestmark = pytest.mark.coderic(
    plugins=["hello"], config={"plugins.hello.greeting": "hola", "max_body_bytes": MAX_BODY}
)


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem of ``status`` carrying the response's request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert PROBLEM_MEMBERS <= body.keys()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] == HTTPStatus(status).phrase
    assert body["instance"] == response.request.url.path
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def field_errors(body: dict[str, Any]) -> dict[str, str]:
    """``{field: type}`` of a problem's ``errors``; every error states a reason."""
    assert all(error["reason"] for error in body["errors"])
    return {error["field"]: error["type"] for error in body["errors"]}


def json_post(client: Any, content: Any, **headers: str) -> Any:
    return client.post(GREETINGS, content=content, headers={"content-type": "application/json", **headers})


def padded_body(size: int) -> bytes:
    """A valid greeting of exactly ``size`` bytes (JSON whitespace pads it)."""
    start, end = b'{"text": "hi"', b"}"
    return start + b" " * (size - len(start) - len(end)) + end


async def in_chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    """A body streamed without Content-Length."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def create(client: Any, text: str, language: str = "en") -> dict[str, Any]:
    response = await client.post(GREETINGS, json={"text": text, "language": language})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- not found, wrong method ---------------------------------------------------------


async def test_unknown_paths_are_404_problems(coderic_client: Any) -> None:
    for path in ["/nope", "/api/v1/nope", "/api/v1/hello/nope", "/api/v1/hello/greetings/1/x"]:
        body = assert_problem(await coderic_client.get(path), 404)
        assert path in body["detail"]


async def test_not_found_raised_by_a_handler_is_a_404_problem(coderic_client: Any) -> None:
    body = assert_problem(await coderic_client.get(f"{GREETINGS}/999"), 404)
    assert body["detail"] == "Greeting 999 does not exist."


WRONG_METHODS = [
    ("DELETE", GREETINGS, {"GET", "HEAD", "POST"}),
    ("PATCH", f"{GREETINGS}/1", {"GET", "HEAD", "DELETE"}),
    ("POST", "/api/v1/hello/greeting", {"GET", "HEAD"}),
    ("POST", "/api/v1/plugins", {"GET", "HEAD"}),
    ("PUT", "/healthz", {"GET", "HEAD"}),
]


async def test_a_wrong_method_is_a_405_problem_allowing_every_method_of_the_path(coderic_client: Any) -> None:
    for method, path, allowed in WRONG_METHODS:
        response = await coderic_client.request(method, path)
        body = assert_problem(response, 405)
        assert {m.strip() for m in response.headers["allow"].split(",")} == allowed, (method, path)
        assert method in body["detail"]


# --- request bodies ------------------------------------------------------------------


async def test_a_body_over_the_limit_by_content_length_is_a_413_problem(coderic_client: Any) -> None:
    body = assert_problem(await json_post(coderic_client, padded_body(MAX_BODY + 1)), 413)
    assert str(MAX_BODY) in body["detail"]


async def test_a_declared_content_length_over_the_limit_is_refused_before_reading(coderic_client: Any) -> None:
    # The body itself is small and valid: only the declared length can refuse it.
    response = await json_post(coderic_client, b'{"text": "hi"}', **{"content-length": str(MAX_BODY * 10)})
    assert_problem(response, 413)


async def test_a_streamed_body_over_the_limit_is_a_413_problem(coderic_client: Any) -> None:
    response = await json_post(coderic_client, in_chunks(padded_body(MAX_BODY + 1)))
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


async def test_a_body_exactly_at_the_limit_is_accepted(coderic_client: Any) -> None:
    data = padded_body(MAX_BODY)
    for content in (data, in_chunks(data)):
        response = await json_post(coderic_client, content)
        assert response.status_code == 201, response.text


async def test_a_body_that_is_not_json_is_a_415_problem(coderic_client: Any) -> None:
    for content_type in ["text/plain", "application/x-www-form-urlencoded", None]:
        headers = {"content-type": content_type} if content_type else {}
        response = await coderic_client.post(GREETINGS, content=b'{"text": "hi"}', headers=headers)
        assert_problem(response, 415)


async def test_a_json_subtype_body_is_accepted(coderic_client: Any) -> None:
    response = await json_post(coderic_client, b'{"text": "hi"}', **{"content-type": "application/merge-patch+json"})
    assert response.status_code == 201, response.text


async def test_malformed_json_is_a_400_problem(coderic_client: Any) -> None:
    for content in [b'{"text": ', b"{'text': 'hi'}", b"\xff\xfe"]:
        body = assert_problem(await json_post(coderic_client, content), 400)
        assert field_errors(body) == {"body": "json_invalid"}, content


INVALID_BODIES = [
    ({}, {"body.text": "missing"}),
    ({"text": ""}, {"body.text": "string_too_short"}),
    ({"text": 5}, {"body.text": "string_type"}),
    (
        {"text": "x" * 201, "language": "ENG", "colour": "red"},
        {"body.text": "string_too_long", "body.language": "string_pattern_mismatch", "body.colour": "extra_forbidden"},
    ),
]


async def test_an_invalid_body_is_a_422_problem_listing_every_field(coderic_client: Any) -> None:
    for payload, expected in INVALID_BODIES:
        body = assert_problem(await coderic_client.post(GREETINGS, json=payload), 422)
        assert field_errors(body) == expected, payload


async def test_an_unknown_field_is_refused_as_unknown_field(coderic_client: Any) -> None:
    body = assert_problem(await coderic_client.post(GREETINGS, json={"text": "hi", "id": 7}), 422)
    assert body["errors"] == [{"field": "body.id", "reason": "unknown field", "type": "extra_forbidden"}]


async def test_an_empty_body_is_a_422_problem(coderic_client: Any) -> None:
    body = assert_problem(await json_post(coderic_client, b"  "), 422)
    assert field_errors(body) == {"body": "missing"}


async def test_an_invalid_request_never_reaches_the_handler(coderic_client: Any) -> None:
    await coderic_client.post(GREETINGS, json={"text": "hi", "language": "ENG"})
    await json_post(coderic_client, b'{"text": "hi"')
    await coderic_client.post(GREETINGS, content=b'{"text": "hi"}', headers={"content-type": "text/plain"})
    response = await coderic_client.get(GREETINGS)
    assert response.json() == {"greetings": []}


async def test_an_invalid_query_parameter_is_a_422_problem(coderic_client: Any) -> None:
    for query, expected in [("?limit=abc", "int_parsing"), ("?limit=0", "greater_than_equal")]:
        body = assert_problem(await coderic_client.get(GREETINGS + query), 422)
        assert field_errors(body) == {"query.limit": expected}


async def test_an_invalid_path_parameter_is_a_422_problem(coderic_client: Any) -> None:
    body = assert_problem(await coderic_client.get(f"{GREETINGS}/abc"), 422)
    assert field_errors(body) == {"path.greeting_id": "int_parsing"}


# --- unhandled errors ----------------------------------------------------------------


async def test_an_unhandled_error_is_a_500_problem_without_internals(coderic_client: Any) -> None:
    response = await coderic_client.get("/api/v1/hello/boom")
    body = assert_problem(response, 500)
    for leak in ("Traceback", "RuntimeError", "secret", "/etc/passwd", "SELECT", "users", ".py", "coderic_hello"):
        assert leak not in response.text
    assert body["request_id"] in body["detail"]


async def test_an_unhandled_error_is_logged_in_full_with_the_request_id(
    coderic_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="coderic.errors"):
        response = await coderic_client.get("/api/v1/hello/boom", headers={"x-request-id": "report-2026-0001"})
    assert response.headers["x-request-id"] == "report-2026-0001"
    assert response.json()["request_id"] == "report-2026-0001"
    [record] = [r for r in caplog.records if r.name == "coderic.errors"]
    assert record.levelno == logging.ERROR
    assert record.request_id == "report-2026-0001"  # type: ignore[attr-defined]
    assert "report-2026-0001" in record.getMessage()
    assert "/api/v1/hello/boom" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "SELECT * FROM users" in str(record.exc_info[1])


# --- request ids ---------------------------------------------------------------------


async def test_a_well_formed_request_id_is_echoed(coderic_client: Any) -> None:
    for incoming in ["abcdefgh", "req-2026.11.28:42_X", "a" * 128]:
        ok = await coderic_client.get("/api/v1/hello/greeting", headers={"x-request-id": incoming})
        assert ok.headers["x-request-id"] == incoming
        failed = await coderic_client.get("/nope", headers={"x-request-id": incoming})
        assert assert_problem(failed, 404)["request_id"] == incoming


MALFORMED_IDS = ["short", "abc def ghi", "abcdefgh\n", "\nabcdefgh", "abcd\nefgh", "abcdefgh/../x", "a" * 129, ""]


async def test_a_malformed_request_id_is_replaced_by_a_generated_one(coderic_client: Any) -> None:
    for incoming in MALFORMED_IDS:
        response = await coderic_client.get("/api/v1/hello/greeting", headers={"x-request-id": incoming})
        assert response.status_code == 200
        generated = response.headers["x-request-id"]
        assert generated != incoming
        assert WELL_FORMED_ID.fullmatch(generated), generated


async def test_every_response_gets_its_own_request_id(coderic_client: Any) -> None:
    responses = [
        await coderic_client.get("/api/v1/hello/greeting"),
        await coderic_client.get("/healthz"),
        await coderic_client.get("/nope"),
        await coderic_client.post(GREETINGS, json={}),
        await coderic_client.get("/api/v1/hello/boom"),
    ]
    ids = [r.headers.get_list("x-request-id") for r in responses]
    assert all(len(found) == 1 and WELL_FORMED_ID.fullmatch(found[0]) for found in ids), ids
    assert len({found[0] for found in ids}) == len(responses)


# --- success responses ---------------------------------------------------------------


async def test_plugin_settings_reach_the_handler(coderic_client: Any) -> None:
    response = await coderic_client.get("/api/v1/hello/greeting")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"greeting": "hola"}


async def test_create_is_201_with_the_stored_resource(coderic_client: Any) -> None:
    created = await create(coderic_client, "hi")
    assert created["text"] == "hi"
    assert created["language"] == "en"
    assert created["author"] is None
    fetched = await coderic_client.get(f"{GREETINGS}/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_delete_is_204_with_an_empty_body(coderic_client: Any) -> None:
    created = await create(coderic_client, "bye")
    response = await coderic_client.delete(f"{GREETINGS}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert_problem(await coderic_client.get(f"{GREETINGS}/{created['id']}"), 404)


async def test_a_multi_valued_query_parameter_keeps_every_value(coderic_client: Any) -> None:
    for text, language in [("hola", "es"), ("hello", "en"), ("salut", "fr")]:
        await create(coderic_client, text, language)
    both = await coderic_client.get(GREETINGS, params=[("language", "es"), ("language", "en")])
    assert both.status_code == 200, both.text
    assert [g["language"] for g in both.json()["greetings"]] == ["es", "en"]
    one = await coderic_client.get(f"{GREETINGS}?language=fr&limit=5")
    assert [g["text"] for g in one.json()["greetings"]] == ["salut"]


async def test_the_plugin_list_names_the_builtin_kernel_and_enabled_plugins(coderic_client: Any) -> None:
    response = await coderic_client.get("/api/v1/plugins")
    assert response.status_code == 200
    plugins = {p["name"]: p for p in response.json()["plugins"]}
    assert list(plugins) == ["kernel", "email", "auth", "files", "notifications", "search", "hello"]
    kernel, hello = plugins["kernel"], plugins["hello"]
    assert kernel["builtin"] is True
    assert kernel["version"] == version("coderic-kernel")
    assert kernel["description"]
    assert {"register_routes", "register_health_checks"} <= set(kernel["hooks"])
    assert hello["builtin"] is False
    assert hello["version"] == version("coderic-hello-test")
    assert hello["description"] == metadata("coderic-hello-test")["Summary"]
    assert hello["requires"] == []
    assert set(hello["hooks"]) == {
        "register_settings_model", "register_piccolo_app", "register_routes", "lifespan", "register_commands",
    }
