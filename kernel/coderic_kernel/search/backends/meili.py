"""Meilisearch, through its official Python client (``coderic-kernel[meilisearch]``).

Each index is a Meilisearch index ``<prefix>__<plugin>__<name>`` whose documents hold the text
fields (``t_<field>``, searchable in the order of their weights), the attributes (``a_<name>``,
filterable, sortable as declared), what a hit shows (``_data``) and who may see it. Settings
put the ``sort`` ranking rule first (an explicit sort wins over relevance, as on the SQL
backends) and ask every query word to match (``matchingStrategy: all``). Every write is a
task the backend waits for. Filters are compiled from the parsed filter into Meilisearch's
syntax with every value quoted, so nothing the user typed is filter syntax. ``rebuild`` fills
``...__new`` and swaps it in with ``/swap-indexes``. Small state (``synced_at``) lives in the
index ``<prefix>__state``.

The client is synchronous: calls run in worker threads. Verified against a local fake of the
HTTP API (``tests/meilisearch_fake.py``), not a real server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any, TypeVar

from ..filters import Compare, Condition, Exists, In, Node, Range, render
from ..registry import MARK_END, MARK_START, RegisteredIndex, StoredDocument
from .base import BackendHit, BackendQuery, BackendResult, SearchBackend, escape_marked

T = TypeVar("T")
TASK_TIMEOUT_MS = 120_000
MEILI_EXACT_HITS = 1000  # Meilisearch's default maxTotalHits
RULES = ["sort", "words", "typo", "proximity", "attribute", "exactness"]
RESERVED = ("_id", "_vis", "_owner")


def quote(value: Any) -> str:
    if isinstance(value, bool):
        return '"true"' if value else '"false"'
    if isinstance(value, (int, float)):
        return repr(float(value))
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def document_key(doc_id: str) -> str:
    """A Meilisearch primary key for any id: letters, digits, ``-`` and ``_`` only."""
    return "h" + doc_id.encode("utf-8").hex()


def compile_filter(node: Node) -> str:
    def condition(n: Condition, negated: bool) -> str:
        field = f"a_{n.attribute}"
        if isinstance(n, Exists):
            return f"{field} EXISTS"
        if isinstance(n, In):
            return f"{field} IN [{', '.join(quote(v) for v in n.values)}]"
        if isinstance(n, Range):
            return f"{field} {quote(n.low)} TO {quote(n.high)}"
        assert isinstance(n, Compare)
        return f"{field} {n.op} {quote(n.value)}"

    return render(node, condition)


class MeilisearchBackend(SearchBackend):
    kind = "meilisearch"

    def __init__(self, url: str, api_key: str | None, *, prefix: str = "coderic") -> None:
        self.url = url
        self.api_key = api_key
        self.prefix = prefix
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import meilisearch
            except ImportError as exc:  # pragma: no cover - an operator's installation problem
                raise RuntimeError("the Meilisearch backend needs coderic-kernel[meilisearch]") from exc
            self._client = meilisearch.Client(self.url, self.api_key, timeout=30)
        return self._client

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.to_thread(work)

    def _wait(self, task: Any) -> Any:
        done = self.client.wait_for_task(task.task_uid, timeout_in_ms=TASK_TIMEOUT_MS, interval_in_ms=10)
        if done.status != "succeeded":
            error = done.error or {}
            raise RuntimeError(f"Meilisearch task {done.uid} ({done.type}) {done.status}: {error.get('message', error)}")
        return done

    def uid(self, index: RegisteredIndex, suffix: str = "") -> str:
        return f"{self.prefix}__{index.slug}{suffix}"

    @property
    def state_uid(self) -> str:
        return f"{self.prefix}__state"

    def _exists(self, uid: str) -> bool:
        from meilisearch.errors import MeilisearchApiError

        try:
            self.client.get_raw_index(uid)
            return True
        except MeilisearchApiError as exc:
            if exc.code == "index_not_found":
                return False
            raise

    async def open(self) -> None:
        def work() -> None:
            self._wait(self.client.index(self.state_uid).update_settings({"filterableAttributes": ["index"]}))

        await self._run(work)

    async def close(self) -> None:
        self._client = None

    async def ping(self) -> None:
        await self._run(lambda: self.client.health())

    async def get_state(self, index: RegisteredIndex, key: str) -> str | None:
        from meilisearch.errors import MeilisearchApiError

        def work() -> str | None:
            try:
                document = self.client.index(self.state_uid).get_document(document_key(f"{index.name}:{key}"))
            except MeilisearchApiError as exc:
                if exc.code in ("document_not_found", "index_not_found"):
                    return None
                raise
            return str(getattr(document, "value", None) or dict(document).get("value"))

        return await self._run(work)

    async def set_state(self, index: RegisteredIndex, key: str, value: str) -> None:
        def work() -> None:
            entry = {"id": document_key(f"{index.name}:{key}"), "index": index.name, "value": value}
            self._wait(self.client.index(self.state_uid).add_documents([entry], primary_key="id"))

        await self._run(work)

    # -------------------------------------------------------------------------- writing

    def settings(self, index: RegisteredIndex) -> dict[str, Any]:
        ranked = sorted(index.spec.fields, key=lambda f: -f.weight)  # stable: declaration order on a tie
        return {
            "searchableAttributes": [f"t_{f.name}" for f in ranked],
            "filterableAttributes": [*RESERVED, *(f"a_{a.name}" for a in index.spec.attributes if a.filterable or a.facetable)],
            "sortableAttributes": [f"a_{a}" for a in index.spec.sortable],
            "rankingRules": RULES,
            "typoTolerance": {"enabled": True},
            "pagination": {"maxTotalHits": 1000},
            "faceting": {"maxValuesPerFacet": 100},
        }

    def _configure(self, uid: str, index: RegisteredIndex) -> None:
        self._wait(self.client.index(uid).update_settings(self.settings(index)))

    async def prepare(self, index: RegisteredIndex) -> None:
        signature = await self.get_state(index, "signature")

        def work() -> bool:
            if self._exists(self.uid(index)) and signature == index.signature():
                return False
            if not self._exists(self.uid(index)):
                self._wait(self.client.create_index(self.uid(index), {"primaryKey": "id"}))
            self._configure(self.uid(index), index)
            return True

        if await self._run(work):
            await self.set_state(index, "signature", index.signature())

    @staticmethod
    def _documents(index: RegisteredIndex, documents: Sequence[StoredDocument]) -> list[dict[str, Any]]:
        out = []
        for d in documents:
            entry: dict[str, Any] = {"id": document_key(d.id), "_id": d.id, "_vis": d.visibility, "_owner": d.owner_id,
                                     "_rtype": d.resource_type, "_rid": d.resource_id, "_data": json.dumps(d.data)}
            for name in index.fields:
                entry[f"t_{name}"] = d.texts.get(name, "")
            for name, value in d.attrs.items():
                entry[f"a_{name}"] = value
            out.append(entry)
        return out

    def _targets(self, index: RegisteredIndex) -> list[str]:
        live = [self.uid(index)]
        return live + ([self.uid(index, "__new")] if self._exists(self.uid(index, "__new")) else [])

    async def upsert(self, index: RegisteredIndex, documents: Sequence[StoredDocument]) -> None:
        if not documents:
            return
        entries = self._documents(index, documents)

        def work() -> None:
            for uid in self._targets(index):
                self._wait(self.client.index(uid).add_documents(entries, primary_key="id"))

        await self._run(work)

    async def delete(self, index: RegisteredIndex, ids: Sequence[str]) -> None:
        if not ids:
            return
        expression = f"_id IN [{', '.join(quote(i) for i in ids)}]"

        def work() -> None:
            for uid in self._targets(index):
                self._wait(self.client.index(uid).delete_documents(filter=expression))

        await self._run(work)

    async def rebuild(self, index: RegisteredIndex, batches: AsyncIterable[Sequence[StoredDocument]]) -> int:
        new = self.uid(index, "__new")

        def create() -> None:
            if self._exists(new):
                self._wait(self.client.delete_index(new))
            self._wait(self.client.create_index(new, {"primaryKey": "id"}))
            self._configure(new, index)

        await self._run(create)
        count = 0
        async for batch in batches:
            entries = self._documents(index, batch)
            await self._run(lambda entries=entries: self._wait(self.client.index(new).add_documents(entries, primary_key="id")))
            count += len(batch)

        def swap() -> None:
            if not self._exists(self.uid(index)):
                self._wait(self.client.create_index(self.uid(index), {"primaryKey": "id"}))
            self._wait(self.client.swap_indexes([{"indexes": [self.uid(index), new]}]))
            self._wait(self.client.delete_index(new))

        await self._run(swap)
        await self.set_state(index, "signature", index.signature())
        return count

    async def count(self, index: RegisteredIndex) -> int:
        return int(await self._run(lambda: self.client.index(self.uid(index)).get_stats().number_of_documents))

    # -------------------------------------------------------------------------- reading

    async def search(self, index: RegisteredIndex, query: BackendQuery) -> BackendResult:
        filters: list[str] = []
        if query.filter is not None:
            filters.append(compile_filter(query.filter))
        if query.viewer is None:
            filters.append('_vis NOT IN ["members", "private"]')
        else:
            filters.append(f'(_vis != "private" OR _owner = {quote(query.viewer)})')
        params: dict[str, Any] = {
            "offset": query.offset, "limit": query.limit, "filter": " AND ".join(filters),
            "matchingStrategy": "all", "showRankingScore": True,
            "attributesToRetrieve": ["_id", "_vis", "_owner", "_rtype", "_rid", "_data"],
        }
        if query.facets:
            params["facets"] = [f"a_{f}" for f in query.facets]
        if query.sort:
            params["sort"] = [f"a_{a}:{'desc' if d else 'asc'}" for a, d in query.sort]
        if query.highlight and query.q.strip():
            params["attributesToHighlight"] = [f"t_{f}" for f in index.fields]
            params["highlightPreTag"] = MARK_START
            params["highlightPostTag"] = MARK_END
        answer = await self._run(lambda: self.client.index(self.uid(index)).search(query.q, params))
        hits = []
        for raw in answer.get("hits", []):
            hit = BackendHit(id=raw["_id"], score=float(raw.get("_rankingScore") or 0), data=json.loads(raw["_data"]),
                             visibility=raw["_vis"], owner_id=raw.get("_owner"), resource_type=raw.get("_rtype"),
                             resource_id=raw.get("_rid"))
            formatted = raw.get("_formatted") or {}
            for name in index.fields:
                text = formatted.get(f"t_{name}")
                marked = escape_marked(text) if isinstance(text, str) else None
                if marked is not None:
                    hit.highlights[name] = marked
            hits.append(hit)
        facets = {f: {str(k): int(v) for k, v in (answer.get("facetDistribution") or {}).get(f"a_{f}", {}).items()}
                  for f in query.facets}
        total = int(answer.get("estimatedTotalHits", answer.get("totalHits", len(hits))))
        # Meilisearch counts exactly up to its maxTotalHits (1,000 unless configured), then estimates
        estimated = "totalHits" not in answer and total >= MEILI_EXACT_HITS
        return BackendResult(hits=hits, total=total, facets=facets, total_estimated=estimated)
