"""The search service: the registry of indexes, the backend, writes through the outbox,
queries across indexes with every hit re-checked against what the searcher may see, reindexing.

Writes (``plugin.search.index/delete/refresh``) are one ``search.update`` job each, written to
the outbox in the caller's transaction. The ``search.sync`` cron catches every index up with
its plugin's ``documents(since)``; ``coderic search reindex`` rebuilds an index from
``documents(None)`` into a new copy and swaps it in (see ``backends/base.py``).

Re-checking: a backend filters what it can (public, members, the owner's private documents);
every hit of a page is then checked again, against the plugin's ``fetch`` (the current
document: gone, or now hidden, means it is left out) and the permissions service for documents
visible to holders of a permission. So what a member may not see never appears, even while the
index lags behind.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from coderic_sdk import CurrentUser, FieldError, Problem, Resource, SearchDocument, SearchHit, SearchResults
from coderic_sdk.search import MAX_PER_PAGE, MEMBERS, PRIVATE, PUBLIC

from ..services.per_kernel import per_kernel
from .backends import BackendHit, BackendQuery, SearchBackend, backend_for
from .filters import FilterError, Node, normalise_value, parse_filter
from .registry import RegisteredIndex, SearchRegistry, StoredDocument

if TYPE_CHECKING:
    from ..kernel import Kernel

PLUGIN = "search"
UPDATE_JOB = "search.update"
REINDEX_JOB = "search.reindex"
BATCH = 500
MAX_QUERY = 1000
MAX_WINDOW = 1000  # results reachable by paging across several indexes
SLACK = 10  # extra hits asked for, to fill a page when the re-check drops some
logger = logging.getLogger("coderic.search")


@per_kernel
def search_for(kernel: Kernel) -> SearchService:
    return SearchService(kernel)


def unprocessable(field: str, reason: str) -> Problem:
    return Problem(422, reason, errors=[FieldError(field, reason)])


class SearchService:
    def __init__(self, kernel: Kernel, backend: SearchBackend | None = None) -> None:
        self.kernel = kernel
        self.registry = SearchRegistry.collect(kernel.hooks, kernel.contexts.values())
        self.backend = backend or backend_for(kernel.config.kernel)
        self._open = False

    # --------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self._open:
            return
        await self.backend.open()
        for index in self.registry:
            await self.backend.prepare(index)
        self._open = True

    async def stop(self) -> None:
        if self._open:
            self._open = False
            await self.backend.close()

    def index(self, name: str, plugin: str | None = None) -> RegisteredIndex:
        try:
            return self.registry.resolve(name, plugin)
        except KeyError:
            known = ", ".join(sorted(self.registry.indexes)) or "none"
            raise unprocessable("query.index", f"there is no search index {name!r} (indexes: {known})") from None

    # --------------------------------------------------------------------------- writing

    def _own(self, plugin: str, name: str, builtin: bool) -> RegisteredIndex:
        try:
            index = self.registry.resolve(name, plugin)
        except KeyError:
            raise ValueError(f"unknown search index {name!r}; indexes: {', '.join(sorted(self.registry.indexes)) or 'none'}") from None
        if index.plugin != plugin and not builtin:
            raise ValueError(f"plugin '{plugin}' may only write to its own search indexes, not {index.name!r}")
        return index

    async def enqueue_index(self, plugin: str, name: str, documents: SearchDocument | Iterable[SearchDocument], *,
                            builtin: bool = False) -> str:
        index = self._own(plugin, name, builtin)
        docs = [documents] if isinstance(documents, SearchDocument) else list(documents)
        stored = [index.store(d).as_dict() for d in docs]  # a bad document fails here, in the caller
        return await self._enqueue({"index": index.name, "upsert": stored})

    async def enqueue_delete(self, plugin: str, name: str, ids: str | Iterable[str], *, builtin: bool = False) -> str:
        index = self._own(plugin, name, builtin)
        return await self._enqueue({"index": index.name, "delete": [ids] if isinstance(ids, str) else [str(i) for i in ids]})

    async def enqueue_refresh(self, plugin: str, name: str, ids: str | Iterable[str], *, builtin: bool = False) -> str:
        index = self._own(plugin, name, builtin)
        if index.spec.fetch is None:
            raise ValueError(f"search index {index.name!r} has no fetch: use index() and delete()")
        return await self._enqueue({"index": index.name, "refresh": [ids] if isinstance(ids, str) else [str(i) for i in ids]})

    async def _enqueue(self, payload: dict[str, Any]) -> str:
        return await self.kernel.plugin(PLUGIN).jobs.enqueue(UPDATE_JOB, payload)

    async def apply(self, payload: Mapping[str, Any]) -> None:
        """Run a ``search.update`` job."""
        index = self.registry.indexes.get(str(payload["index"]))
        if index is None:
            logger.warning("search update for unknown index %r dropped", payload["index"])
            return
        await self.start()
        if payload.get("upsert"):
            await self.backend.upsert(index, [StoredDocument.from_dict(d) for d in payload["upsert"]])
        if payload.get("delete"):
            await self.backend.delete(index, list(payload["delete"]))
        if payload.get("refresh"):
            await self.refresh(index, list(payload["refresh"]))

    async def refresh(self, index: RegisteredIndex, ids: Sequence[str]) -> None:
        assert index.spec.fetch is not None
        current = await index.spec.fetch(list(ids))
        found = [index.store(current[i]) for i in ids if i in current]
        await self.backend.upsert(index, found)
        await self.backend.delete(index, [i for i in ids if i not in current])

    # --------------------------------------------------------------------------- sync and rebuild

    async def _batches(self, index: RegisteredIndex, since: datetime | None) -> AsyncIterator[list[StoredDocument]]:
        batch: list[StoredDocument] = []
        async for document in index.spec.documents(since):
            try:
                batch.append(index.store(document))
            except ValueError as exc:
                logger.warning("search: document left out of %s: %s", index.name, exc)
                continue
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    async def catch_up(self, index: RegisteredIndex) -> int:
        """Index what changed since the last catch-up (all of it the first time); how many."""
        await self.start()
        started = datetime.now(timezone.utc)
        synced = await self.backend.get_state(index, "synced_at")
        since = datetime.fromisoformat(synced) if synced else None
        if since is None:
            return await self.reindex(index.name)
        count = 0
        async for batch in self._batches(index, since):
            await self.backend.upsert(index, batch)
            count += len(batch)
        await self.backend.set_state(index, "synced_at", started.isoformat())
        return count

    async def reindex(self, name: str) -> int:
        """Rebuild ``name`` from its plugin's documents into a new copy, then swap it in."""
        await self.start()
        index = self.index(name)
        started = datetime.now(timezone.utc)
        count = await self.backend.rebuild(index, self._batches(index, None))
        # What changed while the copy was filled, written again to the live copy.
        async for batch in self._batches(index, started):
            await self.backend.upsert(index, batch)
        await self.backend.set_state(index, "synced_at", started.isoformat())
        logger.info("search: %s rebuilt with %d documents", index.name, count)
        return count

    # --------------------------------------------------------------------------- querying

    def _check(self, indexes: Sequence[RegisteredIndex], filter: str | None, facets: Sequence[str],
               sort: Sequence[str]) -> tuple[dict[str, Node | None], list[tuple[str, bool]]]:
        trees: dict[str, Node | None] = {}
        for index in indexes:
            try:
                trees[index.name] = parse_filter(filter, index.filterable)
            except FilterError as exc:
                where = f" in index {index.name}" if len(indexes) > 1 else ""
                raise unprocessable("query.filter", f"bad filter{where}: {exc}") from None
        for facet in facets:
            if not any(facet in i.spec.facetable for i in indexes):
                known = sorted({f for i in indexes for f in i.spec.facetable})
                raise unprocessable("query.facets", f"{facet!r} is not a facetable attribute (facetable: {', '.join(known) or 'none'})")
        if len(facets) > 10:
            raise unprocessable("query.facets", "at most 10 facets")
        order: list[tuple[str, bool]] = []
        for item in sort:
            attribute, _, direction = item.partition(":")
            if direction not in ("", "asc", "desc"):
                raise unprocessable("query.sort", f"sort {item!r}: the direction is asc or desc")
            missing = [i.name for i in indexes if attribute not in i.spec.sortable]
            if missing:
                known = sorted(set.intersection(*(set(i.spec.sortable) for i in indexes)))
                raise unprocessable("query.sort", f"{attribute!r} is not a sortable attribute (sortable: {', '.join(known) or 'none'})")
            order.append((attribute, direction == "desc"))
        if len(order) > 3:
            raise unprocessable("query.sort", "sort by at most 3 attributes")
        return trees, order

    async def query(
        self, names: str | Sequence[str] | None, q: str = "", *, user: CurrentUser | None, filter: str | None = None,
        facets: Sequence[str] = (), sort: Sequence[str] = (), page: int = 1, per_page: int = 20, plugin: str | None = None,
    ) -> SearchResults:
        started = time.perf_counter()
        if names is None or (not isinstance(names, str) and not names):
            indexes = list(self.registry)
        else:
            listed = [names] if isinstance(names, str) else list(names)
            indexes = list(dict.fromkeys(self.index(n, plugin) for n in listed))
        if not indexes:
            return SearchResults([], 0, {}, page, per_page, 0.0)
        if len(q) > MAX_QUERY:
            raise unprocessable("query.q", f"a query is at most {MAX_QUERY} characters")
        if not 1 <= per_page <= MAX_PER_PAGE or page < 1:
            raise unprocessable("query.page", f"page starts at 1; per_page is 1 to {MAX_PER_PAGE}")
        q = q.replace("\x00", " ")
        facets = list(dict.fromkeys(facets))
        trees, order = self._check(indexes, filter, facets, sort)
        offset = (page - 1) * per_page
        if len(indexes) > 1 and offset + per_page > MAX_WINDOW:
            raise unprocessable("query.page", f"searching several indexes reaches the first {MAX_WINDOW} results only")
        await self.start()
        viewer = user.id if user is not None else None
        merged: list[tuple[RegisteredIndex, BackendHit]] = []
        total = 0
        total_estimated = facets_estimated = False
        counts: dict[str, dict[str, int]] = {f: {} for f in facets}
        for index in indexes:
            own_facets = tuple(f for f in facets if f in index.spec.facetable)
            window_offset, window = (offset, per_page) if len(indexes) == 1 else (0, offset + per_page)
            kept, index_total, index_facets, estimates = await self._page(
                index, BackendQuery(q, trees[index.name], own_facets, tuple(order), window_offset, window + SLACK, viewer),
                user, window,
            )
            merged.extend((index, hit) for hit in kept)
            total += index_total
            total_estimated |= estimates[0]
            facets_estimated |= estimates[1] and bool(own_facets)
            for name, values in index_facets.items():
                for value, number in values.items():
                    counts[name][value] = counts[name].get(value, 0) + number
        if len(indexes) > 1:
            merged.sort(key=lambda pair: self._merge_key(pair, order, bool(q.strip())))
            merged = merged[offset:offset + per_page]
        hits = [SearchHit(index.name, h.id, round(h.score, 6), dict(h.data), dict(h.highlights)) for index, h in merged]
        return SearchResults(hits, total, counts, page, per_page, (time.perf_counter() - started) * 1000,
                             total_estimated, facets_estimated)

    @staticmethod
    def _merge_key(pair: tuple[RegisteredIndex, BackendHit], order: Sequence[tuple[str, bool]], ranked: bool) -> tuple[Any, ...]:
        index, hit = pair
        key: list[Any] = []
        for attribute, descending in order:
            spec = index.attributes[attribute]
            value = hit.data.get(attribute)
            try:
                value = None if value is None else normalise_value(spec, value)
            except ValueError:
                value = None
            if value is None:
                key.append((1, 0))
            elif isinstance(value, (int, float)):
                key.append((0, -value if descending else value))
            else:
                text = str(value)
                key.append((0, tuple(-ord(c) for c in text) + (1,) if descending else text))
        key.append(-hit.score if ranked else 0)
        key.append(index.name)
        key.append(hit.id)
        return tuple(key)

    async def _page(self, index: RegisteredIndex, query: BackendQuery, user: CurrentUser | None,
                    wanted: int) -> tuple[list[BackendHit], int, dict[str, dict[str, int]], tuple[bool, bool]]:
        """Up to ``wanted`` hits the searcher may see, asking the backend again (a few times at
        most) when the re-check left the page short."""
        result = await self.backend.search(index, query)
        total, facets = result.total, result.facets
        kept = await self.visible(index, result.hits, user)
        asked = query.offset + query.limit
        rounds = 0
        while len(kept) < wanted and asked < total and rounds < 3:
            rounds += 1
            more = await self.backend.search(index, BackendQuery(
                query.q, query.filter, (), query.sort, asked, max(query.limit, wanted - len(kept) + SLACK), query.viewer,
            ))
            if not more.hits:
                break
            asked += len(more.hits)
            seen = {h.id for h in kept}
            kept.extend(h for h in await self.visible(index, more.hits, user) if h.id not in seen)
        dropped = len(result.hits) - len([h for h in result.hits if h in kept])
        estimates = (result.total_estimated or dropped > 0, result.facets_estimated)
        return kept[:wanted], max(total - dropped, len(kept[:wanted])), facets, estimates

    async def visible(self, index: RegisteredIndex, hits: Sequence[BackendHit], user: CurrentUser | None) -> list[BackendHit]:
        """The hits ``user`` may see now: documents still there and still visible to them."""
        if not hits:
            return []
        current: Mapping[str, SearchDocument] | None = None
        if index.spec.fetch is not None:
            current = await index.spec.fetch([h.id for h in hits])
        kept: list[BackendHit] = []
        for hit in hits:
            if current is not None:
                document = current.get(hit.id)
                if document is None:
                    continue
                visibility, owner, resource = document.visibility, document.owner_id, document.resource
                fresh = _fresh(index, document, hit)
                if fresh is None:
                    continue
                hit = fresh
            else:
                visibility, owner = hit.visibility, hit.owner_id
                resource = Resource(hit.resource_type, hit.resource_id) if hit.resource_type and hit.resource_id else None
            if await self.may_see(user, visibility, owner, resource):
                kept.append(hit)
        return kept

    async def may_see(self, user: CurrentUser | None, visibility: str, owner: str | None, resource: Resource | None) -> bool:
        if visibility == PUBLIC:
            return True
        if user is None:
            if visibility in (MEMBERS, PRIVATE):
                return False
        elif owner is not None and owner == user.id:
            return True
        if visibility == MEMBERS:
            return True
        if visibility == PRIVATE:
            return False
        return await self.kernel.permissions.allowed(user, visibility, resource)


