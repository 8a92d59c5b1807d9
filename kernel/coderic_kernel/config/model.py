"""The kernel's own settings. Every backend is a URL; later services add theirs here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, FilePath, PlainValidator, SecretStr, field_validator, model_validator

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


def _vapid_key(value: object) -> object:
    if value == "":
        return None  # CODERIC_NOTIFICATIONS_VAPID_PRIVATE_KEY= turns push off
    if isinstance(value, str):
        from ..notifications.vapid import load  # py-vapid and cryptography only when a key is set

        load(value)
    return value


def _vapid_subject(value: object) -> object:
    if value is not None and (not isinstance(value, str) or not (
        (value.startswith("mailto:") and "@" in value) or (value.startswith("https://") and urlsplit(value).hostname)
    )):
        raise ValueError("the VAPID subject is a mailto: address (mailto:ops@example.org) or an https:// URL")
    return value


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


def _search_url(value: object) -> object:
    if value is None or value == "":
        return None
    from ..search.backends import parse_search_url

    if not isinstance(value, str):
        raise ValueError("a search URL is a string")
    parse_search_url(value)
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


def _provider_url(value: object) -> object:
    """An OAuth or OpenID Connect endpoint: https, or http only to this machine (tests, development)."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("a provider URL is https://host[:port][/path], without query or fragment")
    loopback = parts.hostname in {"localhost", "::1"} or parts.hostname.startswith("127.")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError("a provider URL must use https (http only for localhost)")
    return value.rstrip("/")  # type: ignore[union-attr]


