"""RFC 9457 problem details: the one shape of every error response."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from coderic_sdk import FieldError, Problem
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

PROBLEM_JSON = "application/problem+json"


def problem_response(
    scope: Scope,
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type: str = "about:blank",
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    problem = Problem(status, detail, title=title, type=type, errors=errors, headers=headers, extra=extra)
    return render_problem(scope, problem)


def render_problem(scope: Scope, problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": scope.get("path", ""),
        "request_id": scope.get("state", {}).get("request_id", ""),
    }
    if problem.errors:
        body["errors"] = [error.as_dict() for error in problem.errors]
    for key, value in problem.extra.items():
        body.setdefault(key, value)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_JSON,
    )


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    return render_problem(request.scope, exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return http_exception_problem(request.scope, exc)


def http_exception_problem(scope: Scope, exc: HTTPException) -> Response:
    """Starlette's own 404/405/... become problems; headers such as ``Allow`` are kept."""
    detail = exc.detail if exc.detail and exc.status_code != 404 else None
    if exc.status_code == 404:
        detail = f"No route matches {scope.get('path', '')!r}."
    elif exc.status_code == 405:
        detail = f"{scope.get('method')} is not allowed here; allowed: {(exc.headers or {}).get('Allow', '')}."
    return problem_response(scope, exc.status_code, detail=detail, headers=exc.headers)
