"""Who may call what: every route of every enabled plugin, called over HTTP as an anonymous
visitor and as a user of each of the seven roles, against the table in ``access_table.txt``.

A route without a line in the table fails the test, so no route can be added without deciding
who may call it. After a deliberate change, rewrite the table and review its diff:

    CODERIC_WRITE_ACCESS_TABLE=1 .venv/bin/pytest tests/test_access_table.py

Each cell is what the permission gate answered: ``allow`` (it let the request through: any
answer but 401 and 403), ``sign-in`` (401) or ``deny`` (403). Requests carry an empty JSON
object as their body: where the caller is let through, validation answers 422 before the
handler runs, so the walk changes almost nothing. Unsafe routes without a body (signing out,
deleting) run their handler: they are called by users made for them alone, so what they end
is nobody else's.

The projects plugin is enabled too. Its routes name a project by ``{project_id}`` or ``{slug}``:
the walk makes a public project for them, and ``project_owner`` is granted on it. A route that
runs its handler gets a fresh project for the owner and the admin (the callers it lets
through), so deleting or archiving one changes no other row.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from coderic_sdk import Resource

TABLE = Path(__file__).with_name("access_table.txt")
ROLES = ("anonymous", "member", "project_owner", "freelancer", "mentor", "moderator", "admin")
CANDIDATES = ("0" * 32, "member", "kernel.plugins.view", "x", "0")
PROJECT = "projects.project"
pytestmark = [
    pytest.mark.coderic(plugins=["projects"], config={"rate_limit_enabled": False}),
    pytest.mark.timeout(900),  # some 100 routes times 7 callers: minutes on a loaded machine
]


def path_value(route: Any, name: str) -> str:
    """A value of the path parameter that its model accepts, so the request reaches the gate."""
    pattern = None
    if route.path_params is not None:
        schema = route.path_params.model_json_schema()["properties"].get(name, {})
        pattern = schema.get("pattern")
        if schema.get("type") == "integer":
            return "1"
    for candidate in CANDIDATES:
        if pattern is None or re.search(pattern, candidate):
            return candidate
    raise AssertionError(f"no candidate value matches {pattern!r} of {route.name}.{name}: add one to CANDIDATES")


async def new_project(kernel: Any) -> dict[str, Any]:
    """A public project of a user made for it, through the API."""
    owner = await kernel.sign_in(await kernel.create_user(None))
    created = await owner.post("/api/v1/projects", json={"name": "Walk"})
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


async def client_as(kernel: Any, role: str, project: str) -> Any:
    if role == "anonymous":
        return kernel.client
    if role == "project_owner":
        user = await kernel.create_user(None)
        await kernel.kernel.permissions.grant(user, "project_owner", Resource(PROJECT, project), reason="walk")
    else:
        user = await kernel.create_user(None, roles=[] if role == "member" else [role])
    return await kernel.sign_in(user)


def verdict(status: int) -> str:
    return {401: "sign-in", 403: "deny"}.get(status, "allow")


def render(rows: dict[str, dict[str, str]]) -> str:
    width = max(len(name) for name in rows) + 2
    lines = ["# " + "operation".ljust(width - 2) + "".join(role.ljust(15) for role in ROLES).rstrip()]
    for name in sorted(rows):
        lines.append(name.ljust(width) + "".join(rows[name][role].ljust(15) for role in ROLES).rstrip())
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, dict[str, str]]:
    rows = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            name, *cells = line.split()
            rows[name] = dict(zip(ROLES, cells, strict=True))
    return rows


async def test_every_route_answers_each_role_as_the_table_says(coderic_kernel: Any) -> None:
    actual: dict[str, dict[str, str]] = {}
    walked = await new_project(coderic_kernel)
    shared = {role: await client_as(coderic_kernel, role, str(walked["id"])) for role in ROLES}
    named = {"project_id": "{project}", "slug": walked["slug"]}  # the walked project, by id and by slug
    for mounted in coderic_kernel.kernel.routes:
        route = mounted.route
        runs_handler = route.method != "GET" and route.body is None
        template = re.sub(r"{([^}:]+)(:[^}]+)?}",
                          lambda m: named.get(m.group(1)) or path_value(route, m.group(1)),
                          mounted.path)
        row = {}
        for role in ROLES:
            # only those let through can change the project: they get one of their own
            fresh = runs_handler and "{project}" in template and role in ("project_owner", "admin")
            project = str((await new_project(coderic_kernel))["id"]) if fresh else str(walked["id"])
            path = template.replace("{project}", project)
            client = await client_as(coderic_kernel, role, project) if runs_handler else shared[role]
            body = {"json": {}} if route.method in {"POST", "PUT", "PATCH"} else {}
            answer = await client.request(route.method, path, **body)
            assert answer.status_code < 500, f"{route.method} {path} as {role}: {answer.status_code} {answer.text[:300]}"
            row[role] = verdict(answer.status_code)
        actual[mounted.operation_id] = row
    if os.environ.get("CODERIC_WRITE_ACCESS_TABLE") == "1":
        TABLE.write_text(render(actual), encoding="utf-8")
    expected = parse(TABLE.read_text(encoding="utf-8")) if TABLE.exists() else {}
    missing = sorted(set(actual) - set(expected))
    assert not missing, f"routes without a line in {TABLE.name} (decide who may call them): {missing}"
    stale = sorted(set(expected) - set(actual))
    assert not stale, f"{TABLE.name} has lines for routes that no longer exist: {stale}"
    differ = {name: (expected[name], actual[name]) for name in actual if expected[name] != actual[name]}
    assert not differ, f"routes answering otherwise than {TABLE.name} says (expected, actual): {differ}"
