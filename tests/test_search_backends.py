"""One suite for every search backend (issue 10): SQLite FTS5, PostgreSQL full text and
Meilisearch (against ``tests/meilisearch_fake.py``, a local fake of the HTTP API the backend uses).

Each test indexes the same generated documents and compares what the backend answers with a
brute-force computation over those documents: which match a filter (``filters.evaluate``),
facet counts, sort order. Also: title matches rank first, highlights are escaped HTML, hostile
query strings never raise, visibility is pre-filtered, and a rebuild swaps in a new copy.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from coderic_kernel.search.backends import BackendQuery, SearchBackend
from coderic_kernel.search.filters import evaluate, parse_filter
from coderic_kernel.search.registry import RegisteredIndex, StoredDocument
from coderic_sdk import SearchAttribute, SearchDocument, SearchField, SearchIndex
from meilisearch_fake import FakeServer

BACKENDS = ["sqlite", "postgresql", "meilisearch"]
STATUSES = ["open", "closed", "draft", "archived"]
TAGS = ["python", "rust", "go", "design", "data", "machine learning", "devops"]
WORDS = ("platform community members build share learn code review mentor freelance budget release "
         "library forum course lesson backend frontend database cloud editor plugin search index").split()
BASE = datetime(2026, 1, 1, tzinfo=timezone.utc)


async def _none(since: datetime | None) -> AsyncIterator[SearchDocument]:
    if False:
        yield  # pragma: no cover


def make_index(name: str | None = None) -> RegisteredIndex:
    name = name or f"p{uuid.uuid4().hex[:12]}"  # tests share a database or a server: each its own index
    spec = SearchIndex(
        name,
        fields=(SearchField("title", 4.0), SearchField("summary", 2.0), SearchField("body", 1.0)),
        attributes=(
            SearchAttribute("status", "keyword", facetable=True, sortable=True),
            SearchAttribute("tags", "keywords", facetable=True),
            SearchAttribute("budget", "number", sortable=True),
            SearchAttribute("remote", "boolean", facetable=True),
            SearchAttribute("created", "datetime", sortable=True),
        ),
        documents=_none,
    )
    return RegisteredIndex(f"test.{name}", "test", spec)


def generate(count: int = 160, seed: int = 7) -> list[SearchDocument]:
    rng = random.Random(seed)
    budgets = rng.sample(range(1, 100_000), count)
    documents = []
    for i in range(count):
        fields: dict[str, Any] = {
            "title": " ".join(rng.choice(WORDS) for _ in range(3)).capitalize(),
            "summary": " ".join(rng.choice(WORDS) for _ in range(8)),
            "body": " ".join(rng.choice(WORDS) for _ in range(30)),
            "status": rng.choice(STATUSES),
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "remote": rng.random() < 0.5,
            "created": (BASE + timedelta(days=i, hours=rng.randint(0, 23))).isoformat(),
        }
        if i % 9:  # some documents have no budget
            fields["budget"] = budgets[i]
        documents.append(SearchDocument(f"doc{i:04d}", fields))
    return documents


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One throw-away database for the module: each test's index has a name of its own."""
    from coderic_kernel.testing import postgres_admin_url, services_required

    import asyncpg

    name = f"coderic_test_search_{uuid.uuid4().hex[:10]}"
    admin_url = postgres_admin_url()

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(admin_url, timeout=5)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    def run(statement: str) -> None:  # in a thread of its own: the fixture may be asked for inside a running loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, admin(statement)).result()

    try:
        run(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        if services_required():
            pytest.fail(f"PostgreSQL at {admin_url} is unreachable ({exc}); CI requires it")
        pytest.skip(f"PostgreSQL at {admin_url} is unreachable ({exc})")
    try:
        yield urlsplit(admin_url)._replace(path=f"/{name}").geturl()
    finally:
        run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def meilisearch_url() -> Iterator[str]:
    """One fake Meilisearch server for the module: each test's indexes have a prefix of their own."""
    server = FakeServer(api_key="test-master-key")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchBackend]:
    kind = request.param
    engine: SearchBackend
    if kind == "sqlite":
        from coderic_kernel.search.backends.sqlite import SQLiteBackend

        engine = SQLiteBackend(tmp_path / "search.db")
    elif kind == "postgresql":
        from coderic_kernel.search.backends.postgres import PostgresBackend

        engine = PostgresBackend(request.getfixturevalue("postgres_url"), pool_max=2)
    else:
        from coderic_kernel.search.backends.meili import MeilisearchBackend

        engine = MeilisearchBackend(request.getfixturevalue("meilisearch_url"), "test-master-key",
                                    prefix=f"t{uuid.uuid4().hex[:8]}")
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


