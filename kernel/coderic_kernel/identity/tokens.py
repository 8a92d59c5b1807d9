"""JWT access tokens (RFC 9068 profile): short-lived, signed with the key ring's current key,
verifiable by any service through ``/.well-known/jwks.json``.

Verification accepts only the configured asymmetric algorithms, ``typ`` ``at+jwt``, this
kernel's ``iss`` and ``aud``, and checks ``exp``/``nbf``/``iat``. ID tokens, refresh tokens
and tokens meant for another audience are refused. A verified token is remembered until it
expires (bounded LRU), so the signature is checked once per token, not once per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from .crypto import new_uid
from .keys import ALGORITHMS, KeyRing

TOKEN_TYPE = "at+jwt"
LEEWAY_SECONDS = 30
CACHE_SIZE = 10_000
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    scopes: tuple[str, ...]
    expires_at: float
    token_id: str


class AccessTokens:
    def __init__(self, keys: KeyRing, issuer: str, audience: str, lifetime_seconds: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime_seconds
        self._registry = JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
            jti={"essential": True},
            iat={"essential": True},
        )
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    def issue(self, user_id: str, session_id: str, scopes: tuple[str, ...] = ()) -> tuple[str, int]:
        """A new access token and its lifetime in seconds."""
        loaded = self.keys.current
        now = int(time.time())
        header = {"alg": loaded.signing_algorithm, "typ": TOKEN_TYPE, "kid": loaded.signing.kid}
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": self.audience, "sub": user_id, "sid": session_id,
            "iat": now, "nbf": now, "exp": now + self.lifetime, "jti": new_uid(),
            "client_id": "coderic",
        }
        if scopes:
            claims["scope"] = " ".join(scopes)
        return jwt.encode(header, claims, loaded.signing, algorithms=list(ALGORITHMS)), self.lifetime

    async def verify(self, token: str) -> AccessClaims | None:
        """The token's claims if it is a valid access token of this kernel; else ``None``."""
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at + LEEWAY_SECONDS > time.time():
                return cached
            del self._verified[token]
            return None
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            return None
        claims = self._decode(token)
        if claims is None and await self._kid_unknown(token) and await self.keys.reload_if_stale():
            claims = self._decode(token)
        if claims is not None:
            self._verified[token] = claims
            if len(self._verified) > CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> AccessClaims | None:
        try:
            decoded = jwt.decode(token, self.keys.current.verifying, algorithms=list(ALGORITHMS))
            if decoded.header.get("typ", "").lower() not in {TOKEN_TYPE, f"application/{TOKEN_TYPE}"}:
                return None
            self._registry.validate(decoded.claims)
        except (JoseError, ValueError, TypeError, KeyError):
            return None
        claims = decoded.claims
        scope = claims.get("scope", "")
        if not isinstance(claims["sub"], str) or not isinstance(claims["sid"], str) or not isinstance(scope, str):
            return None
        return AccessClaims(claims["sub"], claims["sid"], tuple(scope.split()), float(claims["exp"]), str(claims["jti"]))

    async def _kid_unknown(self, token: str) -> bool:
        try:
            kid = jws.extract_compact(token.encode()).protected.get("kid")
        except (JoseError, ValueError, TypeError):
            return False
        return isinstance(kid, str) and not self.keys.knows(kid)

    def forget(self) -> None:
        """Drop remembered verifications (after a key is removed)."""
        self._verified.clear()
