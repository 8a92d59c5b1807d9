"""The OpenAPI document: valid, complete (no route escapes it), stable operation ids, and the
``/docs`` page that reads it from this server alone.

The kernel here runs the hello test plugin; nothing touches a database, so no kernel is
started. The generator's finer cases run on ``MountedRoute`` lists built in the test.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx2
import pytest
from coderic_kernel.cli import main
from coderic_kernel.config import load_configuration
from coderic_kernel.errors import StartupError
from coderic_kernel.kernel import Kernel
from coderic_kernel.web.app import create_app
from coderic_kernel.web.openapi import KERNEL_OPERATIONS, OPENAPI_PATH, build_document, document_bytes, generate
from coderic_kernel.web.routing import MountedRoute, api_path, starlette_routes
from coderic_sdk import Conflict, Problem, RequestContext, Route, Schema
from openapi_spec_validator import validate
from pydantic import create_model
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.routing import Route as StarletteRoute

#: The one mounted path allowed outside the document: the docs page's static files.
DOCS_STATIC = "/docs/static"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def hello_kernel(**settings: Any) -> Kernel:
    overrides = {"plugins.enabled": ["hello"], "database_url": "sqlite:///./var/unused.db", **settings}
    return Kernel.boot(load_configuration(environ={}, overrides=overrides, read_files=False))


@pytest.fixture(scope="module")
def kernel() -> Kernel:
    return hello_kernel()


@pytest.fixture(scope="module")
def document(kernel: Kernel) -> dict[str, Any]:
    return json.loads(document_bytes(kernel))


@pytest.fixture
async def client(kernel: Kernel) -> AsyncIterator[httpx2.AsyncClient]:
    app = create_app(kernel, manage_lifespan=False)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield method.upper(), path, operation


def template(path: str) -> str:
    """Starlette's ``{name:int}`` as OpenAPI's ``{name}``."""
    return re.sub(r"{([^}:]+)(:[^}]+)?}", r"{\1}", path)


# --- the document of the kernel with hello --------------------------------------------------


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "Coderic API"
    assert document["servers"] == [{"url": "/"}]


@pytest.mark.parametrize("metrics_enabled", [True, False])
def test_every_mounted_route_is_documented_and_nothing_else(metrics_enabled: bool) -> None:
    kernel = hello_kernel(metrics_enabled=metrics_enabled)
    document = build_document(kernel)
    served: set[tuple[str, str]] = set()
    for route in create_app(kernel, manage_lifespan=False).routes:
        if isinstance(route, Mount) and route.path == DOCS_STATIC:
            continue
        assert isinstance(route, StarletteRoute), f"{route!r} is neither a route nor the docs' static files"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            served.add((method, template(route.path)))
    documented = {(method, path) for method, path, _ in operations(document)}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert (("GET", "/metrics") in documented) is metrics_enabled


def test_operation_ids_are_unique_and_name_plugin_and_route(kernel: Kernel, document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    by_place = {(method, path): operation for method, path, operation in operations(document)}
    for mounted in kernel.routes:
        operation = by_place[(mounted.route.method, template(mounted.path))]
        assert operation["operationId"] == f"{mounted.plugin.name}.{mounted.route.name}"
        assert operation["tags"][0] == mounted.plugin.name
    assert by_place[("GET", "/api/v1/hello/greetings")]["operationId"] == "hello.list_greetings"
    assert by_place[("GET", "/healthz")]["operationId"] == "kernel.healthz"


def test_each_plugin_is_a_tag_with_its_description(kernel: Kernel, document: dict[str, Any]) -> None:
    tags = {tag["name"]: tag.get("description") for tag in document["tags"]}
    for info in kernel.plugins:
        assert tags[info.name] == info.description


def test_hello_operations_describe_their_inputs_and_outputs(document: dict[str, Any]) -> None:
    greetings = document["paths"]["/api/v1/hello/greetings"]
    create, listing = greetings["post"], greetings["get"]
    assert create["requestBody"] == {
        "required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GreetingIn"}}},
    }
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/GreetingOut"}
    language, limit = listing["parameters"]
    assert (language["name"], language["in"], language["style"], language["explode"]) == ("language", "query", "form", True)
    assert language["schema"]["type"] == "array"
    assert (limit["name"], limit["required"], limit["schema"]["maximum"]) == ("limit", False, 100)

    one = document["paths"]["/api/v1/hello/greetings/{greeting_id}"]
    (parameter,) = one["get"]["parameters"]
    assert parameter == {
        "name": "greeting_id", "in": "path", "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }
    assert "content" not in one["delete"]["responses"]["204"]
    schemas = document["components"]["schemas"]
    assert set(schemas["GreetingIn"]["properties"]) == {"text", "language"}
    assert schemas["GreetingIn"]["additionalProperties"] is False


def test_error_responses_follow_the_inputs(document: dict[str, Any]) -> None:
    def statuses(method: str, path: str) -> set[str]:
        return {s for s in document["paths"][path][method]["responses"] if s.startswith(("4", "5"))}

    # Every plugin route is rate limited (the default policy): 429, and no 503 (it fails open);
    # and answers bad credentials with 401, a personal token's missing scope or CSRF with 403.
    auth = {"401", "403"}
    assert statuses("get", "/api/v1/hello/greeting") == {"406", "429", "500"} | auth
    assert statuses("get", "/api/v1/hello/greetings") == {"406", "422", "429", "500"} | auth
    assert statuses("post", "/api/v1/hello/greetings") == {"400", "406", "413", "415", "422", "429", "500"} | auth
    assert statuses("get", "/api/v1/hello/greetings/{greeting_id}") == {"404", "406", "422", "429", "500"} | auth
    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(document["components"]["responses"]["TooManyRequests"]["headers"])
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance", "request_id"} <= set(problem["required"])
    assert document["components"]["schemas"]["FieldError"]["required"] == ["field", "reason", "type"]
    for name, response in document["components"]["responses"].items():
        assert response["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}, name
    assert "Accept-Post" in document["components"]["responses"]["UnsupportedMediaType"]["headers"]


def test_rate_limits_show_in_the_document_as_the_kernel_applies_them(kernel: Kernel) -> None:
    routes = {mounted.operation_id: mounted for mounted in kernel.routes}
    sensitive = generate(kernel.routes, rate_limited={"hello.salute": True})
    salute = sensitive["paths"]["/api/v1/hello/greeting"]["get"]["responses"]
    assert {"429", "503"} <= set(salute)
    assert "503" not in sensitive["paths"]["/api/v1/hello/greetings"]["get"]["responses"]  # not limited here
    assert "hello.salute" in routes
    unlimited = build_document(hello_kernel(rate_limit_enabled=False))
    assert "429" not in unlimited["paths"]["/api/v1/hello/greeting"]["get"]["responses"]


async def test_the_server_serves_the_same_bytes_every_time(kernel: Kernel, client: httpx2.AsyncClient) -> None:
    first, second = await client.get(OPENAPI_PATH), await client.get(OPENAPI_PATH)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.content == second.content == document_bytes(kernel)


def test_coderic_openapi_writes_the_served_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], document: dict[str, Any]
) -> None:
    for name in list(os.environ):
        if name.startswith("CODERIC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "plugins.toml"
    config.write_text('[kernel]\ndatabase_url = "sqlite:///./var/unused.db"\n\n[plugins]\nenabled = ["hello"]\n')
    output = tmp_path / "f.json"

    assert main(["--config", str(config), "openapi", "--output", str(output)]) == 0
    assert json.loads(output.read_text(encoding="utf-8")) == document
    assert main(["--config", str(config), "openapi"]) == 0
    assert json.loads(capsys.readouterr().out) == document


# --- the docs page -------------------------------------------------------------------------


async def test_docs_is_a_page_of_this_server_only(client: httpx2.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.findall(r"(?i)(?:https?:)?//[a-z0-9.-]+", html), "the page names another host"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="' in attributes and not body.strip() for attributes, body in scripts), "inline script"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"/docs/static/swagger-ui-bundle.js", "/docs/static/docs-init.js", "/docs/static/swagger-ui.css"} <= set(assets)
    for url in [*assets, *re.findall(r'data-openapi-url="([^"]+)"', html)]:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


async def test_docs_serves_only_the_files_the_page_uses(client: httpx2.AsyncClient) -> None:
    for url in ["/docs/static/swagger-initializer.js", "/docs/static/swagger-editor-bundle.js", "/docs/static/../openapi.py"]:
        assert (await client.get(url)).status_code == 404, url


async def test_docs_runs_under_a_policy_without_inline_or_eval_scripts(client: httpx2.AsyncClient) -> None:
    policy = (await client.get("/docs")).headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if " " in part.strip())
    assert directives["script-src"] == "'self'"


# --- the generator on routes built here ----------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The part of a ``PluginContext`` the generator reads."""

    name: str


