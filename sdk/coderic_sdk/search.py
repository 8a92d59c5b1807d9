"""Search: the indexes a plugin declares and the ``plugin.search`` service it feeds and asks.

A plugin declares each index once (``register_search_indexes``): its text fields with their
weights, the attributes members may filter, facet and sort on, its language, how to produce
its documents (all of them, or those changed since a time) and, for each document, who may see
it. The kernel keeps the index in the operator's backend (SQLite FTS5, PostgreSQL full text
or Meilisearch: ``CODERIC_SEARCH_URL``) without the plugin knowing which.

The plugin then tells the kernel what changed (``plugin.search.index`` / ``delete`` /
``refresh``, written to the outbox in its transaction) and asks (``plugin.search.query``) or
exposes ``GET /api/v1/<plugin>/search`` with :func:`search_route`. Every result is checked
again against the document's current visibility before it is shown, so a deleted or newly
private document never appears, even before the index has caught up. See ``docs/search.md``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from .permissions import Resource
from .routes import RequestContext, Route

if TYPE_CHECKING:
    from .auth import CurrentUser

#: Languages the backends know how to stem (PostgreSQL text search configurations of the same name).
LANGUAGES = ("english", "spanish", "simple")
Language = Literal["english", "spanish", "simple"]
#: How an attribute's values compare: ``keyword`` (exact strings), ``keywords`` (a list of
#: strings: ``tags = python`` matches when one of them is ``python``), ``number``, ``boolean``,
#: ``datetime`` (ISO 8601 strings, compared as instants).
AttributeType = Literal["keyword", "keywords", "number", "boolean", "datetime"]
ATTRIBUTE_TYPES: tuple[AttributeType, ...] = ("keyword", "keywords", "number", "boolean", "datetime")
#: Who may see a document: anyone (``public``), anyone signed in (``members``), only its
#: ``owner_id`` (``private``), or holders of a permission ``<plugin>.<action>`` (on the
#: document's ``resource`` when it has one, so a role granted on that resource counts).
PUBLIC = "public"
MEMBERS = "members"
PRIVATE = "private"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_INDEX = re.compile(r"^[a-z][a-z0-9_]{0,39}\.[a-z][a-z0-9_]{0,39}$")
MAX_PER_PAGE = 100


def valid_index_name(name: str) -> bool:
    """``<plugin>.<name>``, both lower-case letters, digits and ``_``."""
    return bool(_INDEX.match(name))


@dataclass(frozen=True, slots=True)
class SearchField:
    """A text field searched for the query words. ``weight`` ranks matches in it: a title of
    weight 3 outranks a body of weight 1 (PostgreSQL maps the weights to its A-D classes by rank)."""

    name: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"search field {self.name!r}: a name is a lower-case letter, then letters, digits or '_'")
        if not self.weight > 0:
            raise ValueError(f"search field {self.name!r}: weight must be positive")


@dataclass(frozen=True, slots=True)
class SearchAttribute:
    """A structured attribute of the documents: filtered (``filter=``), counted (``facets=``)
    or sorted on (``sort=``) as the flags say. Facets suit ``keyword``, ``keywords`` and ``boolean``."""

    name: str
    type: AttributeType = "keyword"
    filterable: bool = True
    facetable: bool = False
    sortable: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"search attribute {self.name!r}: a name is a lower-case letter, then letters, digits or '_'")
        if self.type not in ATTRIBUTE_TYPES:
            raise ValueError(f"search attribute {self.name!r}: type {self.type!r} is not one of {list(ATTRIBUTE_TYPES)}")
        if self.facetable and self.type not in ("keyword", "keywords", "boolean"):
            raise ValueError(f"search attribute {self.name!r}: only keyword, keywords and boolean attributes are facetable")
        if self.sortable and self.type == "keywords":
            raise ValueError(f"search attribute {self.name!r}: a list of keywords cannot be sorted on")


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """One document of an index.

    ``id`` is the plugin's id of the thing (unique within the index). ``fields`` holds the text
    of the index's fields and the values of its attributes (anything else is kept and returned
    with the hit, JSON-safe, at most 64 KiB). ``visibility`` is ``public``, ``members``,
    ``private`` (``owner_id`` alone) or a permission ``<plugin>.<action>``, checked on
    ``resource`` when given. ``owner_id`` always sees their document.
    """

    id: str
    fields: Mapping[str, Any]
    visibility: str = PUBLIC
    owner_id: str | None = None
    resource: Resource | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or len(self.id) > 200:
            raise ValueError("a search document's id is a non-empty string of at most 200 characters")
        if self.visibility not in (PUBLIC, MEMBERS, PRIVATE) and "." not in self.visibility:
            raise ValueError(
                f"search document {self.id!r}: visibility {self.visibility!r} is not public, members, private "
                "or a permission '<plugin>.<action>'"
            )
        if self.visibility == PRIVATE and not self.owner_id:
            raise ValueError(f"search document {self.id!r}: a private document needs an owner_id")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "fields": dict(self.fields), "visibility": self.visibility, "owner_id": self.owner_id,
            "resource": None if self.resource is None else [self.resource.type, self.resource.id],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchDocument:
        resource = data.get("resource")
        return cls(
            id=str(data["id"]), fields=dict(data.get("fields") or {}), visibility=str(data.get("visibility") or PUBLIC),
            owner_id=data.get("owner_id"), resource=None if not resource else Resource(str(resource[0]), str(resource[1])),
        )


#: ``documents(since)``: every document (``since`` is ``None``, a full reindex) or those changed
#: since that instant (including ones that became hidden: yield them with their new visibility).
DocumentProducer = Callable[[datetime | None], AsyncIterable[SearchDocument]]
#: ``fetch(ids)``: the current documents of these ids; an id missing from the answer was deleted.
DocumentFetcher = Callable[[Sequence[str]], Awaitable[Mapping[str, SearchDocument]]]


@dataclass(frozen=True, slots=True)
class SearchIndex:
    """An index a plugin declares, named ``<plugin>.<name>`` once registered (give ``name``
    alone or already prefixed).

    ``fields`` are searched (at least one; the heaviest is the title, shown first in highlights).
    ``attributes`` are filtered, faceted and sorted on. ``language`` picks stemming and stop
    words. ``documents`` produces the documents for ``coderic search reindex``; ``fetch``
    returns the current version of documents by id, and is what makes results re-checked
    against the truth (deleted, or no longer visible to the searcher) before they are shown:
    without it, the visibility stored in the index is used.
    """

    name: str
    fields: tuple[SearchField, ...]
    documents: DocumentProducer
    attributes: tuple[SearchAttribute, ...] = ()
    language: Language = "english"
    fetch: DocumentFetcher | None = None
    description: str = ""

    def __post_init__(self) -> None:
        short = self.name.rsplit(".", 1)[-1]
        if not _NAME.match(short) or self.name.count(".") > 1:
            raise ValueError(f"search index {self.name!r}: a name is '<name>' or '<plugin>.<name>' (lower case)")
        if not self.fields:
            raise ValueError(f"search index {self.name!r} needs at least one text field")
        names = [f.name for f in self.fields] + [a.name for a in self.attributes]
        if len(set(names)) != len(names):
            raise ValueError(f"search index {self.name!r}: a field or attribute is named twice")
        if {"id", "score", "index"} & set(names):
            raise ValueError(f"search index {self.name!r}: 'id', 'score' and 'index' are reserved names")
        if self.language not in LANGUAGES:
            raise ValueError(f"search index {self.name!r}: language {self.language!r} is not one of {list(LANGUAGES)}")

    @property
    def filterable(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes if a.filterable)

    @property
    def facetable(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes if a.facetable)

    @property
    def sortable(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attributes if a.sortable)

    def attribute(self, name: str) -> SearchAttribute | None:
        return next((a for a in self.attributes if a.name == name), None)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result. ``highlights`` maps fields to HTML-escaped text in which the matched words are
    wrapped in ``<mark>``...``</mark>`` (safe to insert as HTML: nothing else is markup)."""

    index: str
    id: str
    score: float
    fields: Mapping[str, Any]
    highlights: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "score": self.score, "fields": dict(self.fields),
                "highlights": dict(self.highlights)}


