"""The kernel's own settings. Every backend is a URL; later services add theirs here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, SecretStr, field_validator, model_validator

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


def _redis_url(value: object) -> object:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
    return value


_SECRET_QUERY = re.compile(r"(?i)((?:^|&)(?:password|passwd|sslpassword|secret|token)=)[^&]*")


def redact_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host``; other parts stay readable."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not even parseable: keep the user, hide what follows it up to the host
        scheme, _, rest = url.partition("://")
        userinfo, at, host = rest.rpartition("@")
        return f"{scheme}://{userinfo.partition(':')[0]}:********@{host}" if at else url
    redacted = parts
    if password is not None:
        redacted = redacted._replace(netloc=parts.netloc.replace(f":{password}@", ":********@", 1))
    if parts.query:  # libpq also takes ?password=...
        redacted = redacted._replace(query=_SECRET_QUERY.sub(r"\1********", parts.query))
    return url if redacted == parts else redacted.geturl()  # geturl() would rewrite sqlite:///x as sqlite:/x


def _comma_list(value: object) -> object:
    """Environment variables carry lists as ``a,b,c``."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


CommaList = Annotated[list[str], BeforeValidator(_comma_list)]

#: Languages the kernel's email templates (and later its other texts) exist in.
LANGUAGES = ("es", "en")
EMAIL_URL_FORMS = "file://./var/mail, smtp://user:password@host:587, smtps://user:password@host:465 or ses://eu-west-1"


def _email_url(value: object) -> object:
    if not isinstance(value, str) or value.split("://", 1)[0] not in {"file", "smtp", "smtps", "ses"} or "://" not in value:
        raise ValueError("an email URL starts with file://, smtp://, smtps:// or ses://")
    if value.startswith(("smtp://", "smtps://")) and not urlsplit(value).hostname:
        raise ValueError("an SMTP URL needs a host")
    return value


def _public_url(value: object) -> object:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("the public URL is scheme://host[:port][/path], without query or fragment")
    return value.rstrip("/")  # type: ignore[union-attr]


def _one_line(value: object) -> object:
    if isinstance(value, str) and ("\r" in value or "\n" in value):
        raise ValueError("must be one line")
    return value


