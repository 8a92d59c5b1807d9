"""Sign-in through GitHub and OpenID Connect providers: the conversation with the provider.

Each provider builds its authorization URL (``state``, PKCE S256, and for OpenID Connect a
``nonce``) and, given the code the browser came back with, exchanges it with Authlib's
client and returns an :class:`ExternalProfile`. What happens to the account next is
``identity/linking.py``'s business; the routes are in ``identity/routes/oauth.py``.

OpenID Connect ID tokens are checked here: an algorithm from the provider's allow-list
(asymmetric only: ``none`` and HMAC never pass), a key of the provider's JWKS (fetched again
when a token names an unknown ``kid``, at most once per ``auth_oidc_jwks_refetch_seconds``),
``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, ``nonce`` and ``at_hash``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from ..config.model import KernelSettings, OIDCProviderSettings

logger = logging.getLogger("coderic.auth.oauth")

GITHUB = "github"
GITHUB_SCOPES = "read:user user:email"
GITHUB_API_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
HTTP_TIMEOUT = 10.0
#: How long a fetched JWKS is trusted before it is fetched again, tokens or not.
JWKS_MAX_AGE = 3600.0
#: Clock skew allowed on ``exp`` and ``iat`` of ID tokens.
LEEWAY_SECONDS = 60
#: The hash of ``at_hash`` for each signature algorithm (OpenID Connect Core §3.1.3.6).
AT_HASH = {"RS256": "sha256", "PS256": "sha256", "ES256": "sha256", "RS384": "sha384", "PS384": "sha384",
           "ES384": "sha384", "RS512": "sha512", "PS512": "sha512", "ES512": "sha512", "EdDSA": "sha512"}
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class SignInFailed(Exception):
    """A provider sign-in that did not work. ``reason`` is a short code the browser is sent
    back with and the audit records; ``detail`` is for the log only."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ExternalProfile:
    """Who the provider says signed in. ``email_verified`` is the provider's word on the email."""

    provider: str
    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str = ""
    login: str = ""
    bio: str = ""
    location: str = ""
    avatar_url: str = ""
    github_id: int | None = None