async def answer(ctx: RequestContext[Any, Any, Any]) -> dict[str, str]:
    return {"id": "1"}


def mount(plugin: str, route: Route) -> MountedRoute:
    return MountedRoute(Owner(plugin), route, api_path(plugin, route.path))  # type: ignore[arg-type]


def test_models_of_one_class_name_from_two_plugins_stay_apart() -> None:
    alpha_item = create_model("Item", __base__=Schema, __module__="alpha.models", colour=(str, ...))
    beta_item = create_model("Item", __base__=Schema, __module__="beta.models", size=(int, ...))
    document = generate([
        mount("alpha", Route("POST", "/items", answer, name="add", body=alpha_item, response=alpha_item)),
        mount("beta", Route("POST", "/items", answer, name="add", body=beta_item, response=beta_item)),
    ])
    validate(document)
    schemas = document["components"]["schemas"]

    def body_schema(path: str) -> dict[str, Any]:
        ref = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[-1]]

    assert set(body_schema("/api/v1/alpha/items")["properties"]) == {"colour"}
    assert set(body_schema("/api/v1/beta/items")["properties"]) == {"size"}


def test_a_deprecated_route_is_flagged_with_its_dates() -> None:
    route = Route("GET", "/old", answer, name="old", deprecated=date(2026, 1, 1), sunset=date(2026, 7, 1))
    operation = generate([mount("alpha", route)])["paths"]["/api/v1/alpha/old"]["get"]
    assert operation["deprecated"] is True
    assert (operation["x-deprecated-on"], operation["x-sunset"]) == ("2026-01-01", "2026-07-01")
    assert {"Deprecation", "Sunset"} <= set(operation["responses"]["200"]["headers"])


