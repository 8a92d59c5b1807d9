"""PostgreSQL full text.

Each index is a table of the ``coderic_search`` schema: one text column per field, a generated
``tsvector`` column weighting each field (A to D by the fields' weights) in the index's text
search configuration (``english``, ``spanish`` or ``simple``) with a GIN index, the attributes
as ``jsonb`` (GIN, ``jsonb_path_ops``: equality filters are containment tests), and a trigram
GIN index (``pg_trgm``) on the heaviest field.

Queries go through ``websearch_to_tsquery`` (quotes, ``-word`` and ``or`` work; nothing a user
types is an error), the last word also matching as a prefix; ranking is ``ts_rank``,
highlights ``ts_headline``. A query of one or two words that matches nothing falls back to
trigram similarity on the heaviest field, so a typo still finds the title it meant. Title
matches (their own ``tsvector`` and GIN index) are ranked apart from the others; the total and
facet counts come from the first ``EXACT_COUNT_LIMIT`` matches in one query (estimated past
them); a page sorted by a number or date finds its last value before scoring anything.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from collections.abc import AsyncIterable, Sequence
from typing import Any

import asyncpg

from ..filters import Compare, Condition, Exists, In, Node, Range, render
from ..registry import MARK_END, MARK_START, RegisteredIndex, StoredDocument
from .base import (EXACT_COUNT_LIMIT, BackendHit, BackendQuery, BackendResult, SearchBackend, escape_marked, scaled_facets,
                   words)

SCHEMA = "coderic_search"
CLASSES = ("A", "B", "C", "D")
_LAST_WORD = re.compile(r"(?:^|\s)(\w+)\s*$", re.UNICODE)
#: Short texts are shown whole (HighlightAll keeps what ts_headline's fragments would drop, such as
#: text that looks like HTML tags); long ones as fragments around the matches.
WHOLE = f"HighlightAll=true, StartSel={MARK_START}, StopSel={MARK_END}"
SHORT = 300
HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=\" … \""
TRIGRAM_THRESHOLD = 0.45
LOCK = 0x5EA2C4  # advisory lock taken while creating the schema
#: The tables' shape. Tables of another shape are made again at start-up (empty: the catch-up
#: or ``coderic search reindex`` fills them), as when an index's declaration changes.
LAYOUT = "4"
WALK_WINDOW = 200  # sorted pages ending within the first this many results are read as _walked says
MAX_FUZZY_WORDS = 2  # typo tolerance (trigrams) for queries of one or two words: longer ones cost a scan of many lists


def _ident(name: str) -> str:
    assert name.replace("_", "").isalnum(), name
    return f'"{name}"'


def _table(index: RegisteredIndex, suffix: str = "") -> str:
    return f"{SCHEMA}.{_ident(index.slug + suffix)}"


def _shown(index: RegisteredIndex, suffix: str = "") -> str:
    """The table of what hits show (``data``), read for a page only: kept out of the searched
    table, whose rows every query reads by the thousand, so that those are a third smaller."""
    return _table(index, f"{suffix}__shown")


def _literal(name: str) -> str:
    assert name.replace("_", "").isalnum(), name
    return f"'{name}'"


def _signature(index: RegisteredIndex) -> str:
    return f"{LAYOUT}:{index.signature()}"


def classes(weights: Sequence[float]) -> list[str]:
    """PostgreSQL's weight class of each field: the heaviest distinct weight is A, the next B..."""
    ranked = sorted(set(weights), reverse=True)
    return [CLASSES[min(ranked.index(w), 3)] for w in weights]


def split_query(q: str) -> tuple[str, str | None]:
    """(the part for ``websearch_to_tsquery``, the last word to match as a prefix, if it is a plain word)."""
    if q.count('"') % 2:
        return q, None
    match = _LAST_WORD.search(q)
    if match is None or match.group(1).lower() == "or":
        return q, None
    start = match.start(1)
    if start > 0 and q[start - 1] == "-":
        return q, None
    return q[:start], match.group(1)