@dataclass(frozen=True, slots=True)
class SearchResults:
    """A page of results. ``facets`` maps each asked attribute to value -> count, over every
    match, not just this page. ``total`` and the facet counts are exact up to 500 matches (before
    the permission re-check removes what the searcher may not see); past that the backends
    estimate them, and ``total_estimated`` / ``facets_estimated`` say so. The page itself is
    always exact."""

    hits: list[SearchHit]
    total: int
    facets: Mapping[str, Mapping[str, int]]
    page: int
    per_page: int
    took_ms: float
    total_estimated: bool = False
    facets_estimated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"hits": [h.as_dict() for h in self.hits], "total": self.total,
                "total_estimated": self.total_estimated, "facets": {k: dict(v) for k, v in self.facets.items()},
                "facets_estimated": self.facets_estimated, "page": self.page,
                "per_page": self.per_page, "took_ms": round(self.took_ms, 3)}


@runtime_checkable
class Search(Protocol):
    """``plugin.search``: feeds this plugin's indexes and asks them.

    ``index`` may be ``<name>`` (this plugin's) or ``<plugin>.<name>``; a plugin writes only to
    its own indexes. Writes go to the outbox in the caller's transaction, if any: the index
    changes if and only if the change that caused it commits. They return the job's id.
    """

    async def index(self, index: str, documents: SearchDocument | Iterable[SearchDocument]) -> str:
        """Add or replace these documents."""
        ...

    async def delete(self, index: str, ids: str | Iterable[str]) -> str:
        """Remove these documents (already hidden from results once ``fetch`` no longer finds them)."""
        ...

    async def refresh(self, index: str, ids: str | Iterable[str]) -> str:
        """Re-read these documents with the index's ``fetch`` when the job runs: indexed if found,
        deleted if not. The simplest call after any change."""
        ...

    async def query(
        self, index: str | Sequence[str], q: str = "", *, user: CurrentUser | None, filter: str | None = None,
        facets: Sequence[str] = (), sort: Sequence[str] = (), page: int = 1, per_page: int = 20,
    ) -> SearchResults:
        """Search one or several indexes as ``user`` (``None``: a guest) sees them.

        ``filter`` is the documented filter syntax (``status = open AND tags IN [python, go]``);
        ``sort`` items are ``attribute`` or ``attribute:desc``. A bad filter, facet or sort raises
        ``coderic_sdk.Problem`` 422 naming the problem.
        """
        ...