ProviderURL = Annotated[str, BeforeValidator(_provider_url)]
#: Signature algorithms an ID token may use: asymmetric only, so neither ``none`` nor HMAC.
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OIDCProviderSettings(BaseModel):
    """One OpenID Connect provider members may sign in with (an entry of ``auth_oidc_providers``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$", description="In URLs and the audit: gitlab, google.")
    label: str = Field("", max_length=60, description="What the sign-in button says; unset: the name.")
    discovery_url: ProviderURL = Field(
        description="https://issuer/.well-known/openid-configuration; the issuer must be the part before /.well-known."
    )
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scopes: CommaList = Field(default_factory=lambda: ["openid", "email", "profile"])
    algorithms: CommaList = Field(default_factory=lambda: ["RS256"], description="ID token algorithms accepted.")
    link_by_email: bool = Field(True, description="Join an account with the same verified email on first sign-in.")

    @field_validator("name")
    @classmethod
    def _not_github(cls, name: str) -> str:
        if name == "github":
            raise ValueError("'github' is the built-in GitHub provider (auth_github_*); name this one otherwise")
        return name

    @field_validator("discovery_url")
    @classmethod
    def _well_known(cls, url: str) -> str:
        if not url.endswith("/.well-known/openid-configuration"):
            raise ValueError("the discovery URL ends with /.well-known/openid-configuration")
        return url

    @field_validator("scopes")
    @classmethod
    def _openid(cls, scopes: list[str]) -> list[str]:
        if "openid" not in scopes:
            raise ValueError("the scopes must include openid")
        return scopes

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, algorithms: list[str]) -> list[str]:
        wrong = [alg for alg in algorithms if alg not in ID_TOKEN_ALGORITHMS]
        if wrong or not algorithms:
            raise ValueError(f"ID token algorithms are some of {', '.join(ID_TOKEN_ALGORITHMS)} (not {wrong})")
        return algorithms


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
        description="Key that signs links (email tracking, unsubscribe, file URLs) and encrypts 2FA secrets and signing keys; required in production, kept in ./var/secret_key in development.",
    )
    auth_token_algorithm: Literal["ES256", "EdDSA"] = Field(
        "ES256", description="Signature algorithm of access tokens (a change takes effect with a new key at the next start)."
    )
    auth_access_token_seconds: int = Field(600, ge=60, le=3600, description="Lifetime of a JWT access token.")
    auth_audience: str | None = Field(None, description="The aud of access tokens; unset: public_url.")
    auth_session_idle_minutes: int = Field(
        30, ge=5, le=43_200, description="A session (cookie or refresh token) unused this long ends (OWASP ASVS L2: 30)."
    )
    auth_session_absolute_hours: int = Field(
        12, ge=1, le=8760, description="A session ends this long after sign-in, however active (OWASP ASVS L2: 12)."
    )
    auth_refresh_grace_seconds: int = Field(
        10, ge=0, le=120, description="A just-rotated refresh token presented again this soon is refused without revoking its session (concurrent refreshes)."
    )
    auth_require_2fa: bool = Field(
        False, description="Every member must use 2FA: a sign-in without it first sets up an authenticator app."
    )
    auth_require_2fa_roles: CommaList = Field(
        default_factory=lambda: ["admin", "moderator"],
        description="Roles that count only while their holder has 2FA on (admins must have 2FA).",
    )
    auth_key_rotation_days: int = Field(30, ge=1, le=365, description="Sign with a new key after this many days (the old key verifies until its tokens expire).")
    auth_password_list: FilePath | None = Field(
        None, description="A file of more passwords to refuse, one a line (plain or gzip), besides the list shipped with the kernel.",
    )
    auth_github_client_id: str | None = Field(None, description="Client id of the GitHub OAuth app; unset: no GitHub sign-in.")
    auth_github_client_secret: SecretStr | None = Field(None, description="Client secret of the GitHub OAuth app.")
    auth_github_url: ProviderURL = Field(
        "https://github.com", description="GitHub's site, for /login/oauth/... (GitHub Enterprise: https://host)."
    )
    auth_github_api_url: ProviderURL = Field(
        "https://api.github.com", description="GitHub's REST API (GitHub Enterprise: https://host/api/v3)."
    )
    auth_oidc_providers: list[OIDCProviderSettings] = Field(
        default_factory=list,
        description="OpenID Connect providers: [{name, discovery_url, client_id, client_secret, label, scopes, algorithms, link_by_email}].",
    )
    auth_oidc_jwks_refetch_seconds: float = Field(
        60, ge=0, le=3600, description="An ID token with an unknown kid fetches the provider's JWKS again at most this often."
    )
    auth_oauth_state_minutes: int = Field(10, ge=1, le=60, description="How long a member may take at the provider to sign in.")
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
    notifications_retention_days: int = Field(90, ge=1, le=3650, description="Notifications older than this leave the inbox.")
    notifications_heartbeat_seconds: float = Field(
        25, gt=0, le=300, description="A real-time stream (WebSocket or SSE) with nothing to send sends a ping this often."
    )
    notifications_session_check_seconds: float = Field(
        30, gt=0, le=3600, description="How often open streams check their session is still live (logout closes them)."
    )
    notifications_queue_size: int = Field(
        256, ge=1, le=100_000, description="Messages waiting for one slow stream before it is dropped and closed."
    )
    notifications_vapid_private_key: Annotated[SecretStr | None, BeforeValidator(_vapid_key)] = Field(
        None, description="The VAPID private key that signs Web Push ('coderic notifications vapid-keys' makes one); unset: no push.",
    )
    notifications_vapid_subject: Annotated[str | None, BeforeValidator(_vapid_subject)] = Field(
        None, description="How push services reach the operator: mailto:address or an https:// URL; unset: public_url (if https).",
    )
    notifications_push_ttl_seconds: int = Field(
        86_400, ge=0, le=2_419_200, description="How long a push service keeps a push for a browser that is offline."
    )
    notifications_push_subscriptions: int = Field(
        10, ge=1, le=100, description="Browsers one member may subscribe to push; a new one beyond drops the oldest."
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

    search_url: Annotated[str | None, BeforeValidator(_search_url)] = Field(
        None, description="Where search indexes live: unset (beside the database: SQLite FTS5 or PostgreSQL full text), "
        "sqlite:///path.db, postgresql://..., meilisearch://host:7700 or meilisearch+https://host.",
    )
    search_api_key: SecretStr | None = Field(None, description="Meilisearch API key (unset: a server without a master key).")
    search_index_prefix: str = Field(
        "coderic", pattern=r"^[a-z][a-z0-9_]{0,30}$", description="Prefix of Meilisearch index uids (several platforms may share a server)."
    )
    search_sync_minutes: int = Field(
        1, ge=0, le=1440, description="How often each index catches up with its plugin's changes (documents since the last run); 0: never."
    )

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
    def _oauth_providers(self) -> KernelSettings:
        if bool(self.auth_github_client_id) != (self.auth_github_client_secret is not None):
            raise ValueError("auth_github_client_id and auth_github_client_secret go together: set both or neither")
        names = [provider.name for provider in self.auth_oidc_providers]
        if len(names) != len(set(names)):
            raise ValueError(f"auth_oidc_providers: each provider needs its own name (got {names})")
        return self

    @model_validator(mode="after")
    def _push_needs_a_subject(self) -> KernelSettings:
        if self.notifications_vapid_private_key is None:
            return self
        subject = self.vapid_subject()
        if subject is None:
            raise ValueError("Web Push needs notifications_vapid_subject (mailto:you@example.org or an https:// URL): "
                             "the public URL is not https")
        from ..notifications.vapid import check_subject

        check_subject(self.notifications_vapid_private_key.get_secret_value(), subject)
        return self

    def vapid_subject(self) -> str | None:
        """Who push services contact about this platform's pushes: the subject set, else an https public_url."""
        if self.notifications_vapid_subject:
            return self.notifications_vapid_subject
        return self.public_url if self.public_url.startswith("https://") else None

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
        if key == "search_url":
            from ..search.backends import SEARCH_URL_FORMS

            return SEARCH_URL_FORMS
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
