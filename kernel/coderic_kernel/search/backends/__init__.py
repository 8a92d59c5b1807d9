"""The search backend an operator chose (``CODERIC_SEARCH_URL``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .base import BackendHit, BackendQuery, BackendResult, SearchBackend

if TYPE_CHECKING:
    from ...config import KernelSettings

SEARCH_URL_FORMS = (
    "unset (SQLite FTS5 beside a SQLite database, PostgreSQL full text in a PostgreSQL one), sqlite:///path.db, "
    "postgresql://user:password@host/name, meilisearch://host:7700 or meilisearch+https://host"
)


def parse_search_url(value: str) -> tuple[str, str]:
    """(kind, location) of a search URL; ``ValueError`` when it is not one."""
    scheme, _, rest = value.partition("://")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest in ("/", "/:memory:"):
            raise ValueError("a SQLite search URL needs a file path: sqlite:///relative.db or sqlite:////absolute.db")
        return "sqlite", unquote(rest[1:])
    if scheme in ("postgresql", "postgres"):
        if not urlsplit(value).hostname and "host=" not in urlsplit(value).query:
            raise ValueError("a PostgreSQL search URL needs a host")
        return "postgresql", value
    if scheme in ("meilisearch", "meilisearch+http", "meilisearch+https"):
        parts = urlsplit(value)
        if not parts.hostname or parts.query or parts.fragment:
            raise ValueError("a Meilisearch URL is meilisearch://host:port or meilisearch+https://host[:port][/path]")
        http = "https" if scheme == "meilisearch+https" else "http"
        return "meilisearch", f"{http}://{parts.netloc}{parts.path.rstrip('/')}"
    raise ValueError("a search URL starts with sqlite://, postgresql:// or meilisearch://")


def backend_for(settings: KernelSettings) -> SearchBackend:
    url = settings.search_url
    if not url:
        database = settings.database_url
        if database.dialect == "sqlite":
            assert database.path is not None
            path = Path(database.path)
            url = f"sqlite:///{path.with_name(path.stem + '-search' + (path.suffix or '.db'))}"
        else:
            url = database.url
    kind, location = parse_search_url(url)
    if kind == "sqlite":
        from .sqlite import SQLiteBackend

        return SQLiteBackend(location)
    if kind == "postgresql":
        from .postgres import PostgresBackend

        return PostgresBackend(location)
    from .meili import MeilisearchBackend

    key = settings.search_api_key.get_secret_value() if settings.search_api_key is not None else None
    return MeilisearchBackend(location, key, prefix=settings.search_index_prefix)


__all__ = ["BackendHit", "BackendQuery", "BackendResult", "SearchBackend", "backend_for", "parse_search_url",
           "SEARCH_URL_FORMS"]
