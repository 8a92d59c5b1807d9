"""The OpenAPI 3.1 document of the combined API.

Plugin operations are generated from the same ``Route`` declarations that validate requests
(``kernel.routes``), so the document cannot drift from what the server accepts. The kernel's
own routes outside the plugin API are listed in ``KERNEL_OPERATIONS``: a route added to the
app is added there too, or ``tests/test_openapi.py`` fails.

Every schema, the error ``Problem`` included, is generated in one pydantic pass with refs
under ``#/components/schemas/``; pydantic names two models of one class name apart by
their modules, so two plugins' ``Item`` models do not collide.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from coderic_sdk import Problem as RaisedProblem
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from starlette.requests import Request
from starlette.responses import Response

from .. import __version__
from ..errors import StartupError, describe
from .jwks import JWKS_PATH
from .routing import API_PREFIX, MountedRoute

if TYPE_CHECKING:
    from ..kernel import Kernel

OPENAPI_VERSION = "3.1.0"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = "/docs"
REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
KERNEL_TAG = "kernel"

DESCRIPTION = f"""\
The combined API of the Coderic kernel and every enabled plugin.

Each plugin serves its routes under `{API_PREFIX}/<plugin>/`, tagged with the plugin's name;
operation ids read `<plugin>.<route name>`. Requests and responses are JSON; unknown
fields are refused. Every error is an RFC 9457 `application/problem+json` body carrying
the `request_id` also sent as the `X-Request-ID` header.