class Provider:
    """What the routes need of a provider."""

    name: str
    label: str
    kind: str
    scopes: str
    link_by_email: bool = True

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self._tls: ssl.SSLContext | None = None

    def client(self, redirect_uri: str, auth_method: str) -> AsyncOAuth2Client:
        """A client for one flow (it holds the flow's token). The TLS context is made once:
        making one costs a tenth of a second."""
        if self._tls is None:
            self._tls = httpx2.create_ssl_context()
        return AsyncOAuth2Client(
            self.client_id, self._client_secret, scope=self.scopes, redirect_uri=redirect_uri,
            code_challenge_method="S256", token_endpoint_auth_method=auth_method, timeout=HTTP_TIMEOUT,
            verify=self._tls,
        )

    async def authorization_url(self, redirect_uri: str, state: str, verifier: str, nonce: str) -> str:
        raise NotImplementedError

    async def complete(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> ExternalProfile:
        raise NotImplementedError


async def exchange(client: AsyncOAuth2Client, endpoint: str, code: str, verifier: str) -> dict[str, Any]:
    """The token endpoint's answer to the code, or ``SignInFailed("token_exchange_failed")``."""
    try:
        token = await client.fetch_token(endpoint, grant_type="authorization_code", code=code, code_verifier=verifier)
    except OAuthError as exc:  # the provider refused: a wrong, spent or expired code, a wrong verifier
        raise SignInFailed("token_exchange_failed", f"{exc.error}: {exc.description or ''}") from None
    except (httpx2.HTTPError, ValueError) as exc:
        raise SignInFailed("provider_unavailable", f"token endpoint: {exc!r}") from None
    if not isinstance(token.get("access_token"), str):
        raise SignInFailed("token_exchange_failed", "no access_token in the answer")
    return dict(token)


async def get_json(client: AsyncOAuth2Client, url: str, *, with_token: bool, what: str,
                   headers: dict[str, str] | None = None) -> Any:
    try:
        response = await client.request("GET", url, headers=headers, withhold_token=not with_token)
        response.raise_for_status()
        return response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise SignInFailed("provider_unavailable", f"{what}: {exc!r}") from None


def _text(value: object, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _https_url(value: object) -> str:
    """An avatar URL the profile may show: https only, like those members set themselves."""
    text = _text(value, 2048)
    return text if text.startswith("https://") else ""


# -- GitHub ---------------------------------------------------------------------------------------

class GitHub(Provider):
    """GitHub's OAuth app flow. Its endpoints come from ``auth_github_url`` and
    ``auth_github_api_url`` (GitHub Enterprise Server, or the tests' local stand-in)."""

    name = kind = GITHUB
    label = "GitHub"
    scopes = GITHUB_SCOPES

    def __init__(self, settings: KernelSettings) -> None:
        assert settings.auth_github_client_id and settings.auth_github_client_secret
        super().__init__(settings.auth_github_client_id, settings.auth_github_client_secret.get_secret_value())
        self.authorize_endpoint = f"{settings.auth_github_url}/login/oauth/authorize"
        self.token_endpoint = f"{settings.auth_github_url}/login/oauth/access_token"
        self.api = settings.auth_github_api_url

    async def authorization_url(self, redirect_uri: str, state: str, verifier: str, nonce: str) -> str:
        async with self.client(redirect_uri, "client_secret_post") as client:
            url, _ = client.create_authorization_url(self.authorize_endpoint, state=state, code_verifier=verifier)
        return str(url)

    async def complete(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> ExternalProfile:
        async with self.client(redirect_uri, "client_secret_post") as client:
            await exchange(client, self.token_endpoint, code, verifier)
            user = await get_json(client, f"{self.api}/user", with_token=True, what="GitHub /user",
                                  headers=GITHUB_API_HEADERS)
            try:
                emails = await get_json(client, f"{self.api}/user/emails", with_token=True,
                                        what="GitHub /user/emails", headers=GITHUB_API_HEADERS)
            except SignInFailed:  # the user:email scope was not granted: only the public email is known
                emails = []
        if not isinstance(user, dict) or not isinstance(user.get("id"), int) or isinstance(user.get("id"), bool):
            raise SignInFailed("provider_unavailable", "GitHub /user has no numeric id")
        email, verified = primary_email(emails)
        if email is None and isinstance(user.get("email"), str):
            email, verified = user["email"], False  # public, but GitHub did not say it is verified
        return ExternalProfile(
            provider=GITHUB, subject=str(user["id"]), email=email, email_verified=verified,
            name=_text(user.get("name"), 200), login=_text(user.get("login"), 100), bio=_text(user.get("bio"), 2000),
            location=_text(user.get("location"), 200), avatar_url=_https_url(user.get("avatar_url")),
            github_id=user["id"],
        )


def primary_email(emails: object) -> tuple[str | None, bool]:
    """The primary address of GitHub's ``/user/emails`` and whether GitHub verified it."""
    if not isinstance(emails, list):
        return None, False
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") is True and isinstance(entry.get("email"), str):
            return entry["email"], entry.get("verified") is True
    return None, False


# -- OpenID Connect -------------------------------------------------------------------------------

class OpenIDConnect(Provider):
    """A provider found through its discovery document, fetched on first use and kept."""

    kind = "oidc"

    def __init__(self, config: OIDCProviderSettings, jwks_refetch_seconds: float) -> None:
        super().__init__(config.client_id, config.client_secret.get_secret_value())
        self.name = config.name
        self.label = config.label or config.name.replace("-", " ").title()
        self.scopes = " ".join(config.scopes)
        self.algorithms = list(config.algorithms)
        self.link_by_email = config.link_by_email
        self.discovery_url = config.discovery_url
        self.jwks_refetch_seconds = jwks_refetch_seconds
        self._metadata: dict[str, Any] | None = None
        self._keys: list[Key] = []
        self._keys_fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def expected_issuer(self) -> str:
        return self.discovery_url.removesuffix("/.well-known/openid-configuration")

    async def metadata(self, client: AsyncOAuth2Client) -> dict[str, Any]:
        if self._metadata is None:
            found = await get_json(client, self.discovery_url, with_token=False, what="discovery document")
            needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(found, dict) or not all(isinstance(found.get(key), str) for key in needed):
                raise SignInFailed("provider_unavailable", f"discovery document lacks one of {needed}")
            if found["issuer"].rstrip("/") != self.expected_issuer.rstrip("/"):
                # OpenID Connect Discovery §4.3: the issuer is the URL the document was found under.
                raise SignInFailed("provider_unavailable", f"discovery names issuer {found['issuer']!r}")
            self._metadata = found
        return self._metadata

    async def authorization_url(self, redirect_uri: str, state: str, verifier: str, nonce: str) -> str:
        async with self.client(redirect_uri, "client_secret_basic") as client:
            metadata = await self.metadata(client)
            url, _ = client.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce,
            )
        return str(url)

    async def complete(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> ExternalProfile:
        async with self.client(redirect_uri, "client_secret_basic") as client:
            metadata = await self.metadata(client)
            token = await exchange(client, metadata["token_endpoint"], code, verifier)
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise SignInFailed("id_token_invalid", "the token endpoint sent no id_token")
            claims = await self.validate_id_token(client, id_token, nonce, token["access_token"])
            if isinstance(metadata.get("userinfo_endpoint"), str):
                info = await get_json(client, metadata["userinfo_endpoint"], with_token=True, what="userinfo")
                if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                    # OpenID Connect Core §5.3.2: a userinfo answer for another subject is not used.
                    raise SignInFailed("userinfo_invalid", "userinfo sub differs from the ID token's")
                claims = {**info, **claims}
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        return ExternalProfile(
            provider=self.name, subject=claims["sub"], email=email,
            email_verified=email is not None and claims.get("email_verified") in (True, "true"),
            name=_text(claims.get("name"), 200), login=_text(claims.get("preferred_username"), 100),
            avatar_url=_https_url(claims.get("picture")),
        )

    async def validate_id_token(self, client: AsyncOAuth2Client, id_token: str, nonce: str,
                                access_token: str) -> dict[str, Any]:
        try:
            header = jws.extract_compact(id_token.encode("ascii")).protected
        except (JoseError, ValueError, TypeError):
            raise SignInFailed("id_token_invalid", "not a JWS compact serialization") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise SignInFailed("id_token_invalid", f"algorithm {alg!r} is not allowed")
        key = await self.key_for(client, kid if isinstance(kid, str) else None, alg)
        if key is None:
            raise SignInFailed("id_token_invalid", f"no key {kid!r} in the provider's JWKS")
        try:
            claims = dict(jwt.decode(id_token, key, algorithms=[alg]).claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise SignInFailed("id_token_invalid", f"signature: {exc!r}") from None
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": self._metadata["issuer"] if self._metadata else self.expected_issuer},
            aud={"essential": True, "value": self.client_id},
            exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise SignInFailed("id_token_invalid", f"claims: {exc!r}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self.client_id:
            raise SignInFailed("id_token_invalid", "azp is not this client")
        if not isinstance(claims["sub"], str) or not claims["sub"] or len(claims["sub"]) > 255:
            raise SignInFailed("id_token_invalid", "sub is not a string of 1 to 255 characters")
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise SignInFailed("id_token_invalid", "nonce differs from the one sent")
        if "at_hash" in claims and claims["at_hash"] != at_hash(access_token, alg):
            raise SignInFailed("id_token_invalid", "at_hash does not match the access token")
        return claims

    async def key_for(self, client: AsyncOAuth2Client, kid: str | None, alg: str) -> Key | None:
        """The JWKS key to verify with: by ``kid``, fetching the JWKS again if the kid is new
        (throttled), or the only fitting key when the token names none."""
        async with self._lock:
            now = time.monotonic()
            if now - self._keys_fetched_at >= JWKS_MAX_AGE:
                await self._fetch_keys(client)
            key = self._pick(kid, alg)
            if key is None and kid is not None and now - self._keys_fetched_at >= self.jwks_refetch_seconds:
                await self._fetch_keys(client)
                key = self._pick(kid, alg)
            return key

    def _pick(self, kid: str | None, alg: str) -> Key | None:
        fitting = [
            key for key in self._keys
            if key.key_type == KEY_TYPES.get(alg[:2]) and key.get("alg", alg) == alg and key.get("use", "sig") == "sig"
        ]
        if kid is not None:
            return next((key for key in fitting if key.kid == kid), None)
        return fitting[0] if len(fitting) == 1 else None

    async def _fetch_keys(self, client: AsyncOAuth2Client) -> None:
        metadata = await self.metadata(client)
        found = await get_json(client, metadata["jwks_uri"], with_token=False, what="JWKS")
        keys: list[Key] = []
        for data in found.get("keys", []) if isinstance(found, dict) else []:
            try:
                keys.append(JWKRegistry.import_key(data))
            except (JoseError, ValueError, TypeError, KeyError):
                logger.warning("provider %s: a JWKS key could not be read and is ignored", self.name)
        self._keys, self._keys_fetched_at = keys, time.monotonic()


def at_hash(access_token: str, alg: str) -> str:
    digest = hashlib.new(AT_HASH[alg], access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def providers_from(settings: KernelSettings) -> dict[str, Provider]:
    """The providers the settings configure, by name (``github`` first)."""
    found: dict[str, Provider] = {}
    if settings.auth_github_client_id:
        found[GITHUB] = GitHub(settings)
    for config in settings.auth_oidc_providers:
        found[config.name] = OpenIDConnect(config, settings.auth_oidc_jwks_refetch_seconds)
    return found