async def test_a_deprecated_route_answers_with_deprecation_and_sunset_headers() -> None:
    route = Route("GET", "/old", answer, name="old", deprecated=date(2026, 1, 1), sunset=date(2026, 7, 1))
    app = Starlette(routes=starlette_routes([mount("alpha", route)], 1024))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver") as client:
        response = await client.get("/api/v1/alpha/old")
    assert response.status_code == 200
    assert response.headers["deprecation"] == "@1767225600"
    assert response.headers["sunset"] == "Wed, 01 Jul 2026 00:00:00 GMT"


def test_path_convertors_declared_statuses_and_permissions() -> None:
    route = Route(
        "PUT", "/items/{item_id:int}", answer, name="replace", status_code=202,
        responses={409: Conflict, 403: Problem, 423: None, 410: "The item was removed for good.", 200: dict[str, int]},
        permission="alpha.write", tags=("inventory",), summary="Replace an item",
    )
    document = generate([mount("alpha", route)], plugin_descriptions={"alpha": "The alpha plugin."})
    validate(document)
    operation = document["paths"]["/api/v1/alpha/items/{item_id}"]["put"]
    assert operation["parameters"] == [
        {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
    ]
    assert operation["tags"] == ["alpha", "inventory"]
    assert document["tags"] == [{"name": "alpha", "description": "The alpha plugin."}, {"name": "inventory"}]
    assert operation["x-permission"] == "alpha.write"
    responses = operation["responses"]
    assert responses["202"]["content"]["application/json"]["schema"] == {}
    assert responses["200"]["content"]["application/json"]["schema"]["additionalProperties"] == {"type": "integer"}
    for status in ("403", "409", "410", "423"):
        assert responses[status]["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}, status
    assert responses["410"]["description"] == "The item was removed for good."
    assert set(responses) == {"200", "202", "401", "403", "404", "406", "409", "410", "423", "500"}


def test_an_operation_id_used_twice_stops_the_build() -> None:
    clash = Route("GET", "/healthz", answer, name="healthz", prefix="")
    with pytest.raises(StartupError, match="'kernel.healthz'"):
        generate([MountedRoute(Owner("kernel"), clash, "/elsewhere")], KERNEL_OPERATIONS)  # type: ignore[arg-type]


def test_a_type_without_json_schema_names_its_operation() -> None:
    route = Route("GET", "/odd", answer, name="odd", response=Callable[[], int])
    with pytest.raises(StartupError, match=r"^alpha\.odd: .* has no JSON Schema"):
        generate([mount("alpha", route)])
