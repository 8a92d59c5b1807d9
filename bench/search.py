"""Search: query latency (p50, p95) at 10,000 and 100,000 generated documents, and indexing
throughput, for SQLite FTS5 and PostgreSQL full text.

The documents are generated (seeded): a title of 3-7 words, a summary of 12 and a body of 40,
drawn from a 6,000-word vocabulary with Zipf-like frequencies, plus a status, tags, a budget and
a remote flag. Each backend fills an index with ``rebuild`` (batches of 1,000, as ``coderic
search reindex`` does) and answers the same mix of queries: one or two mid-frequency words,
the same with a filter, with facets (status and tags counted over every match), sorted by budget,
a three-word query, a prefix, a typo, and a filter alone. Every query asks for the first page
of 20 hits with highlights, as ``GET /api/v1/search`` does.

Targets: p95 at most 25 ms at 100,000 documents on each backend, and p95 at 100,000 at most
twice p95 at 10,000. Informative: always exits 0 unless a backend cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from _servers import BenchmarkError, exit_on_sigterm

from coderic_kernel.search.backends import BackendQuery, SearchBackend
from coderic_kernel.search.filters import parse_filter
from coderic_kernel.search.registry import RegisteredIndex, StoredDocument
from coderic_sdk import SearchAttribute, SearchDocument, SearchField, SearchIndex

SIZES = (10_000, 100_000)
BACKENDS = ("sqlite", "postgresql")
TARGET_P95_MS = 25.0
TARGET_RATIO = 2.0
BATCH = 1000
STATUSES = ("open", "closed", "draft", "archived")
TAGS = tuple(f"tag{i}" for i in range(40))
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """Pronounceable made-up words of 3 to 10 letters (so prefixes spread as in a real language)."""
    words: set[str] = set()
    while len(words) < size:
        length = rng.randint(3, 10)
        words.add("".join(rng.choice(CONSONANTS if i % 2 == 0 else VOWELS) for i in range(length)))
    return sorted(words)


class Corpus:
    def __init__(self, seed: int = 10) -> None:
        self.rng = random.Random(seed)
        self.words = vocabulary(6000, self.rng)
        self.rng.shuffle(self.words)
        weights = [1 / (rank + 1) ** 1.05 for rank in range(len(self.words))]
        total = sum(weights)
        self.cumulative = []
        running = 0.0
        for weight in weights:
            running += weight / total
            self.cumulative.append(running)

    def sample(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def document(self, i: int) -> SearchDocument:
        rng = self.rng
        return SearchDocument(str(i), {
            "title": " ".join(self.sample(rng.randint(3, 7))).capitalize(),
            "summary": " ".join(self.sample(12)),
            "body": " ".join(self.sample(40)),
            "status": rng.choice(STATUSES),
            "tags": rng.sample(TAGS, rng.randint(0, 3)),
            "budget": rng.randint(10, 100_000),
            "remote": rng.random() < 0.5,
        }, visibility="public" if rng.random() < 0.9 else "members")

    def mid_word(self) -> str:
        """A word of middling frequency (ranks 50 to 1,500): what members type, neither 'the' nor a rarity."""
        return self.words[self.rng.randint(50, 1500)]


async def _none(since: Any) -> AsyncIterator[SearchDocument]:
    if False:
        yield  # pragma: no cover


def index() -> RegisteredIndex:
    spec = SearchIndex(
        "projects",
        fields=(SearchField("title", 4), SearchField("summary", 2), SearchField("body", 1)),
        attributes=(SearchAttribute("status", facetable=True, sortable=True), SearchAttribute("tags", "keywords", facetable=True),
                    SearchAttribute("budget", "number", sortable=True), SearchAttribute("remote", "boolean", facetable=True)),
        documents=_none, language="english",
    )
    return RegisteredIndex("bench.projects", "bench", spec)


def queries(corpus: Corpus, count: int, registered: RegisteredIndex) -> list[BackendQuery]:
    rng = random.Random(99)
    made: list[BackendQuery] = []
    for i in range(count):
        kind = i % 8
        word, other = corpus.mid_word(), corpus.mid_word()
        viewer = "u1" if rng.random() < 0.5 else None
        if kind == 0:
            made.append(BackendQuery(word, viewer=viewer))
        elif kind == 1:
            made.append(BackendQuery(f"{word} {other}", viewer=viewer))
        elif kind == 2:
            made.append(BackendQuery(word, parse_filter("status = open AND remote = true", registered.filterable), viewer=viewer))
        elif kind == 3:
            made.append(BackendQuery(word, facets=("status", "tags"), viewer=viewer))
        elif kind == 4:
            made.append(BackendQuery(word, sort=(("budget", True),), viewer=viewer))
        elif kind == 5:
            made.append(BackendQuery(f"{word} {other} {corpus.mid_word()}", viewer=viewer))
        elif kind == 6:
            made.append(BackendQuery(word[: max(3, len(word) - 2)], viewer=viewer))  # typing: a prefix
        else:
            made.append(BackendQuery("", parse_filter(f"tags IN [{rng.choice(TAGS)}, {rng.choice(TAGS)}] AND budget > 50000",
                                                      registered.filterable), facets=("status",), viewer=viewer))
    return made


async def open_backend(kind: str, workdir: Path) -> tuple[SearchBackend, Any]:
    if kind == "sqlite":
        from coderic_kernel.search.backends.sqlite import SQLiteBackend

        backend: SearchBackend = SQLiteBackend(workdir / f"search-{uuid.uuid4().hex[:6]}.db")
        await backend.open()
        return backend, None
    import asyncpg
    from coderic_kernel.testing import postgres_admin_url
    from urllib.parse import urlsplit

    from coderic_kernel.search.backends.postgres import PostgresBackend

    admin_url = postgres_admin_url()
    try:
        admin = await asyncpg.connect(admin_url, timeout=5)
    except Exception as exc:
        raise BenchmarkError(f"PostgreSQL at {admin_url} is unreachable: {exc}") from exc
    name = f"coderic_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    backend = PostgresBackend(urlsplit(admin_url)._replace(path=f"/{name}").geturl(), pool_max=4)
    await backend.open()

    async def drop() -> None:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return backend, drop


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def measure_one(kind: str, size: int, query_count: int, workdir: Path) -> dict[str, Any]:
    corpus = Corpus()
    registered = index()
    documents = [registered.store(corpus.document(i)) for i in range(size)]

    async def batches() -> AsyncIterator[list[StoredDocument]]:
        for start in range(0, len(documents), BATCH):
            yield documents[start:start + BATCH]

    backend, cleanup = await open_backend(kind, workdir)
    try:
        await backend.prepare(registered)
        started = time.perf_counter()
        await backend.rebuild(registered, batches())
        indexing = time.perf_counter() - started
        mix = queries(corpus, query_count, registered)
        for query in mix[:40]:  # warm caches, untimed
            await backend.search(registered, query)
        latencies: list[float] = []
        totals: list[int] = []
        for query in mix:
            begun = time.perf_counter()
            result = await backend.search(registered, query)
            latencies.append((time.perf_counter() - begun) * 1000)
            totals.append(result.total)
        return {
            "documents": size, "index_seconds": round(indexing, 2), "docs_per_second": round(size / indexing),
            "queries": len(latencies), "p50_ms": round(statistics.median(latencies), 2),
            "p95_ms": round(percentile(latencies, 0.95), 2), "max_ms": round(max(latencies), 2),
            "median_matches": int(statistics.median(totals)),
        }
    finally:
        await backend.close()
        if cleanup is not None:
            await cleanup()


async def measure(backends: Sequence[str], sizes: Sequence[int], query_count: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="coderic-bench-search-") as tmp:
        for kind in backends:
            result[kind] = {}
            for size in sizes:
                numbers = await measure_one(kind, size, query_count, Path(tmp))
                result[kind][str(size)] = numbers
                print(f"  {kind:<10} {size:>7} docs: indexed in {numbers['index_seconds']:>6.1f} s "
                      f"({numbers['docs_per_second']:>6} docs/s); {numbers['queries']} queries: "
                      f"p50 {numbers['p50_ms']:.2f} ms, p95 {numbers['p95_ms']:.2f} ms, max {numbers['max_ms']:.1f} ms "
                      f"(median {numbers['median_matches']} matches)", flush=True)
            if len(sizes) >= 2:
                small, large = result[kind][str(sizes[0])], result[kind][str(sizes[-1])]
                ratio = large["p95_ms"] / small["p95_ms"] if small["p95_ms"] else float("inf")
                result[kind]["p95_ratio"] = round(ratio, 2)
                result[kind]["p95_target_met"] = large["p95_ms"] <= TARGET_P95_MS
                result[kind]["ratio_target_met"] = ratio <= TARGET_RATIO
    return result


def report(result: dict[str, Any], sizes: Sequence[int]) -> None:
    print()
    for kind, numbers in result.items():
        if "p95_ratio" not in numbers:
            continue
        large = numbers[str(sizes[-1])]
        print(f"  {kind}: p95 at {sizes[-1]:,} = {large['p95_ms']:.2f} ms (target <= {TARGET_P95_MS:.0f} ms: "
              f"{'met' if numbers['p95_target_met'] else 'MISSED'}); p95 {sizes[-1]:,} / p95 {sizes[0]:,} = "
              f"{numbers['p95_ratio']:.2f} (target <= {TARGET_RATIO:.0f}: {'met' if numbers['ratio_target_met'] else 'MISSED'})")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite, postgresql")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="comma-separated document counts")
    parser.add_argument("--queries", type=int, default=400, help="timed queries per backend and size")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        raise BenchmarkError(f"unknown backend(s) {unknown}")
    result = asyncio.run(measure(backends, sizes, args.queries))
    report(result, sizes)
    return result


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        main()
    except BenchmarkError as exc:
        print(f"could not run: {exc}")
        sys.exit(1)