class SearchQuery(BaseModel):
    """The query string of a search route: ``?q=&filter=&facets=a,b&sort=a:desc&page=``."""

    q: str = Field("", max_length=1000, description="What to look for, in the words members type.")
    filter: str | None = Field(None, max_length=2000, description="A filter expression (docs/search.md).")
    facets: str = Field("", max_length=500, description="Comma-separated attributes to count values of.")
    sort: str = Field("", max_length=500, description="Comma-separated 'attribute' or 'attribute:desc'.")
    page: int = Field(1, ge=1, le=1000)
    per_page: int = Field(20, ge=1, le=MAX_PER_PAGE)

    def facet_list(self) -> list[str]:
        return [f.strip() for f in self.facets.split(",") if f.strip()]

    def sort_list(self) -> list[str]:
        return [s.strip() for s in self.sort.split(",") if s.strip()]


class SearchHitModel(BaseModel):
    index: str
    id: str
    score: float
    fields: dict[str, Any]
    highlights: dict[str, str]


class SearchResultsModel(BaseModel):
    """A page of search results (the body of every search route)."""

    hits: list[SearchHitModel]
    total: int
    total_estimated: bool = Field(description="Whether `total` is an estimate (past 500 matches)")
    facets: dict[str, dict[str, int]]
    facets_estimated: bool = Field(description="Whether the facet counts are estimates (past 500 matches)")
    page: int
    per_page: int
    took_ms: float


def search_route(index: str, *, path: str = "/search", name: str = "search", summary: str = "",
                 description: str = "", permission: str | None = None, authenticated: bool = False,
                 rate_limit: str | None = None, tags: tuple[str, ...] = ()) -> Route:
    """A ``GET`` route searching this plugin's ``index`` (``<name>`` or ``<plugin>.<name>``) for
    ``register_routes``: ``GET /api/v1/<plugin>/search?q=&filter=&facets=&sort=&page=``."""

    async def endpoint(ctx: RequestContext[None, SearchQuery, Any]) -> dict[str, Any]:
        query = ctx.query
        results = await ctx.plugin.search.query(  # type: ignore[attr-defined]
            index, query.q, user=ctx.user, filter=query.filter, facets=query.facet_list(), sort=query.sort_list(),
            page=query.page, per_page=query.per_page,
        )
        return results.as_dict()  # type: ignore[no-any-return]

    return Route(
        "GET", path, endpoint, name=name, query=SearchQuery, response=SearchResultsModel,
        summary=summary or f"Search {index}", description=description or "Full-text search with filters and facets (docs/search.md).",
        permission=permission, authenticated=authenticated, rate_limit=rate_limit, tags=tags,
        responses={422: "A bad query, filter, facet or sort (the problem names it)."},
    )