async def load(backend: SearchBackend, documents: Sequence[SearchDocument], index: RegisteredIndex | None = None
               ) -> tuple[RegisteredIndex, list[StoredDocument]]:
    index = index or make_index()
    await backend.prepare(index)
    stored = [index.store(d) for d in documents]
    await backend.upsert(index, stored)
    return index, stored


async def everything(backend: SearchBackend, index: RegisteredIndex, **kwargs: Any) -> tuple[list[str], Any]:
    result = await backend.search(index, BackendQuery(kwargs.pop("q", ""), limit=1000, **kwargs))
    return [h.id for h in result.hits], result


FILTERS = [
    "status = open",
    "status != open",
    "status IN [open, draft]",
    "status NOT IN [open, draft]",
    "tags = python",
    "tags != python",
    "tags IN [rust, 'machine learning']",
    "tags = \"machine learning\" AND remote = true",
    "budget > 50000",
    "budget >= 25000 AND budget < 75000",
    "budget 10000 TO 20000",
    "budget EXISTS",
    "budget NOT EXISTS",
    "NOT budget > 50000",
    "remote = false OR (status = closed AND tags IN [go, design])",
    "created >= 2026-03-01 AND created < '2026-04-01T00:00:00Z'",
    "NOT (status = archived OR tags = data) AND budget <= 90000",
    "tags NOT EXISTS",
]


async def test_filters_match_a_brute_force_computation(backend: SearchBackend) -> None:
    index, stored = await load(backend, generate())
    for expression in FILTERS:
        tree = parse_filter(expression, index.filterable)
        expected = sorted(d.id for d in stored if evaluate(tree, d.attrs))
        ids, result = await everything(backend, index, filter=tree)
        assert sorted(ids) == expected, expression
        assert result.total == len(expected), expression


async def test_facet_counts_match_a_brute_force_computation(backend: SearchBackend) -> None:
    index, stored = await load(backend, generate())
    for expression in (None, "remote = true", "budget > 30000 OR status = draft"):
        for q in ("", "platform"):
            await _facets_match(backend, index, stored, expression, q)


async def _facets_match(backend: SearchBackend, index: RegisteredIndex, stored: list[StoredDocument],
                        expression: str | None, q: str) -> None:
    tree = parse_filter(expression, index.filterable)
    matched = {d.id for d in stored if evaluate(tree, d.attrs)}
    if q:
        ids, _ = await everything(backend, index, q=q, filter=tree)
        assert ids and set(ids) <= matched
        matched = set(ids)  # which documents contain the word is the engine's call; the counts must follow them
    _, result = await everything(backend, index, q=q, filter=tree, facets=("status", "tags", "remote"))
    docs = [d for d in stored if d.id in matched]
    assert result.facets["status"] == dict(Counter(d.attrs["status"] for d in docs))
    assert result.facets["tags"] == dict(Counter(t for d in docs for t in d.attrs.get("tags", [])))
    assert result.facets["remote"] == dict(Counter("true" if d.attrs["remote"] else "false" for d in docs))
    assert result.total == len(docs)


async def test_a_query_finds_the_documents_holding_its_words(backend: SearchBackend) -> None:
    index, stored = await load(backend, generate())
    for word in ("mentor", "database"):
        ids, result = await everything(backend, index, q=word)
        expected = {d.id for d in stored if any(word in t.lower().split() for t in d.texts.values())}
        assert set(ids) == expected and result.total == len(expected)


async def test_sorting_matches_a_brute_force_order(backend: SearchBackend) -> None:
    index, stored = await load(backend, generate())
    with_budget = [d for d in stored if "budget" in d.attrs]
    ids, _ = await everything(backend, index, sort=(("budget", True),))
    assert ids[: len(with_budget)] == [d.id for d in sorted(with_budget, key=lambda d: -d.attrs["budget"])]
    assert set(ids[len(with_budget):]) == {d.id for d in stored if "budget" not in d.attrs}  # missing values last
    ids, _ = await everything(backend, index, sort=(("created", False),), filter=parse_filter("remote = true", index.filterable))
    assert ids == [d.id for d in sorted((d for d in stored if d.attrs["remote"]), key=lambda d: d.attrs["created"])]


async def test_pages_follow_one_another(backend: SearchBackend) -> None:
    index, stored = await load(backend, generate())
    order = (("budget", False),)
    everything_ids, _ = await everything(backend, index, sort=order)
    pages: list[str] = []
    for offset in range(0, 60, 20):
        result = await backend.search(index, BackendQuery("", sort=order, offset=offset, limit=20))
        pages.extend(h.id for h in result.hits)
    assert pages == everything_ids[:60]