`{API_PREFIX}` is stable: it only grows. A route to be removed is first marked deprecated,
and its responses carry `Deprecation` and `Sunset` headers.
"""


# --- the error body ----------------------------------------------------------------------


class FieldError(BaseModel):
    """One invalid input and why it was refused."""

    field: str = Field(description="Where: `body.text`, `query.limit`, `path.greeting_id`, or `body` as a whole.")
    reason: str = Field(description="Why, for a human.")
    type: str = Field(description="Why, for a program: `missing`, `extra_forbidden`, `int_parsing`, `json_invalid`, ...")


class Problem(BaseModel):
    """An RFC 9457 problem: the body of every error response."""

    model_config = ConfigDict(extra="allow")  # a problem may add members, as /readyz adds ``checks``

    type: str = Field(description="A URI naming the kind of problem; `about:blank` means the status says it all.")
    title: str = Field(description="The status's reason phrase.")
    status: int = Field(ge=100, le=599, description="The HTTP status code, repeated.")
    detail: str = Field(description="What went wrong with this request, for a human.")
    instance: str = Field(description="The path of the request.")
    request_id: str = Field(description="The request's id (also the `X-Request-ID` header); quote it when reporting.")
    errors: list[FieldError] = Field(default_factory=list, description="Each invalid input (422, some 400).")


# Problem responses shared by operations, under ``components.responses``: status -> (name,
# description). Names follow RFC 9110, not the running Python's ``HTTPStatus`` phrases.
STANDARD_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "The body is not valid JSON."),
    401: ("Unauthorized", "The route needs a signed-in user, or the bearer credentials are invalid or expired."),
    403: ("Forbidden", "The caller may not do this: a personal token's scopes, or a cookie request failing the CSRF checks."),
    404: ("NotFound", "Nothing matches this path, or the resource it names does not exist."),
    406: ("NotAcceptable", "The `Accept` header excludes `application/json`."),
    413: ("ContentTooLarge", "The body is larger than the server's limit (`max_body_bytes`)."),
    415: ("UnsupportedMediaType", "The body is not `application/json`; the `Accept-Post` header says what is."),
    422: ("UnprocessableContent", "An input is invalid; `errors` lists each one."),
    429: ("TooManyRequests", "Over the route's rate limit; try again after `Retry-After` seconds."),
    500: ("InternalServerError", "An unexpected error. The body hides the cause; quote `request_id` when reporting it."),
    503: ("ServiceUnavailable", "The rate-limit store is unreachable and this route's policy fails closed."),
}
PROBLEM_HEADERS: dict[int, dict[str, str]] = {
    401: {"WWW-Authenticate": "`Bearer realm=\"coderic\"`, with `error=\"invalid_token\"` for a bad token."},
    415: {"Accept-Post": "The media types a body may have: `application/json`."},
    429: {
        "Retry-After": "Whole seconds until one more request is allowed.",
        "RateLimit-Policy": "The route's policy (draft-ietf-httpapi-ratelimit-headers): `\"name\";q=<limit>;w=<seconds>`.",
        "RateLimit": "What is left of it: `\"name\";r=<remaining>;t=<seconds until full>`.",
    },
    503: {"Retry-After": "Seconds to wait before trying again."},
}


SECURITY_SCHEMES: dict[str, Any] = {
    "accessToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A short-lived access token from sign-in or `POST /api/v1/auth/token/refresh`; "
                       "verifiable with the keys at `/.well-known/jwks.json`.",
    },
    "personalToken": {
        "type": "http", "scheme": "bearer", "bearerFormat": "cdr_pat_...",
        "description": "A personal access token (`/api/v1/me/tokens`), limited by its scopes.",
    },
    "sessionCookie": {
        "type": "apiKey", "in": "cookie", "name": "__Host-coderic_session",
        "description": "A browser session. Unsafe methods also need the `X-CSRF-Token` header.",
    },
}
AUTHENTICATED: list[dict[str, list[str]]] = [{"accessToken": []}, {"personalToken": []}, {"sessionCookie": []}]
ANYONE: list[dict[str, list[str]]] = [{}, *AUTHENTICATED]


# --- the kernel's own routes ---------------------------------------------------------------


class JsonWebKey(BaseModel):
    model_config = ConfigDict(extra="allow")  # the key type's own members: crv, x, y (EC); x (OKP)
    kty: str = Field(description="`EC` or `OKP`.")
    kid: str
    alg: str = Field(description="`ES256` or `EdDSA`.")
    use: str = Field(description="Always `sig`.")


class JsonWebKeySet(BaseModel):
    keys: list[JsonWebKey]


class HealthStatus(BaseModel):
    status: str = Field(description="Always `ok`.", examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(description="Always `ready`.", examples=["ready"])
    checks: dict[str, str] = Field(description="Each backend and `ok`.")


@dataclass(frozen=True)
class Answer:
    """One documented response. ``body`` is a type pydantic serialises to JSON, or ``None``."""

    description: str = ""
    body: Any = None
    media_type: str | None = JSON  # ``None``: no content
    headers: Mapping[str, str] = field(default_factory=dict)  # name -> description


@dataclass(frozen=True)
class KernelOperation:
    """A route of the kernel itself, outside the plugin API, documented by hand.

    ``when`` says whether the app serves it (a setting may switch it off).
    """

    method: str
    path: str
    name: str
    summary: str
    responses: Mapping[int, Answer]
    description: str = ""
    when: Callable[[Kernel], bool] = lambda kernel: True


#: The extension point for kernel routes outside ``/api/v1/<plugin>/``: add an entry here
#: with every route added in ``web/app.py``.
KERNEL_OPERATIONS: list[KernelOperation] = [
    KernelOperation(
        "GET", "/healthz", "healthz", "Liveness: the process answers",
        {200: Answer("Alive.", HealthStatus)},
        description="Answers without touching any backend; for a liveness probe.",
    ),
    KernelOperation(
        "GET", "/readyz", "readyz", "Readiness: every backend answers",
        {200: Answer("Ready.", Readiness), 503: Answer("A backend does not answer; `checks` says why.", Problem, PROBLEM_JSON)},
        description="Runs every health check (database, and those plugins register) concurrently.",
    ),
    KernelOperation(
        "GET", OPENAPI_PATH, "openapi", "This OpenAPI document",
        {200: Answer("The OpenAPI 3.1 document of the kernel and every enabled plugin.", dict[str, Any])},
    ),
    KernelOperation(
        "GET", DOCS_PATH, "docs", "Interactive API documentation",
        {200: Answer("An HTML page (Swagger UI) that reads this document.", str, "text/html")},
    ),
    KernelOperation(
        "GET", JWKS_PATH, "jwks", "Public keys of access tokens (JWKS)",
        {200: Answer("A JSON Web Key Set (RFC 7517): the keys that verify access tokens, by `kid`.",
                     JsonWebKeySet, "application/jwk-set+json")},
        description="For services that verify the kernel's access tokens themselves. Cache it for up to five "
                    "minutes; refetch when a token names a `kid` not in your copy.",
    ),
    KernelOperation(
        "GET", "/metrics", "metrics", "Prometheus metrics",
        {
            200: Answer("Metrics in the Prometheus text format.", str, "text/plain"),
            401: Answer("A metrics token is configured and the request does not carry it.", Problem, PROBLEM_JSON,
                        {"WWW-Authenticate": "`Bearer`: send `Authorization: Bearer <metrics token>`."}),
        },
        description="Served when `metrics_enabled` is on; with `metrics_token` set it needs that bearer token.",
        when=lambda kernel: kernel.config.kernel.metrics_enabled,
    ),
]


# --- building the document -----------------------------------------------------------------

_PARAMETER = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")
_CONVERTOR_SCHEMAS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
}
_DOCUMENTS: weakref.WeakKeyDictionary[Kernel, bytes] = weakref.WeakKeyDictionary()


def document_bytes(kernel: Kernel) -> bytes:
    """The document as served (indented UTF-8 JSON), built once per kernel."""
    content = _DOCUMENTS.get(kernel)
    if content is None:
        content = json.dumps(build_document(kernel), indent=2, ensure_ascii=False).encode() + b"\n"
        _DOCUMENTS[kernel] = content
    return content


def openapi_endpoint(kernel: Kernel):  # type: ignore[no-untyped-def]
    """``GET /api/v1/openapi.json``."""

    async def openapi(request: Request) -> Response:
        return Response(document_bytes(kernel), media_type=JSON)

    return openapi


def build_document(kernel: Kernel, kernel_operations: Sequence[KernelOperation] = KERNEL_OPERATIONS) -> dict[str, Any]:
    served = [op for op in kernel_operations if op.when(kernel)]
    descriptions = {info.name: info.description for info in kernel.plugins}
    limits = {}
    for mounted in kernel.routes:
        limit = kernel.rate_limiter.for_route(mounted)
        if limit is not None:
            limits[mounted.operation_id] = limit.policy.sensitive
    return generate(kernel.routes, served, descriptions, limits)


def generate(
    routes: Sequence[MountedRoute],
    kernel_operations: Sequence[KernelOperation] = (),
    plugin_descriptions: Mapping[str, str] | None = None,
    rate_limited: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """The document for these operations; ``plugin_descriptions`` describe the plugins' tags;
    ``rate_limited`` maps the operation ids that are rate limited to whether their policy
    fails closed (503 when the store is unreachable)."""
    schemas = _Schemas([*_schema_inputs(routes), *_kernel_schema_inputs(kernel_operations)])
    paths: dict[str, dict[str, Any]] = {}
    owners: dict[str, str] = {}  # operationId -> "METHOD path"
    tags: list[str] = []

    def add(method: str, path: str, operation: dict[str, Any]) -> None:
        operation_id = operation["operationId"]
        where = f"{method.upper()} {path}"
        if operation_id in owners:
            raise StartupError(f"operationId {operation_id!r} names both {owners[operation_id]} and {where}")
        methods = paths.setdefault(_PARAMETER.sub(r"{\1}", path), {})
        if method.lower() in methods:
            raise StartupError(f"{where} is documented twice ({methods[method.lower()]['operationId']}, {operation_id})")
        owners[operation_id] = where
        methods[method.lower()] = operation
        tags.extend(tag for tag in operation["tags"] if tag not in tags)

    for op in kernel_operations:
        add(op.method, op.path, _kernel_operation(op, schemas))
    for mounted in routes:
        add(mounted.route.method, mounted.path, _plugin_operation(mounted, schemas, (rate_limited or {}).get(mounted.operation_id)))

    descriptions = plugin_descriptions or {}
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Coderic API", "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "tags": [{"name": tag, "description": descriptions[tag]} if descriptions.get(tag) else {"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": schemas.definitions,
            "responses": {name: schemas.problem_answer(status) for status, (name, _) in STANDARD_PROBLEMS.items()},
            "headers": {
                "X-Request-ID": {
                    "description": "The request's id: the caller's `X-Request-ID` when well-formed, else a new one.",
                    "schema": {"type": "string"},
                },
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
    return document


def _kernel_operation(op: KernelOperation, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": f"{KERNEL_TAG}.{op.name}", "tags": [KERNEL_TAG], "summary": op.summary}
    if op.description:
        operation["description"] = op.description
    parameters = _path_parameters(op.path, None, schemas)
    if parameters:
        operation["parameters"] = parameters
    responses = {str(status): schemas.answer(status, answer) for status, answer in op.responses.items()}
    responses.setdefault("500", _problem_ref(500))
    operation["responses"] = responses
    return operation


def _plugin_operation(mounted: MountedRoute, schemas: _Schemas, sensitive_limit: bool | None = None) -> dict[str, Any]:
    route = mounted.route
    tags = [mounted.plugin.name, *(tag for tag in route.tags if tag != mounted.plugin.name)]
    operation: dict[str, Any] = {"operationId": mounted.operation_id, "tags": list(dict.fromkeys(tags))}
    if route.summary:
        operation["summary"] = route.summary
    if route.description:
        operation["description"] = route.description
    parameters = _path_parameters(mounted.path, route.path_params, schemas) + _query_parameters(route.query, schemas)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schemas.ref(route.body, "validation")}}}
    elif route.raw_body:  # read by the handler itself (a multipart upload): documented, not validated here
        content = {media: {"schema": schemas.ref(model, "validation")} for media, model in route.raw_body.items()}
        operation["requestBody"] = {"required": True, "content": content}

    lifecycle = _lifecycle_headers(route.deprecated is not None, route.sunset is not None)
    success = (
        Answer(_phrase(route.status_code), media_type=None, headers=lifecycle)
        if route.status_code == 204
        else Answer(_phrase(route.status_code), route.response, route.media_type, headers=lifecycle)
    )
    responses = {str(route.status_code): schemas.answer(route.status_code, success)}
    for status, declared in route.responses.items():
        if status != route.status_code:  # ``response`` describes the success body
            responses[str(status)] = schemas.answer(status, _declared_answer(status, declared))
    # Any route answers 401 to bad bearer credentials, and 403 to a personal token without the
    # scope or to a cookie request failing the CSRF checks.
    standard = [401, 403, 406, 500] if route.media_type == JSON else [401, 403, 500]
    operation["security"] = AUTHENTICATED if route.authenticated else ANYONE
    if route.body is not None or route.query is not None or route.path_params is not None:
        standard.append(422)
    if route.body is not None:
        standard += [400, 413, 415]
    if _PARAMETER.search(mounted.path):
        standard.append(404)
    if sensitive_limit is not None:  # rate limited: 429, and 503 when the policy fails closed
        standard += [429, 503] if sensitive_limit else [429]
    for status in sorted(standard):
        responses.setdefault(str(status), _problem_ref(status))
    operation["responses"] = dict(sorted(responses.items()))

    if route.deprecated is not None:
        operation["deprecated"] = True
        operation["x-deprecated-on"] = route.deprecated.isoformat()
        if route.sunset is not None:
            operation["x-sunset"] = route.sunset.isoformat()
    if route.permission:
        operation["x-permission"] = route.permission
    return operation


def _declared_answer(status: int, declared: Any) -> Answer:
    """``Route.responses`` values: a type (a JSON body), a description, ``None``, or a
    ``Problem`` class (``{409: Conflict}``), which is what an error status means anyway: a
    raised problem answers ``application/problem+json``."""
    if isinstance(declared, str) or declared is None or _is_raised_problem(declared):
        description = declared if isinstance(declared, str) and declared else _phrase(status)
        return Answer(description, Problem, PROBLEM_JSON) if status >= 400 else Answer(description, media_type=None)
    return Answer(_phrase(status), declared)


def _is_raised_problem(declared: Any) -> bool:
    return isinstance(declared, type) and issubclass(declared, RaisedProblem)


def _path_parameters(path: str, model: type[BaseModel] | None, schemas: _Schemas) -> list[dict[str, Any]]:
    properties = schemas.properties(model)[0] if model is not None else {}
    parameters = []
    for name, convertor in _PARAMETER.findall(path):
        schema = properties.get(name) or _CONVERTOR_SCHEMAS.get(convertor or "str", {"type": "string"})
        parameters.append(_parameter(name, "path", schema, required=True))
    return parameters


def _query_parameters(model: type[BaseModel] | None, schemas: _Schemas) -> list[dict[str, Any]]:
    if model is None:
        return []
    properties, required = schemas.properties(model)
    parameters = []
    for name, schema in properties.items():
        parameter = _parameter(name, "query", schema, required=name in required)
        if _is_array(schema):
            parameter.update(style="form", explode=True)
        parameters.append(parameter)
    return parameters


def _parameter(name: str, where: str, schema: dict[str, Any], *, required: bool) -> dict[str, Any]:
    schema = dict(schema)
    schema.pop("title", None)
    parameter: dict[str, Any] = {"name": name, "in": where, "required": required}
    description = schema.pop("description", None)
    if description:
        parameter["description"] = description
    parameter["schema"] = schema
    return parameter


def _is_array(schema: Mapping[str, Any]) -> bool:
    return schema.get("type") == "array" or any(_is_array(option) for option in schema.get("anyOf", ()))


def _lifecycle_headers(deprecated: bool, sunset: bool) -> dict[str, str]:
    headers = {}
    if deprecated:
        headers["Deprecation"] = "When the route was deprecated (RFC 9745): `@<unix time>`."
    if sunset:
        headers["Sunset"] = "When the route goes away (RFC 8594), an HTTP date."
    return headers


def _problem_ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{STANDARD_PROBLEMS[status][0]}"}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"Status {status}"


# --- schemas -------------------------------------------------------------------------------

SchemaInput = tuple[Any, JsonSchemaMode, str]  # type, mode, the operation that uses it


def _schema_inputs(routes: Sequence[MountedRoute]) -> Iterator[SchemaInput]:
    yield Problem, "serialization", "the kernel"
    for mounted in routes:
        route = mounted.route
        for model in (route.body, route.query, route.path_params, *route.raw_body.values()):
            if model is not None:
                yield model, "validation", mounted.operation_id
        if route.response is not None and route.status_code != 204:
            yield route.response, "serialization", mounted.operation_id
        for status, declared in route.responses.items():
            if status != route.status_code and declared is not None and not isinstance(declared, str) and not _is_raised_problem(declared):
                yield declared, "serialization", mounted.operation_id


def _kernel_schema_inputs(operations: Sequence[KernelOperation]) -> Iterator[SchemaInput]:
    for op in operations:
        for answer in op.responses.values():
            if answer.body is not None and answer.media_type is not None and (
                answer.media_type in (JSON, PROBLEM_JSON) or answer.media_type.endswith("+json")
            ):
                yield answer.body, "serialization", f"{KERNEL_TAG}.{op.name}"


class _Schemas:
    """Every schema of the document from one pydantic pass, so names are unique."""

    def __init__(self, inputs: Sequence[SchemaInput]) -> None:
        # Keyed by identity: a type need not be hashable (``Annotated`` metadata may not be).
        self._inputs: dict[tuple[int, JsonSchemaMode], tuple[Any, str]] = {}
        for tp, mode, user in inputs:
            self._inputs.setdefault((id(tp), mode), (tp, user))
        adapters = [(key, key[1], TypeAdapter(tp)) for key, (tp, _) in self._inputs.items()]
        try:
            self._refs, definitions = TypeAdapter.json_schemas(adapters, ref_template=REF_TEMPLATE)
        except Exception as exc:
            raise self._culprit(adapters) from exc
        self.definitions: dict[str, Any] = definitions.get("$defs", {})

    def _culprit(self, adapters: Sequence[tuple[Any, JsonSchemaMode, TypeAdapter[Any]]]) -> Exception:
        """Name the operation whose type has no JSON Schema."""
        for key, mode, adapter in adapters:
            try:
                adapter.json_schema(mode=mode)
            except Exception as exc:
                tp, user = self._inputs[key]
                return StartupError(f"{user}: {tp!r} has no JSON Schema: {describe(exc)}")
        return StartupError("the OpenAPI document cannot be generated")

    def ref(self, tp: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        return self._refs[((id(tp), mode), mode)]

    def properties(self, model: type[BaseModel]) -> tuple[dict[str, Any], set[str]]:
        """A model's properties (by alias) and which are required."""
        name = self.ref(model, "validation")["$ref"].rsplit("/", 1)[-1]
        definition = self.definitions[name]
        return definition.get("properties", {}), set(definition.get("required", ()))

    def answer(self, status: int, answer: Answer) -> dict[str, Any]:
        response: dict[str, Any] = {"description": answer.description or _phrase(status)}
        headers: dict[str, Any] = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
        headers.update({name: {"description": text, "schema": {"type": "string"}} for name, text in answer.headers.items()})
        response["headers"] = headers
        if answer.media_type is None:
            return response
        if answer.media_type in (JSON, PROBLEM_JSON) or answer.media_type.endswith("+json"):
            schema = self.ref(answer.body, "serialization") if answer.body is not None else {}
        else:
            schema = {"type": "string"}
        response["content"] = {answer.media_type: {"schema": schema}}
        return response

    def problem_answer(self, status: int) -> dict[str, Any]:
        return self.answer(status, Answer(STANDARD_PROBLEMS[status][1], Problem, PROBLEM_JSON, PROBLEM_HEADERS.get(status, {})))

