"""A local fake of the part of Meilisearch's HTTP API that the search backend uses, written from
Meilisearch's API reference (no Meilisearch server can be installed on our machines).

What it implements, as the reference describes it:

- API key: ``Authorization: Bearer <key>`` on every route but ``/health``; none is 401
  ``missing_authorization_header``, a wrong one 403 ``invalid_api_key``.
- Asynchronous tasks: every write answers 202 with a summarized task (``taskUid``, ``indexUid``,
  ``status: enqueued``, ``type``, ``enqueuedAt``); tasks are processed one at a time, in order,
  by a background worker, and ``GET /tasks/{uid}`` shows them ``enqueued``, ``processing``,
  then ``succeeded`` or ``failed`` (with an ``error`` object).
- Indexes: ``POST /indexes`` (``index_already_exists`` fails the task), ``GET`` and ``DELETE
  /indexes/{uid}`` (``index_not_found``), ``GET /indexes/{uid}/stats``, ``POST /swap-indexes``.
- Settings: ``PATCH``/``GET /indexes/{uid}/settings`` (searchable, filterable, sortable,
  displayed attributes, ranking rules, typo tolerance, pagination, faceting); a settings update
  or a document addition creates a missing index, as Meilisearch does.
- Documents: ``POST /indexes/{uid}/documents?primaryKey=`` (add or replace), ``GET
  /indexes/{uid}/documents/{id}`` (``document_not_found``), ``POST .../documents/delete``
  with a filter.
- Search: ``POST /indexes/{uid}/search`` with ``q`` (words matched in the searchable attributes,
  the last one as a prefix, typos allowed from 5 and 9 letters, ``matchingStrategy`` ``all`` or
  ``last``), ``filter`` (the filter expression syntax: ``=``, ``!=``, ``>``, ``>=``, ``<``,
  ``<=``, ``TO``, ``EXISTS``, ``IN``, ``NOT``, ``AND``, ``OR``, parentheses, quoted values with
  backslash escapes; only filterable attributes, else 400 ``invalid_search_filter``), ``facets``
  (``facetDistribution``), ``sort`` (sortable attributes only; documents missing the value
  last), ``offset``/``limit`` and ``estimatedTotalHits``, ``attributesToHighlight`` with
  ``highlightPreTag``/``highlightPostTag`` (``_formatted``, not escaped, as Meilisearch does),
  ``showRankingScore``, and ranking by the rules ``sort``, ``words``, ``typo``, ``proximity``
  (approximated), ``attribute`` and ``exactness`` in the configured order.
- ``GET /health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
import unicodedata
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_RULES = ["words", "typo", "proximity", "attribute", "sort", "exactness"]
_UID = re.compile(r"^[A-Za-z0-9_-]{1,400}$")
_DOC_ID = re.compile(r"^[A-Za-z0-9_-]{1,511}$")


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, type: str = "invalid_request") -> None:
        self.status, self.code, self.message, self.type = status, code, message, type

    def body(self) -> dict[str, str]:
        return {"message": self.message, "code": self.code, "type": self.type,
                "link": f"https://docs.meilisearch.com/errors#{self.code}"}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


# ----------------------------------------------------------------------------- text


def normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_TOKEN = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[tuple[str, int, int]]:
    """(normalised word, start, end) of each word of ``text``."""
    return [(normalise(m.group(0)), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def distance(a: str, b: str, cap: int) -> int:
    """Levenshtein distance, stopping early past ``cap``."""
    if abs(len(a) - len(b)) > cap:
        return cap + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > cap:
            return cap + 1
        previous = current
    return previous[-1]


def allowed_typos(word: str, typo: dict[str, Any]) -> int:
    if not typo.get("enabled", True):
        return 0
    sizes = typo.get("minWordSizeForTypos", {})
    if len(word) >= sizes.get("twoTypos", 9):
        return 2
    if len(word) >= sizes.get("oneTypo", 5):
        return 1
    return 0


def word_match(query_word: str, token: str, prefix: bool, typo: dict[str, Any]) -> tuple[int, int] | None:
    """(typos, matched length) when ``token`` matches ``query_word``; None otherwise."""
    if token == query_word:
        return 0, len(token)
    if prefix and token.startswith(query_word):
        return 0, len(query_word)
    cap = allowed_typos(query_word, typo)
    if cap:
        found = distance(query_word, token, cap)
        if found <= cap:
            return found, len(token)
        if prefix and len(token) > len(query_word):
            found = distance(query_word, token[:len(query_word)], cap)
            if found <= cap:
                return found, len(query_word)
    return None


# ----------------------------------------------------------------------------- filters


class FilterParser:
    _TOK = re.compile(r"""\s*(?:(?P<op>!=|>=|<=|=|>|<)|(?P<p>[()\[\],])|"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'|(?P<w>[^\s()\[\],=!<>'"]+))""")

    def __init__(self, text: str, filterable: list[str]) -> None:
        self.items: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if not text[pos:].strip():
                break
            m = self._TOK.match(text, pos)
            if m is None:
                raise ApiError(400, "invalid_search_filter", f"Was expecting a value but instead got `{text[pos:pos + 10]}`.")
            kind = m.lastgroup or ""
            value = m.group(kind)
            if kind in ("dq", "sq"):
                kind, value = "s", re.sub(r"\\(.)", r"\1", value)
            elif kind == "w" and value.upper() in ("AND", "OR", "NOT", "IN", "EXISTS", "TO"):
                kind, value = "k", value.upper()
            self.items.append((kind, value))
            pos = m.end()
        self.items.append(("end", ""))
        self.at = 0
        self.filterable = filterable

    def peek(self) -> tuple[str, str]:
        return self.items[self.at]

    def take(self) -> tuple[str, str]:
        item = self.items[self.at]
        self.at += 1
        return item

    def fail(self, message: str) -> ApiError:
        return ApiError(400, "invalid_search_filter", message)

    def parse(self) -> Any:
        node = self.or_()
        if self.peek()[0] != "end":
            raise self.fail(f"Found unexpected characters at the end of the filter: `{self.peek()[1]}`.")
        return node

    def or_(self) -> Any:
        nodes = [self.and_()]
        while self.peek() == ("k", "OR"):
            self.take()
            nodes.append(self.and_())
        return nodes[0] if len(nodes) == 1 else ("or", nodes)

    def and_(self) -> Any:
        nodes = [self.not_()]
        while self.peek() == ("k", "AND"):
            self.take()
            nodes.append(self.not_())
        return nodes[0] if len(nodes) == 1 else ("and", nodes)

    def not_(self) -> Any:
        if self.peek() == ("k", "NOT"):
            self.take()
            return ("not", self.not_())
        if self.peek() == ("p", "("):
            self.take()
            node = self.or_()
            if self.take() != ("p", ")"):
                raise self.fail("Expression `(` is missing a closing `)`.")
            return node
        return self.condition()

    def value(self) -> str:
        kind, value = self.take()
        if kind not in ("w", "s"):
            raise self.fail(f"Was expecting a value but instead got `{value}`.")
        return value

    def condition(self) -> Any:
        kind, attribute = self.take()
        if kind not in ("w", "s"):
            raise self.fail(f"Was expecting an attribute but instead got `{attribute}`.")
        if attribute not in self.filterable:
            raise self.fail(f"Attribute `{attribute}` is not filterable. Available filterable attributes are: "
                            f"`{', '.join(sorted(self.filterable))}`.")
        kind, word = self.take()
        negate = False
        if (kind, word) == ("k", "NOT"):
            negate = True
            kind, word = self.take()
        if kind == "op" and not negate:
            return ("cmp", attribute, word, self.value())
        if (kind, word) == ("k", "IN"):
            if self.take() != ("p", "["):
                raise self.fail("Expected `[` after `IN` keyword.")
            values = [self.value()]
            while self.peek() == ("p", ","):
                self.take()
                values.append(self.value())
            if self.take() != ("p", "]"):
                raise self.fail("Expected matching `]` after the list of values.")
            node: Any = ("in", attribute, values)
        elif (kind, word) == ("k", "EXISTS"):
            node = ("exists", attribute)
        elif kind in ("w", "s") and not negate:
            low = word
            if self.take() != ("k", "TO"):
                raise self.fail("Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`.")
            return ("range", attribute, low, self.value())
        else:
            raise self.fail("Was expecting an operation `=`, `!=`, `>=`, `>`, `<=`, `<`, `IN`, `NOT IN`, `TO`, `EXISTS`.")
        return ("not", node) if negate else node


def _values(document: dict[str, Any], attribute: str) -> list[Any]:
    value = document.get(attribute)
    if value is None:
        return []
    return [v for v in value if v is not None] if isinstance(value, list) else [value]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _equal(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted.lower()
    if isinstance(value, (int, float)):
        number = _number(wanted)
        return number is not None and float(value) == number
    return normalise(str(value)) == normalise(wanted)  # string filters ignore case, as Meilisearch's do


def evaluate(node: Any, document: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "and":
        return all(evaluate(n, document) for n in node[1])
    if kind == "or":
        return any(evaluate(n, document) for n in node[1])
    if kind == "not":
        return not evaluate(node[1], document)
    values = _values(document, node[1])
    if kind == "exists":
        return node[1] in document and document[node[1]] is not None
    if kind == "in":
        return any(_equal(v, w) for v in values for w in node[2])
    if kind == "range":
        low, high = _number(node[2]), _number(node[3])
        return low is not None and high is not None and any(
            isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high for v in values)
    op, wanted = node[2], node[3]
    if op == "=":
        return any(_equal(v, wanted) for v in values)
    if op == "!=":
        return not any(_equal(v, wanted) for v in values)
    number = _number(wanted)
    if number is None:
        return False
    compare = {">": lambda v: v > number, ">=": lambda v: v >= number, "<": lambda v: v < number,
               "<=": lambda v: v <= number}[op]
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) and compare(v) for v in values)


# ----------------------------------------------------------------------------- the server


class Index:
    def __init__(self, uid: str, primary_key: str | None) -> None:
        self.uid = uid
        self.primary_key = primary_key
        self.created_at = self.updated_at = now()
        self.documents: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, Any] = {
            "displayedAttributes": ["*"], "searchableAttributes": ["*"], "filterableAttributes": [],
            "sortableAttributes": [], "rankingRules": list(DEFAULT_RULES), "stopWords": [], "synonyms": {},
            "distinctAttribute": None,
            "typoTolerance": {"enabled": True, "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
                              "disableOnWords": [], "disableOnAttributes": []},
            "faceting": {"maxValuesPerFacet": 100}, "pagination": {"maxTotalHits": 1000},
        }

    def info(self) -> dict[str, Any]:
        return {"uid": self.uid, "primaryKey": self.primary_key, "createdAt": self.created_at, "updatedAt": self.updated_at}


class FakeMeilisearch:
    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.indexes: dict[str, Index] = {}
        self.tasks: list[dict[str, Any]] = []
        self.queue: asyncio.Queue[tuple[dict[str, Any], Any]] | None = None
        self.requests: list[tuple[str, str]] = []  # (method, path): what the backend asked
        self.app = Starlette(routes=[
            Route("/health", self.health, methods=["GET"]),
            Route("/indexes", self.create_index, methods=["POST"]),
            Route("/indexes/{uid}", self.index_route, methods=["GET", "DELETE"]),
            Route("/indexes/{uid}/stats", self.stats, methods=["GET"]),
            Route("/indexes/{uid}/settings", self.settings_route, methods=["GET", "PATCH"]),
            Route("/indexes/{uid}/documents", self.add_documents, methods=["POST"]),
            Route("/indexes/{uid}/documents/delete", self.delete_documents, methods=["POST"]),
            Route("/indexes/{uid}/documents/{id}", self.get_document, methods=["GET"]),
            Route("/indexes/{uid}/search", self.search, methods=["POST"]),
            Route("/swap-indexes", self.swap, methods=["POST"]),
            Route("/tasks/{uid:int}", self.get_task, methods=["GET"]),
        ], lifespan=self.lifespan)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        self.queue = asyncio.Queue()
        worker = asyncio.get_running_loop().create_task(self.worker())
        try:
            yield
        finally:
            worker.cancel()

    # --------------------------------------------------------------------- plumbing

    def check_key(self, request: Request) -> None:
        self.requests.append((request.method, request.url.path))
        if self.api_key is None:
            return
        header = request.headers.get("authorization")
        if not header:
            raise ApiError(401, "missing_authorization_header",
                           "The Authorization header is missing. It must use the bearer authorization method.", "auth")
        if header != f"Bearer {self.api_key}":
            raise ApiError(403, "invalid_api_key", "The provided API key is invalid.", "auth")

    async def body(self, request: Request) -> Any:
        try:
            return json.loads(await request.body() or b"null")
        except json.JSONDecodeError as exc:
            raise ApiError(400, "bad_request", f"The json payload provided is malformed. `{exc}`.") from None

    def enqueue(self, index_uid: str | None, type: str, work: Any, details: dict[str, Any] | None = None) -> JSONResponse:
        task = {"uid": len(self.tasks), "batchUid": None, "indexUid": index_uid, "status": "enqueued", "type": type,
                "canceledBy": None, "details": details or {}, "error": None, "duration": None, "enqueuedAt": now(),
                "startedAt": None, "finishedAt": None}
        self.tasks.append(task)
        assert self.queue is not None
        self.queue.put_nowait((task, work))
        return JSONResponse({"taskUid": task["uid"], "indexUid": index_uid, "status": "enqueued", "type": type,
                             "enqueuedAt": task["enqueuedAt"]}, status_code=202)

    async def worker(self) -> None:
        assert self.queue is not None
        while True:
            task, work = await self.queue.get()
            task["status"], task["startedAt"] = "processing", now()
            await asyncio.sleep(0.001)
            try:
                work()
                task["status"] = "succeeded"
            except ApiError as error:
                task["status"], task["error"] = "failed", error.body()
            task["finishedAt"] = now()
            task["duration"] = "PT0.001S"

    def index(self, uid: str) -> Index:
        index = self.indexes.get(uid)
        if index is None:
            raise ApiError(404, "index_not_found", f"Index `{uid}` not found.")
        return index

    def ensure(self, uid: str, primary_key: str | None = None) -> Index:
        if uid not in self.indexes:
            self.indexes[uid] = Index(uid, primary_key)
        return self.indexes[uid]

    @staticmethod
    def handled(method: Any) -> Any:
        async def call(self: FakeMeilisearch, request: Request) -> Response:
            try:
                self.check_key(request)
                return await method(self, request)  # type: ignore[no-any-return]
            except ApiError as error:
                return error_response(error)

        return call

    # --------------------------------------------------------------------- routes

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "available"})

    @handled
    async def create_index(self, request: Request) -> Response:
        body = await self.body(request)
        uid = (body or {}).get("uid")
        if not isinstance(uid, str) or not _UID.match(uid):
            raise ApiError(400, "invalid_index_uid", f"`{uid}` is not a valid index uid.")

        def work() -> None:
            if uid in self.indexes:
                raise ApiError(409, "index_already_exists", f"Index `{uid}` already exists.")
            self.indexes[uid] = Index(uid, body.get("primaryKey"))

        return self.enqueue(uid, "indexCreation", work, {"primaryKey": body.get("primaryKey")})

    @handled
    async def index_route(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        if request.method == "GET":
            return JSONResponse(self.index(uid).info())

        def work() -> None:
            self.index(uid)
            del self.indexes[uid]

        return self.enqueue(uid, "indexDeletion", work)

    @handled
    async def stats(self, request: Request) -> Response:
        index = self.index(request.path_params["uid"])
        distribution: dict[str, int] = {}
        for document in index.documents.values():
            for key in document:
                distribution[key] = distribution.get(key, 0) + 1
        return JSONResponse({"numberOfDocuments": len(index.documents), "isIndexing": False,
                             "fieldDistribution": distribution})

    @handled
    async def settings_route(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        if request.method == "GET":
            return JSONResponse(self.index(uid).settings)
        body = await self.body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "The settings are a JSON object.")
        known = set(Index("x", None).settings)
        unknown = sorted(set(body) - known)
        if unknown:
            raise ApiError(400, "bad_request", f"Unknown field `{unknown[0]}`: expected one of {sorted(known)}")
        for rule in body.get("rankingRules") or []:
            if rule not in DEFAULT_RULES and not re.match(r"^\w+:(asc|desc)$", rule):
                raise ApiError(400, "invalid_settings_ranking_rules", f"`{rule}` ranking rule is invalid.")

        def work() -> None:
            index = self.ensure(uid)
            for key, value in body.items():
                if isinstance(value, dict) and isinstance(index.settings.get(key), dict):
                    index.settings[key] = {**index.settings[key], **value}
                else:
                    index.settings[key] = value
            index.updated_at = now()

        return self.enqueue(uid, "settingsUpdate", work, body)

    @handled
    async def add_documents(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        documents = await self.body(request)
        if isinstance(documents, dict):
            documents = [documents]
        if not isinstance(documents, list):
            raise ApiError(400, "malformed_payload", "The documents are a JSON array of objects.")
        primary = request.query_params.get("primaryKey")

        def work() -> None:
            index = self.ensure(uid, primary)
            if index.primary_key is None:
                index.primary_key = primary or "id"
            key = index.primary_key
            for document in documents:
                value = document.get(key)
                if not isinstance(value, (str, int)) or not _DOC_ID.match(str(value)):
                    raise ApiError(400, "invalid_document_id", f"Document identifier `{value}` is invalid.")
            for document in documents:
                index.documents[str(document[key])] = dict(document)
            index.updated_at = now()

        return self.enqueue(uid, "documentAdditionOrUpdate", work, {"receivedDocuments": len(documents)})

    @handled
    async def delete_documents(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        body = await self.body(request)
        expression = (body or {}).get("filter")
        if not isinstance(expression, str):
            raise ApiError(400, "invalid_document_filter", "The filter is a string.")

        def work() -> None:
            index = self.index(uid)
            tree = FilterParser(expression, index.settings["filterableAttributes"]).parse()
            for key in [k for k, d in index.documents.items() if evaluate(tree, d)]:
                del index.documents[key]

        return self.enqueue(uid, "documentDeletion", work, {"originalFilter": json.dumps(expression)})

    @handled
    async def get_document(self, request: Request) -> Response:
        index = self.index(request.path_params["uid"])
        document = index.documents.get(request.path_params["id"])
        if document is None:
            raise ApiError(404, "document_not_found", f"Document `{request.path_params['id']}` not found.")
        return JSONResponse(document)

    @handled
    async def swap(self, request: Request) -> Response:
        body = await self.body(request)
        if not isinstance(body, list) or not all(isinstance(s, dict) and len(s.get("indexes", [])) == 2 for s in body):
            raise ApiError(400, "invalid_swap_indexes", "Each swap names two indexes: [{\"indexes\": [a, b]}].")

        def work() -> None:
            for swap in body:
                a, b = swap["indexes"]
                first, second = self.index(a), self.index(b)
                first.uid, second.uid = b, a
                self.indexes[a], self.indexes[b] = second, first

        return self.enqueue(None, "indexSwap", work, {"swaps": body})

    @handled
    async def get_task(self, request: Request) -> Response:
        uid = request.path_params["uid"]
        if not 0 <= uid < len(self.tasks):
            raise ApiError(404, "task_not_found", f"Task `{uid}` not found.")
        return JSONResponse(self.tasks[uid])

    @handled
    async def search(self, request: Request) -> Response:
        started = datetime.now()
        index = self.index(request.path_params["uid"])
        body = await self.body(request) or {}
        settings = index.settings
        q = str(body.get("q") or "")
        offset, limit = int(body.get("offset", 0)), int(body.get("limit", 20))
        searchable = settings["searchableAttributes"]
        filterable = settings["filterableAttributes"]
        tree = None
        if body.get("filter"):
            if not isinstance(body["filter"], str):
                raise ApiError(400, "invalid_search_filter", "This fake takes filters as strings.")
            tree = FilterParser(body["filter"], filterable).parse()
        facets = body.get("facets") or []
        for facet in facets:
            if facet not in filterable:
                raise ApiError(400, "invalid_search_facets", f"Attribute `{facet}` is not filterable.")
        sort = []
        for item in body.get("sort") or []:
            attribute, _, direction = item.partition(":")
            if attribute not in settings["sortableAttributes"]:
                raise ApiError(400, "invalid_search_sort", f"Attribute `{attribute}` is not sortable.")
            if direction not in ("asc", "desc"):
                raise ApiError(400, "invalid_search_sort", f"Invalid syntax for the sort parameter: `{item}`.")
            sort.append((attribute, direction == "desc"))
        words = [w for w, _, _ in tokens(q)][:10]
        strategy = body.get("matchingStrategy", "last")
        typo = settings["typoTolerance"]
        matched: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for document in index.documents.values():
            if tree is not None and not evaluate(tree, document):
                continue
            info = self.match(document, words, searchable, typo, strategy)
            if info is not None:
                matched.append((document, info))
        rules = list(settings["rankingRules"])

        def key(pair: tuple[dict[str, Any], dict[str, Any]]) -> tuple[Any, ...]:
            document, info = pair
            parts: list[Any] = []
            for rule in rules:
                if rule == "sort":
                    for attribute, descending in sort:
                        value = document.get(attribute)
                        if value is None or isinstance(value, (list, dict)):
                            parts.append((1, 0))
                        elif isinstance(value, (int, float)):
                            parts.append((0, -value if descending else value))
                        else:
                            text = normalise(str(value))
                            parts.append((0, tuple(-ord(c) for c in text) + (1,) if descending else tuple(ord(c) for c in text)))
                elif rule == "words":
                    parts.append(-info["words"])
                elif rule == "typo":
                    parts.append(info["typos"])
                elif rule == "proximity":
                    parts.append(info["proximity"])
                elif rule == "attribute":
                    parts.append(info["attribute"])
                elif rule == "exactness":
                    parts.append(-info["exact"])
            return tuple(parts)

        matched.sort(key=key)
        facet_distribution: dict[str, dict[str, int]] = {}
        for facet in facets:
            counts: dict[str, int] = {}
            for document, _ in matched:
                for value in dict.fromkeys(_values(document, facet)):
                    label = str(value).lower() if isinstance(value, bool) else (
                        str(int(value)) if isinstance(value, float) and value.is_integer() else str(value))
                    counts[label] = counts.get(label, 0) + 1
            facet_distribution[facet] = dict(sorted(counts.items())[: settings["faceting"]["maxValuesPerFacet"]])
        reachable = matched[: settings["pagination"]["maxTotalHits"]]
        page = reachable[offset: offset + limit]
        highlight = body.get("attributesToHighlight") or []
        if highlight == ["*"]:
            highlight = searchable
        pre, post = body.get("highlightPreTag", "<em>"), body.get("highlightPostTag", "</em>")
        retrieve = body.get("attributesToRetrieve") or ["*"]
        hits = []
        for document, info in page:
            hit = dict(document) if retrieve == ["*"] else {k: v for k, v in document.items() if k in retrieve}
            if highlight:
                formatted = dict(hit)
                for attribute in highlight:
                    if isinstance(document.get(attribute), str):
                        formatted[attribute] = self.highlight(document[attribute], words, typo, pre, post)
                hit["_formatted"] = formatted
            if body.get("showRankingScore"):
                hit["_rankingScore"] = info["score"]
            hits.append(hit)
        response: dict[str, Any] = {
            "hits": hits, "query": q, "processingTimeMs": int((datetime.now() - started).total_seconds() * 1000),
            "limit": limit, "offset": offset, "estimatedTotalHits": len(matched),
        }
        if facets:
            response["facetDistribution"] = facet_distribution
        return JSONResponse(response)

    def match(self, document: dict[str, Any], words: list[str], searchable: list[str], typo: dict[str, Any],
              strategy: str) -> dict[str, Any] | None:
        if not words:
            return {"words": 0, "typos": 0, "proximity": 0, "attribute": 0, "exact": 0, "score": 1.0}
        attributes = [a for a in document if a in searchable] if searchable != ["*"] else list(document)
        order = searchable if searchable != ["*"] else attributes
        needed = len(words)
        while needed > 0:
            best: dict[str, Any] | None = None
            found_all = True
            typos = exact = 0
            first_attribute = len(order)
            positions: list[int] = []
            for position, word in enumerate(words[:needed]):
                prefix = position == len(words) - 1
                hit: tuple[int, int, int] | None = None  # (typos, attribute rank, token position)
                for rank, attribute in enumerate(order):
                    value = document.get(attribute)
                    if not isinstance(value, str):
                        continue
                    for i, (token, _, _) in enumerate(tokens(value)):
                        result = word_match(word, token, prefix, typo)
                        if result is not None and (hit is None or (result[0], rank) < hit[:2]):
                            hit = (result[0], rank, i)
                if hit is None:
                    found_all = False
                    break
                typos += hit[0]
                exact += hit[0] == 0
                first_attribute = min(first_attribute, hit[1])
                positions.append(hit[2])
            if found_all:
                proximity = sum(abs(b - a) for a, b in zip(positions, positions[1:]))
                score = needed / len(words) * (1 / (1 + typos)) * (1 / (1 + first_attribute)) ** 0.5
                best = {"words": needed, "typos": typos, "proximity": proximity, "attribute": first_attribute,
                        "exact": exact, "score": round(score, 6)}
                return best
            if strategy == "all":
                return None
            needed -= 1
        return None

    def highlight(self, text: str, words: list[str], typo: dict[str, Any], pre: str, post: str) -> str:
        if not words:
            return text
        out: list[str] = []
        last = 0
        for token, start, end in tokens(text):
            for position, word in enumerate(words):
                result = word_match(word, token, position == len(words) - 1, typo)
                if result is not None:
                    stop = start + result[1] if result[1] < len(token) else end
                    out.append(text[last:start] + pre + text[start:stop] + post)
                    last = stop
                    break
        out.append(text[last:])
        return "".join(out)


class FakeServer:
    """A fresh fake on a free loopback port, served by uvicorn in a thread of its own."""

    def __init__(self, api_key: str | None = None) -> None:
        self.fake = FakeMeilisearch(api_key)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.fake.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the Meilisearch fake did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextlib.asynccontextmanager
async def running_fake(api_key: str | None = None) -> AsyncIterator[str]:
    """Serve a fresh fake for the block; yield its URL."""
    server = FakeServer(api_key)
    await asyncio.to_thread(server.start)
    try:
        yield server.url
    finally:
        await asyncio.to_thread(server.stop)