class PostgresBackend(SearchBackend):
    kind = "postgresql"

    def __init__(self, url: str, *, pool_max: int = 10) -> None:
        self.url = url
        self.pool_max = pool_max
        self.pool: asyncpg.Pool | None = None
        self._trigram = True

    async def open(self) -> None:
        if self.pool is not None:
            return
        # Custom plans always: a generic plan (chosen after a statement's fifth run) cannot see how
        # rare the words and filter values are, and picks scans that cost the whole table.
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_max,
                                              server_settings={"plan_cache_mode": "force_custom_plan"})
        async with self.pool.acquire() as c, c.transaction():
            await c.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
            await c.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            await c.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.state (index_name text NOT NULL, key text NOT NULL, "
                "value text NOT NULL, PRIMARY KEY (index_name, key))"
            )
        try:
            async with self.pool.acquire() as c:
                await c.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except asyncpg.PostgresError:  # not allowed to: no typo tolerance, the rest works
            self._trigram = await self._has_trigram()

    async def _has_trigram(self) -> bool:
        assert self.pool is not None
        return bool(await self.pool.fetchval("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"))

    async def close(self) -> None:
        if self.pool is not None:
            pool, self.pool = self.pool, None
            await pool.close()

    async def ping(self) -> None:
        assert self.pool is not None
        await self.pool.fetchval("SELECT 1")

    async def get_state(self, index: RegisteredIndex, key: str) -> str | None:
        assert self.pool is not None
        return await self.pool.fetchval(  # type: ignore[no-any-return]
            f"SELECT value FROM {SCHEMA}.state WHERE index_name = $1 AND key = $2", index.name, key)

    async def set_state(self, index: RegisteredIndex, key: str, value: str) -> None:
        assert self.pool is not None
        await self.pool.execute(
            f"INSERT INTO {SCHEMA}.state (index_name, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (index_name, key) DO UPDATE SET value = excluded.value", index.name, key, value)

    # -------------------------------------------------------------------------- writing

    def _create_sql(self, index: RegisteredIndex, suffix: str) -> list[str]:
        table = _table(index, suffix)
        config = index.spec.language
        columns = ", ".join(f"{_ident('f_' + f)} text NOT NULL DEFAULT ''" for f in index.fields)
        vector = " || ".join(
            f"setweight(to_tsvector('{config}'::regconfig, {_ident('f_' + f)}), '{cls}')"
            for f, cls in zip(index.fields, classes(index.weights))
        )
        statements = [
            f"DROP TABLE IF EXISTS {table}",
            f"DROP TABLE IF EXISTS {_shown(index, suffix)}",
            f"CREATE TABLE {_shown(index, suffix)} (doc_id text PRIMARY KEY, data jsonb NOT NULL)",
            f"CREATE TABLE {table} (doc_id text PRIMARY KEY, {columns}, attrs jsonb NOT NULL, "
            f"visibility text NOT NULL, owner_id text, resource_type text, resource_id text, "
            f"tsv tsvector GENERATED ALWAYS AS ({vector}) STORED, "
            f"tsv_title tsvector GENERATED ALWAYS AS (to_tsvector('{config}'::regconfig, {_ident('f_' + index.title)})) STORED)",
        ]
        return statements

    def _index_sql(self, index: RegisteredIndex, suffix: str) -> list[str]:
        """The table's indexes. GIN indexes without ``fastupdate``: its pending list, which every
        query reads through until a vacuum empties it, made queries slower with every write."""
        table = _table(index, suffix)
        gin = "WITH (fastupdate = off)"
        statements = [
            f"CREATE INDEX ON {table} USING gin (tsv) {gin}",
            f"CREATE INDEX ON {table} USING gin (tsv_title) {gin}",
            f"CREATE INDEX ON {table} USING gin (attrs jsonb_path_ops) {gin}",
            *(f"CREATE INDEX ON {table} (((attrs ->> {_literal(a.name)})::float8))" for a in index.spec.attributes
              if a.type in ("number", "datetime") and a.filterable),
        ]
        if self._trigram:
            statements.append(f"CREATE INDEX ON {table} USING gin ({_ident('f_' + index.title)} gin_trgm_ops) {gin}")
        return statements

    async def prepare(self, index: RegisteredIndex) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as c, c.transaction():
            await c.execute(f"SELECT pg_advisory_xact_lock({LOCK})")
            exists = await c.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{SCHEMA}.{index.slug}")
            signature = await c.fetchval(f"SELECT value FROM {SCHEMA}.state WHERE index_name = $1 AND key = 'signature'",
                                         index.name)
            if exists and signature == _signature(index):
                return
            for statement in [*self._create_sql(index, ""), *self._index_sql(index, "")]:
                await c.execute(statement)
            await c.execute(f"DELETE FROM {SCHEMA}.state WHERE index_name = $1", index.name)
            await c.execute(f"INSERT INTO {SCHEMA}.state (index_name, key, value) VALUES ($1, 'signature', $2)",
                            index.name, _signature(index))

    def _upsert_sql(self, index: RegisteredIndex, suffix: str) -> tuple[str, str]:
        """(the searched table's upsert, the shown table's)."""
        names = ["doc_id", *(f"f_{f}" for f in index.fields), "attrs", "visibility", "owner_id", "resource_type",
                 "resource_id"]
        values = [f"${i}::jsonb" if name == "attrs" else f"${i}" for i, name in enumerate(names, start=1)]
        updates = ", ".join(f"{_ident(n)} = excluded.{_ident(n)}" for n in names[1:])
        return (
            f"INSERT INTO {_table(index, suffix)} ({', '.join(_ident(n) for n in names)}) VALUES ({', '.join(values)}) "
            f"ON CONFLICT (doc_id) DO UPDATE SET {updates}",
            f"INSERT INTO {_shown(index, suffix)} (doc_id, data) VALUES ($1, $2::jsonb) "
            "ON CONFLICT (doc_id) DO UPDATE SET data = excluded.data",
        )

    @staticmethod
    def _rows(index: RegisteredIndex, documents: Sequence[StoredDocument]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        return (
            [(d.id, *(d.texts.get(f, "") for f in index.fields), json.dumps(d.attrs), d.visibility, d.owner_id,
              d.resource_type, d.resource_id) for d in documents],
            [(d.id, json.dumps(d.data)) for d in documents],
        )

    async def _write(self, c: asyncpg.Connection, index: RegisteredIndex, suffix: str,
                     rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]) -> None:
        searched, shown = self._upsert_sql(index, suffix)
        await c.executemany(searched, rows[0])
        await c.executemany(shown, rows[1])

    async def _targets(self, c: asyncpg.Connection, index: RegisteredIndex) -> list[str]:
        building = await c.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{SCHEMA}.{index.slug}__new")
        return ["", "__new"] if building else [""]

    async def upsert(self, index: RegisteredIndex, documents: Sequence[StoredDocument]) -> None:
        assert self.pool is not None
        if not documents:
            return
        rows = self._rows(index, documents)
        async with self.pool.acquire() as c, c.transaction():
            for suffix in await self._targets(c, index):
                await self._write(c, index, suffix, rows)

    async def delete(self, index: RegisteredIndex, ids: Sequence[str]) -> None:
        assert self.pool is not None
        if not ids:
            return
        async with self.pool.acquire() as c, c.transaction():
            for suffix in await self._targets(c, index):
                for table in (_table(index, suffix), _shown(index, suffix)):
                    await c.execute(f"DELETE FROM {table} WHERE doc_id = ANY($1::text[])", list(ids))

    async def rebuild(self, index: RegisteredIndex, batches: AsyncIterable[Sequence[StoredDocument]]) -> int:
        assert self.pool is not None
        async with self.pool.acquire() as c, c.transaction():
            for statement in self._create_sql(index, "__new"):
                await c.execute(statement)
        count = 0
        async for batch in batches:
            async with self.pool.acquire() as c, c.transaction():
                await self._write(c, index, "__new", self._rows(index, batch))
            count += len(batch)
        async with self.pool.acquire() as c:  # indexes built once, over the filled table: faster than row by row
            for statement in self._index_sql(index, "__new"):
                await c.execute(statement)
        async with self.pool.acquire() as c, c.transaction():
            for live, new, name in ((_table(index), _table(index, "__new"), index.slug),
                                    (_shown(index), _shown(index, "__new"), f"{index.slug}__shown")):
                await c.execute(f"DROP TABLE IF EXISTS {live}")
                await c.execute(f"ALTER TABLE {new} RENAME TO {_ident(name)}")
            await c.execute(
                f"INSERT INTO {SCHEMA}.state (index_name, key, value) VALUES ($1, 'signature', $2) "
                "ON CONFLICT (index_name, key) DO UPDATE SET value = excluded.value", index.name, _signature(index))
        async with self.pool.acquire() as c:
            await c.execute(f"ANALYZE {_table(index)}")
        return count

    async def count(self, index: RegisteredIndex) -> int:
        assert self.pool is not None
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {_table(index)}"))

    # -------------------------------------------------------------------------- reading

    async def search(self, index: RegisteredIndex, query: BackendQuery) -> BackendResult:
        assert self.pool is not None
        async with self.pool.acquire() as c:
            result = await self._search(c, index, query, fuzzy=False)
            if (result.total == 0 and query.q.strip() and self._trigram and query.offset == 0
                    and len(words(query.q)) <= MAX_FUZZY_WORDS):
                result = await self._search(c, index, query, fuzzy=True)
            return result

    async def _search(self, c: asyncpg.Connection, index: RegisteredIndex, query: BackendQuery, *,
                      fuzzy: bool) -> BackendResult:
        table = _table(index)
        param = Slots()
        params = param.values

        where: list[str] = []
        text = query.q.strip()
        tsquery = None
        title = _ident("f_" + index.title)
        if text and fuzzy:
            slot = param(text)
            where.append(f"{slot} <% d.{title}")
            rank = f"word_similarity({slot}, d.{title})"
        elif text:
            tsquery = _tsquery(index, text, param)
            where.append(f"d.tsv @@ {tsquery}")
            rank = f"ts_rank(d.tsv, {tsquery})"
        else:
            rank = "0"
        if query.filter is not None:
            where.append(compile_filter(query.filter, index, param, indexed=not text))
        if query.viewer is None:
            where.append("d.visibility NOT IN ('members', 'private')")
        else:
            where.append(f"(d.visibility <> 'private' OR d.owner_id = {param(query.viewer)})")
        matches = Matches(table, " AND ".join(where), params, rank, _order(query, bool(text)))
        sample: Sample | None = None
        if not text and not query.sort:
            # In id order: from the sample when it holds every match, else along the primary key
            # (many matches: a page of them is met soon).
            sample = await self._sample(c, index, matches, query.facets)
            if sample.count < EXACT_COUNT_LIMIT:
                page = [(doc_id, 0.0) for doc_id in sorted(sample.ids)[query.offset:query.offset + query.limit]]
            else:
                page = await self._ranked(c, replace(matches, order="d.doc_id"), query.limit, query.offset)
        elif tsquery is not None and not query.sort:
            # the title's own GIN index finds title matches: the whole text's match is implied
            page = await self._tiered(c, matches, " AND ".join([f"d.tsv_title @@ {tsquery}", *where[1:]]), query)
        elif query.sort and (walked := await self._walked(c, index, matches, query)) is not None:
            page = walked
        else:
            page = await self._ranked(c, matches, query.limit, query.offset)
        total, facets, estimated = query.offset + len(page), {name: {} for name in query.facets}, False
        if sample is None and (query.facets or not (len(page) < query.limit and (page or query.offset == 0))):
            sample = await self._sample(c, index, matches, query.facets)  # else: the last page says the total
        if sample is not None:
            sampled, block, facets = sample.count, sample.block, sample.facets
            total = sampled
            if sampled >= EXACT_COUNT_LIMIT:
                estimated = True
                total = await self._extrapolate(c, table, sampled, block)
                facets = scaled_facets(facets, sampled, total)
        hits = await self._documents(c, index, page, text if tsquery is not None and query.highlight else None,
                                     fuzzy and query.highlight)
        return BackendResult(hits=hits, total=total, facets=facets, total_estimated=estimated,
                             facets_estimated=estimated and bool(query.facets))

    async def _ranked(self, c: asyncpg.Connection, matches: Matches, limit: int, offset: int,
                      extra: str = "") -> list[tuple[str, float]]:
        """A page of (id, score) in the query's order; the page's documents are read afterwards."""
        n = len(matches.params)
        rows = await c.fetch(
            f"SELECT d.doc_id, {matches.rank} AS score FROM {matches.table} d WHERE {matches.condition}{extra} "
            f"ORDER BY {matches.order} LIMIT ${n + 1} OFFSET ${n + 2}",
            *matches.params, limit, offset,
        )
        return [(row[0], float(row[1])) for row in rows]

    async def _walked(self, c: asyncpg.Connection, index: RegisteredIndex, matches: Matches,
                      query: BackendQuery) -> list[tuple[str, float]] | None:
        """A page sorted by a number or date with an index: the value at the page's end is found
        first, without scores (the planner may walk that index, meeting a page of common
        matches early, instead of reading and scoring every match), then only the matches up to
        that value are scored and put in the query's order. ``None`` when that cannot be done."""
        attribute, descending = query.sort[0]
        spec = index.attributes[attribute]
        window = query.offset + query.limit
        if spec.type not in ("number", "datetime") or not spec.filterable or window > WALK_WINDOW:
            return None
        value = f"((d.attrs ->> {_literal(attribute)})::float8)"
        edge = await c.fetchval(
            f"SELECT {value} FROM {matches.table} d WHERE {value} IS NOT NULL AND {matches.condition} "
            f"ORDER BY {value} {'DESC' if descending else 'ASC'} LIMIT 1 OFFSET {int(window - 1)}", *matches.params)
        if edge is None:  # the page reaches the matches without a value
            return None
        return await self._ranked(c, matches, query.limit, query.offset,
                                  f" AND {value} {'>=' if descending else '<='} '{float(edge)!r}'::float8")

    async def _tiered(self, c: asyncpg.Connection, matches: Matches, titled: str, query: BackendQuery) -> list[tuple[str, float]]:
        """Rank documents whose title holds every word (``titled``) first, then the others: title
        matches come first, as the ranking promises, and a page of a common word ranks the few
        documents with it in their title instead of every document holding it."""
        n = len(matches.params)
        rows = await c.fetch(
            f"SELECT d.doc_id, {matches.rank} AS score, count(*) OVER () AS titled FROM {matches.table} d WHERE {titled} "
            f"ORDER BY {matches.order} LIMIT ${n + 1} OFFSET ${n + 2}",
            *matches.params, query.limit, query.offset,
        )
        page = [(row[0], float(row[1])) for row in rows]
        if len(page) == query.limit:
            return page
        first = int(rows[0][2]) if rows else int(await c.fetchval(
            f"SELECT count(*) FROM {matches.table} d WHERE {titled}", *matches.params))
        return page + await self._ranked(c, matches, query.limit - len(page), max(0, query.offset - first),
                                         f" AND NOT ({titled})")

    async def _sample(self, c: asyncpg.Connection, index: RegisteredIndex, matches: Matches, wanted: Sequence[str]) -> Sample:
        """The first ``EXACT_COUNT_LIMIT`` matches as the table is read (in physical order: a
        bitmap scan's): their ids, the last heap block read and their facet counts, in one query."""
        facet_params = list(matches.params)
        parts = ["SELECT NULL::text, max(block)::text, count(*) FROM m", "SELECT '', doc_id, 0 FROM m"]
        for name in wanted:
            facet_params.append(name)
            slot = f"${len(facet_params)}"
            if index.attributes[name].type == "keywords":
                parts.append(f"SELECT {slot}::text, t, count(*) FROM m, jsonb_array_elements_text(m.attrs -> {slot}::text) t GROUP BY t")
            else:
                parts.append(f"SELECT {slot}::text, m.attrs ->> {slot}::text, count(*) FROM m "
                             f"WHERE m.attrs ? {slot}::text GROUP BY 2")
        rows = await c.fetch(
            f"WITH m AS MATERIALIZED (SELECT d.doc_id, d.attrs, (d.ctid::text::point)[0]::bigint AS block FROM {matches.table} d "
            f"WHERE {matches.condition} LIMIT {int(EXACT_COUNT_LIMIT)}) " + " UNION ALL ".join(parts),
            *facet_params,
        )
        sample = Sample(0, 0, [], {name: {} for name in wanted})
        for name, value, number in rows:
            if name is None:
                sample.count, sample.block = int(number), int(value or 0)
            elif name == "":
                sample.ids.append(value)
            else:
                sample.facets[name][str(value)] = int(number)
        return sample

    @staticmethod
    async def _extrapolate(c: asyncpg.Connection, table: str, sampled: int, block: int) -> int:
        """The matches of a query whose first ``sampled`` matches end at heap ``block``: as many
        again in the rest of the table as in the part read."""
        blocks = int(await c.fetchval("SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint", table))
        return max(sampled, round(sampled * blocks / (block + 1)))

    async def _documents(self, c: asyncpg.Connection, index: RegisteredIndex, page: list[tuple[str, float]],
                         highlight: str | None, fuzzy: bool) -> list[BackendHit]:
        """The page's documents, with highlights of ``highlight``'s words."""
        if not page:
            return []
        param = Slots()
        params = param.values

        config = index.spec.language
        fields = [_ident("f_" + f) for f in index.fields]
        lights = ""
        if highlight is not None:
            tsquery = _tsquery(index, highlight, param)
            options, whole = param(HEADLINE), param(WHOLE)
            lights = ", " + ", ".join(
                f"CASE WHEN length(d.{f}) <= {SHORT} THEN ts_headline('{config}'::regconfig, d.{f}, {tsquery}, {whole}) "
                f"ELSE ts_headline('{config}'::regconfig, d.{f}, {tsquery}, {options}) END" for f in fields
            )
        elif fuzzy:
            lights = ", " + ", ".join("NULL::text" for _ in fields)
        ids = param([doc_id for doc_id, _ in page])
        found = {row[0]: row for row in await c.fetch(
            f"SELECT d.doc_id, s.data, d.visibility, d.owner_id, d.resource_type, d.resource_id{lights} "
            f"FROM {_table(index)} d JOIN {_shown(index)} s ON s.doc_id = d.doc_id WHERE d.doc_id = ANY({ids}::text[])",
            *params)}
        hits: list[BackendHit] = []
        for doc_id, score in page:
            row = found.get(doc_id)
            if row is None:
                continue
            hit = BackendHit(id=doc_id, score=score, data=json.loads(row[1]), visibility=row[2], owner_id=row[3],
                             resource_type=row[4], resource_id=row[5])
            for name, light in zip(index.fields, row[6:]):
                marked = escape_marked(light or "")
                if marked is not None:
                    hit.highlights[name] = marked
            hits.append(hit)
        return hits


