"""The kernel's own settings. Every backend is a URL; later services add theirs here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import PlainValidator, BaseModel, ConfigDict, Field

DATABASE_URL_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or postgresql://user:password@host:5432/name"


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    """A parsed ``CODERIC_DATABASE_URL``."""

    url: str
    dialect: Literal["sqlite", "postgresql"]
    path: Path | None = None  # sqlite only

    def redacted(self) -> str:
        return redact_url(self.url)

    def __str__(self) -> str:
        return self.redacted()


def parse_database_url(value: str) -> DatabaseURL:
    value = value.strip()
    scheme, _, rest = value.partition("://")
    if scheme == "sqlite":
        if not rest.startswith("/") or rest in {"/", "/:memory:"}:
            raise ValueError(
                "a SQLite URL needs a file path (an in-memory database cannot be shared between connections)"
            )
        return DatabaseURL(value, "sqlite", Path(unquote(rest[1:])))
    if scheme in {"postgresql", "postgres"}:
        parts = urlsplit(value)
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError("a PostgreSQL URL needs a host")
        return DatabaseURL(value, "postgresql")
    raise ValueError(f"unsupported scheme {scheme!r}")


def _database_url(value: str | DatabaseURL) -> DatabaseURL:
    return value if isinstance(value, DatabaseURL) else parse_database_url(value)


def redact_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host``; other parts stay readable."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return parts._replace(netloc=netloc).geturl()


class KernelSettings(BaseModel):
    """The ``[kernel]`` table of ``plugins.toml``; each key also reads ``CODERIC_<KEY>``."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    environment: Literal["development", "production", "test"] = "development"
    database_url: Annotated[DatabaseURL, PlainValidator(_database_url)] = Field(
        default_factory=lambda: parse_database_url("sqlite:///./var/coderic.db"),
        description=f"Database to use: {DATABASE_URL_FORMS}.",
    )
    database_pool_min: int = Field(1, ge=0, description="PostgreSQL pool: connections kept open.")
    database_pool_max: int = Field(10, ge=1, description="PostgreSQL pool: most connections open at once.")
    migrate_on_start: bool = Field(False, description="Apply pending migrations when the server starts.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest JSON request body accepted, in bytes.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def accepted(cls, key: str) -> str:
        """What values a key takes, for error messages."""
        if key == "database_url":
            return DATABASE_URL_FORMS
        field = cls.model_fields.get(key)
        if field is None:
            return f"one of the known keys: {', '.join(cls.model_fields)}"
        annotation = field.annotation
        args = getattr(annotation, "__args__", None)
        if args and all(isinstance(a, str) for a in args):
            return "one of " + ", ".join(args)
        if annotation is bool:
            return "true or false"
        if annotation is int:
            bounds = [f"{m.__class__.__name__.lower()} {getattr(m, m.__class__.__name__.lower())}" for m in field.metadata if hasattr(m, m.__class__.__name__.lower())]
            return "a whole number" + (f" ({', '.join(bounds)})" if bounds else "")
        return getattr(annotation, "__name__", str(annotation))
