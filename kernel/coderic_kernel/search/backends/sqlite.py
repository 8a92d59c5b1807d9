"""SQLite FTS5: the embedded default.

Each index is four tables of the search database, joined on rowid:

- ``search_<plugin>__<name>``: FTS5, one column per text field (porter stemming over unicode61
  for English, unicode61 alone otherwise, diacritics folded, prefix indexes for 2-4 letters),
  plus an ``access`` column of tokens saying who may see the document, so that visibility is
  matched inside the full-text index itself;
- ``..._docs``: id, visibility, owner, resource, and one indexed column per single-valued
  attribute;
- ``..._kw``: lists of keywords, (attribute, value) -> document;
- ``..._shown``: what a hit shows (JSON), read for the page only.

Ranking is bm25 with the fields' weights; filters join the attribute tables, with SQL compiled
from the parsed filter with bound parameters (that SQL, the visibility tokens and the MATCH
expression are spelled in ``sqlite_sql.py``). A query's cost is kept from growing with the
index (see docs/search.md, "Performance"): title matches are ranked apart from the others,
hidden documents are excluded by a NOT when counting and dropped after ranking (never inside
bm25, which would read the visibility tokens' index-long lists), sorted pages of many matches
walk the sort attribute's index, and the total and facet counts come from the first
``EXACT_COUNT_LIMIT`` matches (estimated past them; exact totals when no filter, from the
full-text index). Highlights come from a temporary FTS5 table holding only the page's rows.

sqlite3 is synchronous: calls run in a worker thread, one at a time per process (WAL lets other
processes read while one writes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..registry import MARK_END, MARK_START, RegisteredIndex, StoredDocument
from .base import EXACT_COUNT_LIMIT, BackendHit, BackendQuery, BackendResult, SearchBackend, escape_marked, scaled_facets
from .sqlite_sql import (ACCESS, TYPES, access_tokens, column_value, compile_filter, hidden_expression, ident,
                         match_expression, tokenizer, visibility_condition)

T = TypeVar("T")
BUSY_TIMEOUT_SECONDS = 30.0
#: Sorted queries with at least this many matches read the sort attribute's index (see ``_walked``).
WALK_ABOVE = 1000
RANK_SLACK = 20  # ranked rows asked for beyond the page, for the hidden ones among them
WALK_WINDOW = 200  # ... for pages ending within the first this many


def _sort_key(value: Any, descending: bool) -> tuple[bool, Any]:
    """Missing values last in either direction, as the SQL ``ORDER BY (v IS NULL), v``."""
    if descending:  # sorted in reverse
        return (value is not None, value if value is not None else 0)
    return (value is None, value if value is not None else 0)


@dataclass(frozen=True, slots=True)
class Matches:
    """A query's matches as SQL: ``SELECT key FROM source WHERE condition`` with ``params``
    (the first is the full-text match when there are ``words``); ``joined`` also reads the
    documents' attributes; ``order`` is the query's order, over ``r`` (the score) and ``key``."""

    words: str | None
    plain: str | None  # the words alone, without the visibility part: what ranked queries match
    visible: tuple[str, list[Any]]  # SQL over the documents (``d``) saying who may see them
    source: str
    joined: str
    key: str
    condition: str
    params: list[Any]
    order: str
    filters: list[str]  # the condition's parts after the full-text match (words) or visibility (none)


@dataclass(frozen=True, slots=True)
class Sample:
    """The first matches in rowid order (at most ``EXACT_COUNT_LIMIT``) and their facet counts."""

    ids: list[int]
    facets: dict[str, dict[str, int]]


class SQLiteBackend(SearchBackend):
    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------- plumbing

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False,
                                         isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA cache_size=-65536")  # 64 MiB of pages kept
            connection.execute("PRAGMA mmap_size=268435456")  # and reads through the page cache of the system
            connection.execute(
                "CREATE TABLE IF NOT EXISTS search_state (index_name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
                "PRIMARY KEY (index_name, key))"
            )
            self._connection = connection
        return self._connection

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            with self._lock:
                return work(self._connect())

        return await asyncio.to_thread(call)

    def _transaction(self, c: sqlite3.Connection, work: Callable[[], None]) -> None:
        c.execute("BEGIN IMMEDIATE")
        try:
            work()
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    async def open(self) -> None:
        await self._run(lambda c: None)

    async def close(self) -> None:
        def shut() -> None:
            with self._lock:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None

        await asyncio.to_thread(shut)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    @staticmethod
    def _tables(index: RegisteredIndex, suffix: str = "") -> tuple[str, str, str, str]:
        """(full text, documents, keywords, data) of a copy of ``index``."""
        base = f"search_{index.slug}{suffix}"
        return base, f"{base}_docs", f"{base}_kw", f"{base}_shown"

    @staticmethod
    def _exists(c: sqlite3.Connection, table: str) -> bool:
        return c.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None

    def _create(self, c: sqlite3.Connection, index: RegisteredIndex, suffix: str) -> None:
        if ACCESS in index.fields:
            raise ValueError(f"search index {index.name}: '{ACCESS}' is a reserved field name")
        fts, docs, keywords, data = self._tables(index, suffix)
        for table in (fts, docs, keywords, data):
            c.execute(f"DROP TABLE IF EXISTS {ident(table)}")
        token = uuid.uuid4().hex[:8]  # index names survive a table's rename: each copy's are its own
        columns = "".join(f", {ident('a_' + a.name)} {TYPES[a.type]}" for a in index.spec.attributes if a.type != "keywords")
        c.execute(f"CREATE TABLE {ident(docs)} (rowid INTEGER PRIMARY KEY, doc_id TEXT NOT NULL UNIQUE, "
                  f"visibility TEXT NOT NULL, owner_id TEXT, resource_type TEXT, resource_id TEXT{columns})")
        for a in index.spec.attributes:
            if a.type != "keywords" and (a.filterable or a.sortable):
                c.execute(f"CREATE INDEX {ident(f'{docs}_{a.name}_{token}')} ON {ident(docs)} ({ident('a_' + a.name)})")
        c.execute(f"CREATE TABLE {ident(keywords)} (attr TEXT NOT NULL, value TEXT NOT NULL, doc INTEGER NOT NULL, "
                  "PRIMARY KEY (attr, value, doc)) WITHOUT ROWID")
        c.execute(f"CREATE INDEX {ident(f'{keywords}_doc_{token}')} ON {ident(keywords)} (doc)")
        c.execute(f"CREATE TABLE {ident(data)} (rowid INTEGER PRIMARY KEY, data TEXT NOT NULL)")
        texts = ", ".join(ident(f) for f in (*index.fields, ACCESS))
        # prefix indexes: "pyth*" reads one short list instead of every word starting so
        c.execute(f"CREATE VIRTUAL TABLE {ident(fts)} USING fts5({texts}, tokenize='{tokenizer(index)}', prefix='2 3 4')")

    def _state(self, c: sqlite3.Connection, index: str, key: str) -> str | None:
        row = c.execute("SELECT value FROM search_state WHERE index_name = ? AND key = ?", (index, key)).fetchone()
        return None if row is None else str(row[0])

    def _set_state(self, c: sqlite3.Connection, index: str, key: str, value: str | None) -> None:
        if value is None:
            c.execute("DELETE FROM search_state WHERE index_name = ? AND key = ?", (index, key))
        else:
            c.execute("INSERT INTO search_state (index_name, key, value) VALUES (?, ?, ?) "
                      "ON CONFLICT (index_name, key) DO UPDATE SET value = excluded.value", (index, key, value))

    async def get_state(self, index: RegisteredIndex, key: str) -> str | None:
        return await self._run(lambda c: self._state(c, index.name, key))

    async def set_state(self, index: RegisteredIndex, key: str, value: str) -> None:
        await self._run(lambda c: self._set_state(c, index.name, key, value))

    # -------------------------------------------------------------------------- writing

    async def prepare(self, index: RegisteredIndex) -> None:
        def work(c: sqlite3.Connection) -> None:
            if self._exists(c, self._tables(index)[0]) and self._state(c, index.name, "signature") == index.signature():
                return

            def create() -> None:
                self._create(c, index, "")
                self._set_state(c, index.name, "signature", index.signature())
                self._set_state(c, index.name, "synced_at", None)

            self._transaction(c, create)

        await self._run(work)

    def _write(self, c: sqlite3.Connection, index: RegisteredIndex, suffix: str, documents: Sequence[StoredDocument]) -> None:
        fts, docs, keywords, data = self._tables(index, suffix)
        texts = ", ".join(ident(f) for f in (*index.fields, ACCESS))
        marks = ", ".join("?" for _ in range(len(index.fields) + 1))
        single = [a for a in index.spec.attributes if a.type != "keywords"]
        many = [a.name for a in index.spec.attributes if a.type == "keywords"]
        names = ["doc_id", "visibility", "owner_id", "resource_type", "resource_id", *(f"a_{a.name}" for a in single)]
        upsert = (
            f"INSERT INTO {ident(docs)} ({', '.join(ident(n) for n in names)}) VALUES ({', '.join('?' for _ in names)}) "
            f"ON CONFLICT (doc_id) DO UPDATE SET {', '.join(f'{ident(n)} = excluded.{ident(n)}' for n in names[1:])} "
            "RETURNING rowid"
        )
        for doc in documents:
            values = [doc.id, doc.visibility, doc.owner_id, doc.resource_type, doc.resource_id]
            values.extend(column_value(a.type, doc.attrs.get(a.name)) for a in single)
            rowid = c.execute(upsert, values).fetchone()[0]
            c.execute(f"DELETE FROM {ident(fts)} WHERE rowid = ?", (rowid,))
            c.execute(f"DELETE FROM {ident(keywords)} WHERE doc = ?", (rowid,))
            c.execute(f"INSERT INTO {ident(fts)} (rowid, {texts}) VALUES (?, {marks})",
                      (rowid, *(doc.texts.get(f, "") for f in index.fields), access_tokens(doc.visibility, doc.owner_id)))
            c.execute(f"INSERT OR REPLACE INTO {ident(data)} (rowid, data) VALUES (?, ?)", (rowid, json.dumps(doc.data)))
            for name in many:
                c.executemany(f"INSERT OR IGNORE INTO {ident(keywords)} (attr, value, doc) VALUES (?, ?, ?)",
                              [(name, value, rowid) for value in doc.attrs.get(name, ())])

    def _remove(self, c: sqlite3.Connection, index: RegisteredIndex, suffix: str, ids: Sequence[str]) -> None:
        fts, docs, keywords, data = self._tables(index, suffix)
        for doc_id in ids:
            row = c.execute(f"DELETE FROM {ident(docs)} WHERE doc_id = ? RETURNING rowid", (doc_id,)).fetchone()
            if row is not None:
                c.execute(f"DELETE FROM {ident(fts)} WHERE rowid = ?", (row[0],))
                c.execute(f"DELETE FROM {ident(keywords)} WHERE doc = ?", (row[0],))
                c.execute(f"DELETE FROM {ident(data)} WHERE rowid = ?", (row[0],))

    def _targets(self, c: sqlite3.Connection, index: RegisteredIndex) -> list[str]:
        return [""] + (["__new"] if self._exists(c, self._tables(index, "__new")[0]) else [])

    async def upsert(self, index: RegisteredIndex, documents: Sequence[StoredDocument]) -> None:
        if documents:
            await self._run(lambda c: self._transaction(
                c, lambda: [self._write(c, index, suffix, documents) for suffix in self._targets(c, index)]))

    async def delete(self, index: RegisteredIndex, ids: Sequence[str]) -> None:
        if ids:
            await self._run(lambda c: self._transaction(
                c, lambda: [self._remove(c, index, suffix, ids) for suffix in self._targets(c, index)]))

    async def rebuild(self, index: RegisteredIndex, batches: AsyncIterable[Sequence[StoredDocument]]) -> int:
        await self._run(lambda c: self._create(c, index, "__new"))
        count = 0
        async for batch in batches:
            await self._run(lambda c, batch=batch: self._transaction(c, lambda: self._write(c, index, "__new", batch)))
            count += len(batch)

        def swap(c: sqlite3.Connection) -> None:
            live, new = self._tables(index), self._tables(index, "__new")

            def rename() -> None:
                for table in live:
                    c.execute(f"DROP TABLE IF EXISTS {ident(table)}")
                for old, renamed in zip(new, live):
                    c.execute(f"ALTER TABLE {ident(old)} RENAME TO {ident(renamed)}")
                self._set_state(c, index.name, "signature", index.signature())

            self._transaction(c, rename)
            c.execute(f"INSERT INTO {ident(live[0])}({ident(live[0])}) VALUES ('optimize')")
            c.execute("ANALYZE")

        await self._run(swap)
        return count

    async def count(self, index: RegisteredIndex) -> int:
        docs = self._tables(index)[1]
        return await self._run(lambda c: int(c.execute(f"SELECT count(*) FROM {ident(docs)}").fetchone()[0]))

    # -------------------------------------------------------------------------- reading

    async def search(self, index: RegisteredIndex, query: BackendQuery) -> BackendResult:
        return await self._run(lambda c: self._search(c, index, query))

    def _search(self, c: sqlite3.Connection, index: RegisteredIndex, query: BackendQuery) -> BackendResult:
        fts = self._tables(index)[0]
        weights = ", ".join(repr(float(w)) for w in (*index.weights, 0.0))
        rank = f"bm25({ident(fts)}, {weights})"
        matches = self._matches(index, query)
        # The full-text index counts matches cheaply: exactly the total when nothing else filters.
        found = self._match_count(c, index, matches.params[0]) if matches.words is not None else None
        total = found if query.filter is None else None
        counted_exactly = total is not None
        sample: Sample | None = None
        if matches.words is None and not query.sort:
            # Without words or sort, the page is the first matches in rowid order: part of the sample.
            sample = self._sample(c, index, matches, query.facets)
            if query.offset + query.limit <= len(sample.ids) or len(sample.ids) < EXACT_COUNT_LIMIT:
                page = [(rowid, 0.0) for rowid in sample.ids[query.offset:query.offset + query.limit]]
            else:
                page = self._ranked(c, index, matches, "0", query.limit, query.offset)
        elif matches.words is not None and not query.sort and len(index.fields) > 1:
            page = self._tiered(c, index, matches, rank, query, total)
        elif matches.words is not None and query.sort and found is not None and found >= WALK_ABOVE:
            page = self._walked(c, index, matches, rank, query)
        else:
            page = self._ranked(c, index, matches, rank if matches.words is not None else "0", query.limit, query.offset)
        facets: dict[str, dict[str, int]] = {name: {} for name in query.facets}
        estimated = False
        last_page = len(page) < query.limit and (bool(page) or query.offset == 0)
        if sample is None and (query.facets or (total is None and not last_page)):
            sample = self._sample(c, index, matches, query.facets)
        if sample is not None:
            facets.update(sample.facets)
            if len(sample.ids) >= EXACT_COUNT_LIMIT:
                estimated = True
                if total is None:
                    total = self._extrapolate(c, index, len(sample.ids), sample.ids[-1])
                facets = scaled_facets(facets, len(sample.ids), total)
            elif total is None:
                total = len(sample.ids)
        if total is None:
            total = query.offset + len(page)  # the last page: nothing more to count
        hits = self._documents(c, index, page)
        if matches.words is not None and query.highlight and hits:
            self._highlight(c, index, matches.words, [row[0] for row in page], hits)
        return BackendResult(hits=hits, total=total, facets=facets, total_estimated=estimated and not counted_exactly,
                             facets_estimated=estimated and bool(query.facets))

    def _matches(self, index: RegisteredIndex, query: BackendQuery) -> Matches:
        fts, docs, keywords, _ = self._tables(index)
        words_match = match_expression(query.q)
        visible = visibility_condition(query.viewer)
        params: list[Any] = []
        if words_match is not None:
            # visibility is part of the full-text match: no document row is read to rule one out
            params.append(f"({words_match}) NOT {hidden_expression(query.viewer)}")
            where = [f"{ident(fts)} MATCH ?"]
            key = "f.rowid"
            joined = f"{ident(fts)} f JOIN {ident(docs)} d ON d.rowid = f.rowid"
            source = joined if query.filter is not None or query.sort else f"{ident(fts)} f"
        else:
            key = "d.rowid"
            joined = source = f"{ident(docs)} d"
            where = [visible[0]]
            params.extend(visible[1])
        if query.filter is not None:
            sql, values = compile_filter(query.filter, index, keywords)
            where.append(sql)
            params.extend(values)
        order = []
        for attribute, descending in query.sort:
            column = f"d.{ident('a_' + attribute)}"
            order.append(f"({column} IS NULL), {column} {'DESC' if descending else 'ASC'}")
        order.append(f"r, {key}" if words_match is not None else key)
        plain = None if words_match is None else f"({words_match})"
        return Matches(words_match, plain, visible, source, joined, key, " AND ".join(where), params, ", ".join(order), where[1:])

    def _ranked(self, c: sqlite3.Connection, index: RegisteredIndex, matches: Matches, score: str, limit: int, offset: int,
                *, source: str | None = None, condition: str | None = None, params: Sequence[Any] | None = None
                ) -> list[Any]:
        """A page of (rowid, score) in the query's order. Ranking sorts these pairs only; the
        page's documents are read afterwards.

        With words, ``params[0]`` matches the words alone (by default ``matches.plain``): bm25
        weighs every phrase of its match by reading that phrase's whole list, and the visibility
        tokens' lists are as long as the index. Hidden documents are dropped from the ranked
        rows instead, asking for more rows in the rare case that leaves the page short."""
        sql = (f"SELECT {matches.key}, {score} AS r FROM {source or matches.source} WHERE {condition or matches.condition} "
               f"ORDER BY {matches.order} LIMIT ? OFFSET ?")
        if matches.words is None:
            return c.execute(sql, (*(matches.params if params is None else params), limit, offset)).fetchall()
        arguments = [matches.plain, *matches.params[1:]] if params is None else list(params)
        wanted = offset + limit
        fetch = wanted + RANK_SLACK
        while True:
            rows = c.execute(sql, (*arguments, fetch, 0)).fetchall()
            shown = self._visible(c, index, matches, [row[0] for row in rows])
            kept = [row for row in rows if row[0] in shown]
            if len(kept) >= wanted or len(rows) < fetch:
                return kept[offset:wanted]
            fetch *= 4

    def _visible(self, c: sqlite3.Connection, index: RegisteredIndex, matches: Matches, rowids: list[int]) -> set[int]:
        if not rowids:
            return set()
        docs = ident(self._tables(index)[1])
        condition, values = matches.visible
        return {row[0] for row in c.execute(
            f"SELECT d.rowid FROM {docs} d WHERE d.rowid IN ({', '.join('?' for _ in rowids)}) AND {condition}",
            (*rowids, *values))}

    def _match_count(self, c: sqlite3.Connection, index: RegisteredIndex, match: str) -> int:
        fts = ident(self._tables(index)[0])
        return int(c.execute(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH ?", (match,)).fetchone()[0])

    def _extrapolate(self, c: sqlite3.Connection, index: RegisteredIndex, sampled: int, last: int) -> int:
        """The matches of a query whose first ``sampled`` matches, in rowid order, end at ``last``:
        as many again in the rest of the rowids as in the part read."""
        docs = ident(self._tables(index)[1])
        # two subqueries: SQLite reads one end of the b-tree for each, but scans it all for min() and max() together
        low, high = c.execute(f"SELECT (SELECT min(rowid) FROM {docs}), (SELECT max(rowid) FROM {docs})").fetchone()
        if low is None or last >= high:
            return sampled
        return max(sampled, round(sampled * (high - low + 1) / (last - low + 1)))

    def _tiered(self, c: sqlite3.Connection, index: RegisteredIndex, matches: Matches, rank: str, query: BackendQuery,
                total: int | None) -> list[Any]:
        """Rank documents whose title holds every word first, then the others: title matches come
        first (as the ranking promises), and a page of a common word ranks the few documents
        with it in their title instead of every document holding it."""
        if total == 0:
            return []
        title = ident(index.title)
        match, rest = matches.params[0], matches.params[1:]
        in_title = f"{title} : ({matches.words})"
        visible_titled = [f"({match}) AND ({in_title})", *rest]
        titled = [f"{matches.plain} AND ({in_title})", *rest]
        others = [f"{matches.plain} NOT ({in_title})", *rest]
        first = int(c.execute(f"SELECT count(*) FROM {matches.source} WHERE {matches.condition}", visible_titled).fetchone()[0])
        page: list[Any] = []
        if query.offset < first:
            page = self._ranked(c, index, matches, rank, query.limit, query.offset, params=titled)
        if len(page) < query.limit and (total is None or first < total):
            page += self._ranked(c, index, matches, rank, query.limit - len(page), max(0, query.offset - first), params=others)
        return page

    def _walked(self, c: sqlite3.Connection, index: RegisteredIndex, matches: Matches, rank: str,
                query: BackendQuery) -> list[Any]:
        """A sorted page of many matches, read along the first sort attribute's index instead of
        sorting every match: the matches up to the page's end come first (with any others
        sharing the last one's value), then only these are scored and put in the query's order.
        Deep pages, and pages reaching matches without a value, are ranked the usual way."""
        window = query.offset + query.limit
        first, _ = query.sort[0]
        docs = self._tables(index)[1]
        name = self._index_on(c, docs, "a_" + first)
        if name is None or window > WALK_WINDOW:
            return self._ranked(c, index, matches, rank, query.limit, query.offset)
        fts = ident(self._tables(index)[0])
        columns = [f"d.{ident('a_' + attribute)}" for attribute, _ in query.sort]
        walk = f"{ident(docs)} d INDEXED BY {ident(name)}"
        inside = " AND ".join([f"d.rowid IN (SELECT rowid FROM {fts} WHERE {fts} MATCH ?)", *matches.filters])
        rows = c.execute(
            f"SELECT d.rowid, {', '.join(columns)} FROM {walk} WHERE {columns[0]} IS NOT NULL AND {inside} "
            f"ORDER BY {columns[0]} {'DESC' if query.sort[0][1] else 'ASC'} LIMIT ?",
            (*matches.params, window + 1),
        ).fetchall()
        if len(rows) <= window:  # the page reaches the matches without a value
            return self._ranked(c, index, matches, rank, query.limit, query.offset)
        if rows[window][1] == rows[window - 1][1]:  # the last value goes on past the page: all of it may belong
            rows = rows[:window] + c.execute(
                f"SELECT d.rowid, {', '.join(columns)} FROM {walk} WHERE {columns[0]} = ? AND {inside}",
                (rows[window - 1][1], *matches.params),
            ).fetchall()
            if len(rows) > 2 * WALK_WINDOW:
                return self._ranked(c, index, matches, rank, query.limit, query.offset)
        candidates = {row[0]: row for row in rows}
        # "+rowid": one pass over the matches, scoring only the candidates (a plain IN would open
        # a full-text cursor per candidate, each reading every list of the query again)
        scores = dict(c.execute(
            f"SELECT rowid, {rank} FROM {fts} WHERE {fts} MATCH ? AND +rowid IN ({', '.join('?' for _ in candidates)})",
            (matches.plain, *candidates),
        ).fetchall())
        ordered = sorted(candidates.values(), key=lambda row: (scores.get(row[0], 0.0), row[0]))
        for position in reversed(range(len(query.sort))):  # stable sorts, last key first
            descending = query.sort[position][1]
            ordered.sort(key=lambda row, at=position + 1, down=descending: _sort_key(row[at], down), reverse=descending)
        return [(row[0], scores.get(row[0], 0.0)) for row in ordered[query.offset:window]]

    @staticmethod
    def _index_on(c: sqlite3.Connection, table: str, column: str) -> str | None:
        for (name,) in c.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)):
            if [row[2] for row in c.execute(f"PRAGMA index_info({ident(name)})")] == [column]:
                return str(name)
        return None

    def _documents(self, c: sqlite3.Connection, index: RegisteredIndex, page: list[Any]) -> list[BackendHit]:
        if not page:
            return []
        _, docs, _, data = self._tables(index)
        rowids = [row[0] for row in page]
        marks = ", ".join("?" for _ in rowids)
        found = {row[0]: row for row in c.execute(
            f"SELECT d.rowid, d.doc_id, x.data, d.visibility, d.owner_id, d.resource_type, d.resource_id "
            f"FROM {ident(docs)} d JOIN {ident(data)} x ON x.rowid = d.rowid WHERE d.rowid IN ({marks})", rowids)}
        return [
            BackendHit(id=r[1], score=-float(score), data=json.loads(r[2]), visibility=r[3], owner_id=r[4],
                       resource_type=r[5], resource_id=r[6])
            for rowid, score in page if (r := found.get(rowid)) is not None
        ]

    def _sample(self, c: sqlite3.Connection, index: RegisteredIndex, matches: Matches, wanted: Sequence[str]) -> Sample:
        """The first ``EXACT_COUNT_LIMIT`` matches in rowid order, with their facet counts.
        Single-valued attributes come with the matches; each list of keywords is counted by one
        lookup per match (one query: SQLite's planner, given these as parts of a compound query,
        scans the whole keyword table instead)."""
        keywords = ident(self._tables(index)[2])
        single = [n for n in wanted if index.attributes[n].type != "keywords"]
        columns = "".join(f", d.{ident('a_' + n)}" for n in single)
        rows = c.execute(
            f"SELECT {matches.key}{columns} FROM {matches.joined if single else matches.source} WHERE {matches.condition} "
            f"ORDER BY {matches.key} LIMIT ?",
            (*matches.params, EXACT_COUNT_LIMIT),
        ).fetchall()
        facets: dict[str, dict[str, int]] = {name: {} for name in wanted}
        for position, name in enumerate(single, start=1):
            boolean = index.attributes[name].type == "boolean"
            counts = facets[name]
            for row in rows:
                value = row[position]
                if value is not None:
                    label = ("true" if value else "false") if boolean else str(value)
                    counts[label] = counts.get(label, 0) + 1
        ids = [row[0] for row in rows]
        for name in wanted:
            if index.attributes[name].type == "keywords" and ids:
                facets[name] = {str(value): int(number) for value, number in c.execute(
                    f"SELECT k.value, count(*) FROM json_each(?) j CROSS JOIN {keywords} k ON k.doc = j.value AND k.attr = ? "
                    "GROUP BY k.value", (json.dumps(ids), name))}
        return Sample(ids, facets)

    def _highlight(self, c: sqlite3.Connection, index: RegisteredIndex, match: str, rowids: list[int],
                   hits: list[BackendHit]) -> None:
        """Highlights from a temporary FTS5 table like the index's holding the page's rows only:
        matching there reads a few rows, never the index's long lists."""
        fts = self._tables(index)[0]
        columns = ", ".join(ident(f) for f in index.fields)
        marks = ", ".join("?" for _ in rowids)
        texts = c.execute(f"SELECT rowid, {columns} FROM {ident(fts)} WHERE rowid IN ({marks})", rowids).fetchall()
        name = f"highlight_{index.slug}_{hashlib.sha256(index.signature().encode()).hexdigest()[:8]}"
        if c.execute("SELECT 1 FROM temp.sqlite_master WHERE name = ?", (name,)).fetchone() is None:
            c.execute(f"CREATE VIRTUAL TABLE temp.{ident(name)} USING fts5({columns}, tokenize='{tokenizer(index)}')")
        table = ident(name)
        lights = ", ".join(f"highlight({table}, {i}, '{MARK_START}', '{MARK_END}')" for i in range(len(index.fields)))
        c.execute("SAVEPOINT highlight")
        try:
            c.executemany(f"INSERT INTO {table} (rowid, {columns}) VALUES (?, {', '.join('?' for _ in index.fields)})", texts)
            found = {row[0]: row[1:] for row in c.execute(f"SELECT rowid, {lights} FROM {table} WHERE {table} MATCH ?", (match,))}
        finally:
            c.execute("ROLLBACK TO highlight")
            c.execute("RELEASE highlight")
        for rowid, hit in zip(rowids, hits):
            for field, text in zip(index.fields, found.get(rowid, ())):
                marked = escape_marked(text or "")
                if marked is not None:
                    hit.highlights[field] = marked
