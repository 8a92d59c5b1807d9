"""What every search backend does, and what they share: highlighting, the visibility pre-filter,
the user's words.

A backend keeps one live copy of each index. ``rebuild`` fills a new copy while the live one
keeps answering, then swaps them in one step (no downtime); writes made meanwhile go to both.
"""

from __future__ import annotations

import html
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..filters import Node
from ..registry import MARK_END, MARK_START, RegisteredIndex, StoredDocument

HIGHLIGHT_CHARS = 300
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 32


@dataclass(frozen=True, slots=True)
class BackendQuery:
    q: str
    filter: Node | None = None
    facets: tuple[str, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()  # (attribute, descending)
    offset: int = 0
    limit: int = 20
    viewer: str | None = None  # the searcher's user id; None: a guest
    highlight: bool = True


@dataclass(slots=True)
class BackendHit:
    id: str
    score: float
    data: Mapping[str, Any]
    visibility: str
    owner_id: str | None
    resource_type: str | None
    resource_id: str | None
    highlights: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class BackendResult:
    hits: list[BackendHit]
    total: int
    facets: dict[str, dict[str, int]]
    total_estimated: bool = False
    facets_estimated: bool = False


#: Matches counted one by one. Beyond this many, the SQL backends estimate the total and the
#: facet counts from the first this many matches (and say so, as Algolia's ``exhaustive`` flags
#: and Meilisearch's ``estimatedTotalHits`` do): a query's cost then stays bounded as an index
#: grows, while the page itself is always exact.
EXACT_COUNT_LIMIT = 500


def scaled_facets(counted: dict[str, dict[str, int]], sampled: int, total: int) -> dict[str, dict[str, int]]:
    """Facet counts of a sample of ``sampled`` matches, scaled to ``total`` matches."""
    if sampled <= 0 or total <= sampled:
        return counted
    factor = total / sampled
    return {name: {value: max(1, round(number * factor)) for value, number in values.items()}
            for name, values in counted.items()}


class SearchBackend(ABC):
    kind: str = ""

    async def open(self) -> None:
        """Connect (the kernel calls it once, when it starts)."""

    async def close(self) -> None:
        """Disconnect."""

    async def ping(self) -> None:
        """Return when the backend answers; raise otherwise."""

    @abstractmethod
    async def prepare(self, index: RegisteredIndex) -> None:
        """Create the live copy of ``index`` unless it exists (with this layout)."""

    @abstractmethod
    async def upsert(self, index: RegisteredIndex, documents: Sequence[StoredDocument]) -> None:
        """Add or replace documents (in the live copy and in a copy being rebuilt)."""

    @abstractmethod
    async def delete(self, index: RegisteredIndex, ids: Sequence[str]) -> None:
        """Remove documents (unknown ids are ignored)."""

    @abstractmethod
    async def search(self, index: RegisteredIndex, query: BackendQuery) -> BackendResult: ...

    @abstractmethod
    async def rebuild(self, index: RegisteredIndex, batches: AsyncIterable[Sequence[StoredDocument]]) -> int:
        """Fill a new copy from ``batches``, then make it the live one; how many documents."""

    @abstractmethod
    async def count(self, index: RegisteredIndex) -> int: ...

    @abstractmethod
    async def get_state(self, index: RegisteredIndex, key: str) -> str | None:
        """A value kept with the index (``synced_at``: when its last catch-up started)."""

    @abstractmethod
    async def set_state(self, index: RegisteredIndex, key: str, value: str) -> None: ...


# ------------------------------------------------------------------------------- helpers


def words(q: str) -> list[str]:
    """The words of a query (letters and digits; everything else separates them)."""
    return _WORD.findall(q)[:MAX_WORDS]


def escape_marked(text: str, limit: int = HIGHLIGHT_CHARS) -> str | None:
    """Text with ``MARK_START``/``MARK_END`` around matched words as safe HTML: everything
    escaped, the markers turned into ``<mark>``/``</mark>``, cut to about ``limit`` characters
    around the first match. ``None`` when nothing is marked."""
    start = text.find(MARK_START)
    if start < 0 or MARK_END not in text:
        return None
    if len(text) > limit:
        begin = max(0, start - limit // 3)
        while begin > 0 and not text[begin - 1].isspace() and start - begin < limit // 2:
            begin -= 1
        end = min(len(text), begin + limit)
        piece = text[begin:end]
        # a cut must not leave a mark open
        if piece.count(MARK_START) > piece.count(MARK_END):
            piece += MARK_END
        text = ("…" if begin > 0 else "") + piece + ("…" if end < len(text) else "")
    out: list[str] = []
    open_ = False
    for part in re.split(f"([{MARK_START}{MARK_END}])", text):
        if part == MARK_START:
            if not open_:
                out.append("<mark>")
                open_ = True
        elif part == MARK_END:
            if open_:
                out.append("</mark>")
                open_ = False
        else:
            out.append(html.escape(part, quote=True))
    if open_:
        out.append("</mark>")
    return "".join(out)


def mark_words(text: str, terms: Sequence[str], prefix_last: bool = True) -> str:
    """Wrap the words of ``text`` that match ``terms`` (case-insensitively, the last one as a
    prefix) in the markers: for backends whose own highlighting cannot be trusted."""
    wanted = [t.lower() for t in terms]
    if not wanted:
        return text

    def hit(word: str) -> bool:
        lower = word.lower()
        return any(lower == t or lower.startswith(t[:max(3, len(t) - 2)]) or (prefix_last and i == len(wanted) - 1 and lower.startswith(t))
                   for i, t in enumerate(wanted))

    return _WORD.sub(lambda m: f"{MARK_START}{m.group(0)}{MARK_END}" if hit(m.group(0)) else m.group(0), text)


VISIBLE_TO_ALL = "public"