def _fresh(index: RegisteredIndex, document: SearchDocument, hit: BackendHit) -> BackendHit | None:
    """``hit`` showing the document as it is now: its current fields, and only the highlights
    whose text it still holds (a field made private since it was indexed shows nothing of it)."""
    try:
        stored = index.store(document)
    except ValueError:
        return None
    highlights = {}
    for field, marked in hit.highlights.items():
        plain = html.unescape(marked.replace("<mark>", "").replace("</mark>", ""))
        text = stored.texts.get(field, "")
        pieces = [piece.strip() for piece in plain.split("…") if piece.strip()]
        if pieces and all(piece in text for piece in pieces):
            highlights[field] = marked
    return BackendHit(hit.id, hit.score, stored.data, stored.visibility, stored.owner_id, stored.resource_type,
                      stored.resource_id, highlights)


class PluginSearch:
    """``plugin.search``: the SDK's ``Search`` for one plugin (built-ins may write to any index)."""

    def __init__(self, service: SearchService, plugin: str, builtin: bool) -> None:
        self.service = service
        self.plugin = plugin
        self.builtin = builtin

    async def index(self, index: str, documents: SearchDocument | Iterable[SearchDocument]) -> str:
        return await self.service.enqueue_index(self.plugin, index, documents, builtin=self.builtin)

    async def delete(self, index: str, ids: str | Iterable[str]) -> str:
        return await self.service.enqueue_delete(self.plugin, index, ids, builtin=self.builtin)

    async def refresh(self, index: str, ids: str | Iterable[str]) -> str:
        return await self.service.enqueue_refresh(self.plugin, index, ids, builtin=self.builtin)

    async def query(
        self, index: str | Sequence[str], q: str = "", *, user: CurrentUser | None, filter: str | None = None,
        facets: Sequence[str] = (), sort: Sequence[str] = (), page: int = 1, per_page: int = 20,
    ) -> SearchResults:
        return await self.service.query(index, q, user=user, filter=filter, facets=facets, sort=sort, page=page,
                                        per_page=per_page, plugin=self.plugin)