async def test_title_matches_rank_first(backend: SearchBackend) -> None:
    filler = " ".join(["community"] * 5)
    documents = [
        SearchDocument("body1", {"title": "Weekly notes", "summary": "plans", "body": f"{filler} the zephyr engine {filler}"}),
        SearchDocument("title1", {"title": "Zephyr engine", "summary": "a project", "body": filler}),
        SearchDocument("body2", {"title": "Release plan", "summary": "dates", "body": "zephyr zephyr notes"}),
        SearchDocument("summary1", {"title": "Roadmap", "summary": "porting zephyr", "body": filler}),
        SearchDocument("title2", {"title": "The zephyr editor plugin", "summary": "editor", "body": "editor plugin"}),
        SearchDocument("none", {"title": "Unrelated", "summary": "nothing", "body": filler}),
    ]
    index, _ = await load(backend, documents)
    ids, result = await everything(backend, index, q="zephyr")
    assert set(ids[:2]) == {"title1", "title2"}, ids
    assert set(ids[2:]) == {"summary1", "body1", "body2"} and result.total == 5


async def test_highlights_are_escaped_html(backend: SearchBackend) -> None:
    documents = [SearchDocument("x", {
        "title": '<script>alert("owned")</script> Quokka & friends',
        "summary": "<img src=x onerror=alert(1)> quokka",
        "body": "plain body",
    })]
    index, _ = await load(backend, documents)
    result = await backend.search(index, BackendQuery("quokka"))
    assert [h.id for h in result.hits] == ["x"]
    lights = result.hits[0].highlights
    assert "<mark>Quokka</mark>" in lights["title"]
    assert "&lt;script&gt;" in lights["title"] and "<script" not in lights["title"]
    assert "&amp;" in lights["title"]
    assert "&lt;img" in lights["summary"] and "<img" not in lights["summary"]
    for text in lights.values():
        stripped = text.replace("<mark>", "").replace("</mark>", "")
        assert "<" not in stripped and ">" not in stripped


HOSTILE = [
    '"', "'", '""', "(((", ")))", "a AND", "OR OR OR", "NOT", "-", "--", "-quokka", "title:quokka", "quokka*", "*",
    "NEAR(a b)", "^quokka", "a & b | !c", "\\", "%", "_", "'; DROP TABLE x; --", "\" OR 1=1 --", "{}[]<>",
    "quokka" * 150, "é ü ñ 漢字 🦘", "\x00quokka\x00", "\u202e\u200b", ":*", "a:* & b", "<mark>", "x" * 999,
]


async def test_hostile_queries_never_raise(backend: SearchBackend) -> None:
    index, _ = await load(backend, generate(40))
    for q in HOSTILE:
        result = await backend.search(index, BackendQuery(q.replace("\x00", " "), facets=("status",)))
        assert result.total >= len(result.hits), q
        result = await backend.search(index, BackendQuery(q.replace("\x00", " "), offset=20))
        assert result.total >= len(result.hits), q


async def test_visibility_is_filtered_before_paging(backend: SearchBackend) -> None:
    documents = [
        SearchDocument("public", {"title": "Wombat public"}),
        SearchDocument("members", {"title": "Wombat members"}, visibility="members"),
        SearchDocument("mine", {"title": "Wombat mine"}, visibility="private", owner_id="u1"),
        SearchDocument("theirs", {"title": "Wombat theirs"}, visibility="private", owner_id="u2"),
        SearchDocument("staff", {"title": "Wombat staff"}, visibility="test.moderate"),
    ]
    index, _ = await load(backend, documents)
    guest, _ = await everything(backend, index, q="wombat")
    assert set(guest) == {"public", "staff"}  # a permission's holders are checked after the backend
    member, _ = await everything(backend, index, q="wombat", viewer="u1")
    assert set(member) == {"public", "members", "mine", "staff"}


async def test_delete_and_replace(backend: SearchBackend) -> None:
    index, stored = await load(backend, generate(30))
    await backend.delete(index, ["doc0001", "doc0002", "missing"])
    replaced = index.store(SearchDocument("doc0003", {"title": "Narwhal", "status": "open"}))
    await backend.upsert(index, [replaced])
    ids, result = await everything(backend, index)
    assert "doc0001" not in ids and "doc0002" not in ids and result.total == 28
    assert await backend.count(index) == 28
    ids, _ = await everything(backend, index, q="narwhal")
    assert ids == ["doc0003"]