STORAGE_URL_FORMS = "file://./var/files, file:///absolute/path or s3://bucket"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _storage_url(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(("file://", "s3://")):
        raise ValueError("a storage URL starts with file:// or s3://")
    rest = value.split("://", 1)[1]
    if value.startswith("file://") and not rest:
        raise ValueError("a file:// storage URL needs a folder")
    if value.startswith("s3://") and not _BUCKET.match(rest.rstrip("/")):
        raise ValueError("s3://<bucket>: a bucket name is 3-63 lower-case letters, digits, '.' or '-'")
    return value


def _optional_base_url(value: object) -> object:
    return None if value in (None, "") else _public_url(value)


class LifecycleRule(BaseModel):
    """One storage lifecycle rule: files under ``prefix`` expire after ``expire_days``;
    deleted files' old versions are kept ``noncurrent_days``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(pattern=r"^(tmp/|private/|public/|)[a-z0-9_./-]*$")
    expire_days: int | None = Field(None, ge=1)
    noncurrent_days: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _does_something(self) -> LifecycleRule:
        if self.expire_days is None and self.noncurrent_days is None:
            raise ValueError("a lifecycle rule needs expire_days or noncurrent_days")
        return self


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
    access_log: bool = Field(
        True, description="Write one access-log line per request (the load balancer's log may make it redundant)."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines as JSON or text; auto: text in development, JSON otherwise."
    )
    cors_origins: CommaList = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (scheme://host[:port])."
    )
    cors_allow_credentials: bool = Field(False, description="Let allowed origins send cookies.")
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="Proxy addresses or networks whose X-Forwarded-For/-Proto headers are believed.",
    )
    hsts_max_age: int = Field(31_536_000, ge=0, description="Strict-Transport-Security max-age over HTTPS (0: off).")
    redis_url: Annotated[str | None, BeforeValidator(_redis_url)] = Field(
        None, description="Redis for cache, rate limits, events and jobs (redis://host:6379/0); unset: in-process."
    )
    rate_limit_default: str = Field(
        "600/minute", description="The policy of every route that names none, per client address (like '600/minute')."
    )
    rate_limits: dict[str, str] = Field(
        default_factory=dict, description="Rates that replace those of named policies: {\"projects.create\" = \"5/minute\"}."
    )
    rate_limit_enabled: bool = Field(
        True, description="Check every route's rate limit policy (false: no route is limited; plugin.rate_limits.hit still counts)."
    )
    outbox_poll_seconds: float = Field(0.5, gt=0, le=60, description="How often the outbox relay looks for new work.")
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    metrics_token: SecretStr | None = Field(None, description="When set, /metrics requires 'Authorization: Bearer <token>'.")
    sentry_dsn: SecretStr | None = Field(None, description="Send unhandled errors to Sentry (needs coderic-kernel[sentry]).")
    public_url: Annotated[str, BeforeValidator(_public_url)] = Field(
        "http://localhost:8000", description="Base URL of the platform as users reach it; every link in an email starts with it."
    )
    secret_key: SecretStr | None = Field(
        None, min_length=32,
        description="Key that signs links (email tracking, unsubscribe, file URLs); required in production, generated per process otherwise.",
    )
    default_language: Literal["es", "en"] = Field("en", description="Language of email for addresses whose own is unknown.")
    email_url: Annotated[str, BeforeValidator(_email_url)] = Field(
        "file://./var/mail", description=f"Where email goes: {EMAIL_URL_FORMS}."
    )
    email_from: Annotated[str, BeforeValidator(_one_line)] = Field(
        "Coderic <no-reply@localhost>", description="The From address of every email ('Name <address>')."
    )
    email_templates_dir: Path | None = Field(
        None, description="Folder whose <plugin>/<language>/<template>.* files override the templates of the same name."
    )
    email_tracking: bool = Field(True, description="Track opens and clicks of non-essential email (users can still opt out).")
    email_sns_topics: CommaList = Field(
        default_factory=list, description="SNS topic ARNs whose SES bounce and complaint notifications are accepted."
    )
    storage_url: Annotated[str, BeforeValidator(_storage_url)] = Field(
        "file://./var/files", description=f"Where files are stored: {STORAGE_URL_FORMS}."
    )
    storage_s3_endpoint: Annotated[str | None, BeforeValidator(_optional_base_url)] = Field(
        None, description="S3 endpoint for S3-compatible services (https://fra1.digitaloceanspaces.com); unset: AWS."
    )
    storage_s3_region: str = Field("us-east-1", description="S3 region of the bucket.")
    storage_s3_access_key: SecretStr | None = Field(None, description="S3 access key id; unset: boto3's usual sources (environment, instance role).")
    storage_s3_secret_key: SecretStr | None = Field(None, description="S3 secret access key.")
    storage_s3_addressing: Literal["auto", "path", "virtual"] = Field(
        "auto", description="S3 URL style: path (host/bucket/key: SeaweedFS, MinIO), virtual (bucket.host/key) or auto."
    )
    storage_public_base_url: Annotated[str | None, BeforeValidator(_optional_base_url)] = Field(
        None, description="CDN base URL serving public files as <base>/<key>; unset: the API serves them."
    )
    storage_url_expiry_seconds: int = Field(300, ge=1, le=604_800, description="How long a signed download URL works.")
    storage_upload_expiry_seconds: int = Field(3600, ge=60, le=604_800, description="How long a signed upload URL works.")
    storage_user_quota_bytes: int | None = Field(1_073_741_824, ge=0, description="Bytes each user may store across plugins (unset: no limit).")
    storage_plugin_quota_bytes: int | None = Field(None, ge=0, description="Bytes each plugin's files may take in all (unset: no limit).")
    storage_buffer_bytes: int = Field(
        8_388_608, ge=5_242_880, le=268_435_456, description="Most bytes of one upload held in memory (the S3 part size; at least 5 MiB)."
    )
    storage_lifecycle: list[LifecycleRule] = Field(
        default_factory=lambda: [LifecycleRule(prefix="tmp/", expire_days=1)],
        description="Lifecycle rules: [{prefix = \"tmp/\", expire_days = 1}, {prefix = \"\", noncurrent_days = 30}].",
    )
    storage_orphan_hours: float = Field(24, gt=0, description="Uploads of purposes that need attaching are deleted when still unattached after this.")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            if origin == "null" or parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"} or parts.query:
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port]; 'null' is never allowed)")
        return [origin.rstrip("/") for origin in origins]

    @model_validator(mode="after")
    def _secret_key_in_production(self) -> KernelSettings:
        if self.environment == "production" and self.secret_key is None:
            raise ValueError(
                "secret_key is required in production: set CODERIC_SECRET_KEY to a long random value "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @model_validator(mode="after")
    def _credentials_need_explicit_origins(self) -> KernelSettings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError("cors_origins cannot be '*' when cors_allow_credentials is true; list the origins")
        return self

    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format == "auto":
            return "text" if self.environment == "development" else "json"
        return self.log_format

    @classmethod
    def accepted(cls, key: str) -> str:
        """What values a key takes, for error messages."""
        if key == "database_url":
            return DATABASE_URL_FORMS
        if key == "email_url":
            return EMAIL_URL_FORMS
        if key == "storage_url":
            return STORAGE_URL_FORMS
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
        return field.description or getattr(annotation, "__name__", str(annotation))