class Slots:
    """Bound parameters of one statement: ``slots(value)`` keeps the value, returns its ``$n``."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


@dataclass(frozen=True, slots=True)
class Matches:
    """A query's matches as SQL: ``FROM table d WHERE condition`` with ``params``, scored by
    ``rank`` (as ``score``) and put in ``order``."""

    table: str
    condition: str
    params: list[Any]
    rank: str
    order: str


@dataclass(slots=True)
class Sample:
    """The first matches as the table is read (at most ``EXACT_COUNT_LIMIT``)."""

    count: int
    block: int  # the last heap block read
    ids: list[str]
    facets: dict[str, dict[str, int]]


def _tsquery(index: RegisteredIndex, text: str, param: Any) -> str:
    """The user's words as a tsquery (``websearch_to_tsquery``: nothing typed is an error), the
    last one also as a prefix."""
    config = index.spec.language
    head, prefix = split_query(text)
    tsquery = f"websearch_to_tsquery('{config}'::regconfig, {param(head)})"
    if prefix is not None:
        tsquery = f"({tsquery} && to_tsquery('{config}'::regconfig, {param(chr(39) + prefix + chr(39) + ':*')}))"
    return tsquery


def _order(query: BackendQuery, ranked: bool) -> str:
    order: list[str] = []
    for attribute, descending in query.sort:
        key = f"(d.attrs -> {_literal(attribute)})"
        order.append(f"{key} IS NULL, {key} {'DESC' if descending else 'ASC'}")
    if ranked:
        order.append("score DESC")
    # By id as an expression: walking the primary key in order, hoping to meet a page of
    # matches early, is what the planner would do, and costs a whole table for a rare filter.
    order.append("d.doc_id" if ranked else "(d.doc_id || '')")
    return ", ".join(order)


def compile_filter(node: Node, index: RegisteredIndex, param: Any, *, indexed: bool = True) -> str:
    """SQL over ``d.attrs`` with bound parameters, two-valued (a missing attribute is false).

    ``indexed``: equality as containment of the whole ``attrs``, which its GIN index serves.
    Beside words, equality is written per attribute instead, which no index serves: the
    planner guesses any containment very selective and would intersect the words' matches with
    the long list of, say, every open project, where checking the few matches reads less.

    Number and date attributes are stored as JSON numbers (``registry.store``), so they compare
    as ``(attrs ->> name)::float8``, which their expression indexes serve; under a NOT a
    comparison is wrapped so that a missing value (NULL) still counts as false."""

    def contains(attribute: str, value: Any) -> str:
        many = index.attributes[attribute].type == "keywords"
        if indexed:
            return f"(d.attrs @> {param(json.dumps({attribute: [value] if many else value}))}::jsonb)"
        own = f"(d.attrs -> {_literal(attribute)})"
        if many:
            return f"COALESCE({own} @> {param(json.dumps([value]))}::jsonb, false)"
        return f"COALESCE({own} = {param(json.dumps(value))}::jsonb, false)"

    def condition(n: Condition, negated: bool) -> str:
        key = _literal(n.attribute)
        if isinstance(n, Exists):
            return f"(d.attrs ? {key})"
        if isinstance(n, In):
            return "(" + " OR ".join(contains(n.attribute, v) for v in n.values) + ")"
        number = f"((d.attrs ->> {key})::float8)"
        if isinstance(n, Range):
            sql = f"({number} BETWEEN {param(n.low)}::float8 AND {param(n.high)}::float8)"
        else:
            assert isinstance(n, Compare)
            if n.op == "=":
                return contains(n.attribute, n.value)
            if n.op == "!=":
                return f"(NOT {contains(n.attribute, n.value)})"
            sql = f"({number} {n.op} {param(n.value)}::float8)"
        return f"COALESCE({sql}, false)" if negated else sql

    return render(node, condition)