async def test_a_rebuild_swaps_in_a_new_copy(backend: SearchBackend) -> None:
    index, _ = await load(backend, generate(20))
    fresh = [index.store(d) for d in generate(12, seed=99)]
    renamed = [StoredDocument.from_dict({**d.as_dict(), "id": "new" + d.id}) for d in fresh]

    async def batches() -> AsyncIterator[list[StoredDocument]]:
        yield renamed[:6]
        # a write while the copy is being filled reaches both copies
        await backend.upsert(index, [index.store(SearchDocument("during", {"title": "Axolotl"}))])
        yield renamed[6:]

    assert await backend.rebuild(index, batches()) == 12
    ids, result = await everything(backend, index)
    assert set(ids) == {d.id for d in renamed} | {"during"} and result.total == 13
    ids, _ = await everything(backend, index, q="axolotl")
    assert ids == ["during"]
    await backend.prepare(index)  # same layout: kept
    assert await backend.count(index) == 13


async def test_state_is_kept_per_index(backend: SearchBackend) -> None:
    index, _ = await load(backend, [])
    assert await backend.get_state(index, "synced_at") is None
    await backend.set_state(index, "synced_at", "2026-11-30T10:00:00+00:00")
    assert await backend.get_state(index, "synced_at") == "2026-11-30T10:00:00+00:00"


SQL_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)  # Meilisearch counts by itself


@pytest.fixture
def small_limits(backend: SearchBackend, monkeypatch: pytest.MonkeyPatch) -> SearchBackend:
    """A SQL backend with its bounds for large result sets lowered to fit the test data:
    counts estimated past 40 matches; sorted pages of 20 or more matches read along an index."""
    import importlib

    module = importlib.import_module(type(backend).__module__)
    monkeypatch.setattr(module, "EXACT_COUNT_LIMIT", 40)
    if hasattr(module, "WALK_ABOVE"):
        monkeypatch.setattr(module, "WALK_ABOVE", 20)
    return backend


@SQL_BACKENDS
async def test_past_the_count_limit_totals_and_facets_are_estimates_and_say_so(small_limits: SearchBackend) -> None:
    backend = small_limits
    index, stored = await load(backend, generate(400))
    result = await backend.search(index, BackendQuery("", facets=("status", "tags")))
    assert result.total_estimated and result.facets_estimated
    assert 0.75 * len(stored) <= result.total <= 1.25 * len(stored)
    exact = Counter(d.attrs["status"] for d in stored)
    assert set(result.facets["status"]) == set(exact)
    assert abs(sum(result.facets["status"].values()) - result.total) <= len(exact)  # each value scaled alike
    small = await backend.search(index, BackendQuery("", filter=parse_filter("budget 1 TO 9000", index.filterable), facets=("status",)))
    assert not small.total_estimated and not small.facets_estimated  # under the limit: exact
    expected = [d for d in stored if 1 <= d.attrs.get("budget", 0) <= 9000]
    assert small.total == len(expected) and small.facets["status"] == dict(Counter(d.attrs["status"] for d in expected))


@SQL_BACKENDS
async def test_sorted_pages_of_many_matches_keep_the_exact_order(small_limits: SearchBackend) -> None:
    backend = small_limits
    index, stored = await load(backend, generate(400))
    word = "platform"
    holding, _ = await everything(backend, index, q=word)  # which documents hold the word is the engine's call
    assert len(holding) > 60
    by_id = {d.id: d for d in stored}
    for sort, descending in ((("budget", True),), True), ((("created", False),), False):
        attribute = sort[0][0]
        valued = sorted((i for i in holding if attribute in by_id[i].attrs), key=lambda i: by_id[i].attrs[attribute],
                        reverse=descending)
        expected = valued + sorted(i for i in holding if attribute not in by_id[i].attrs)
        pages: list[str] = []
        for offset in range(0, 60, 20):
            result = await backend.search(index, BackendQuery(word, sort=sort, offset=offset, limit=20))
            pages.extend(h.id for h in result.hits)
            assert result.total == len(holding) or result.total_estimated  # PostgreSQL counts no faster than it sorts
        assert pages == expected[:60], attribute
    # ties on the sort value are broken by relevance, then consistently, on every page
    tied = await backend.search(index, BackendQuery(word, sort=(("status", False),), limit=100))
    pages = []
    for offset in range(0, 100, 20):
        pages.extend(h.id for h in (await backend.search(index, BackendQuery(word, sort=(("status", False),), offset=offset,
                                                                             limit=20))).hits)
    assert pages == [h.id for h in tied.hits]
    statuses = [by_id[h.id].attrs["status"] for h in tied.hits]
    assert statuses == sorted(statuses)
