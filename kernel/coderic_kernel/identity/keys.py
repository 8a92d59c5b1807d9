"""The keys that sign access tokens, shared by every process through the database.

The newest unretired key signs. Rotation adds a key and retires the previous one, which
still verifies until every token it signed has expired, then is deleted. Processes load the
keys once at start; a token naming a ``kid`` this process has not seen makes it reload
(at most once per ``RELOAD_SECONDS``), so a rotation done by another process is picked up
without a restart. Private keys are stored encrypted (``Sealer``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from joserfc.jwk import ECKey, KeySet, OKPKey

from .crypto import Sealer, new_uid
from .tables import SigningKey

logger = logging.getLogger("coderic.auth")
RELOAD_SECONDS = 30.0
ALGORITHMS = ("ES256", "EdDSA")
warnings.filterwarnings("ignore", message="EdDSA is deprecated", module="joserfc")


def generate(algorithm: str) -> ECKey | OKPKey:
    kid = new_uid()
    params = {"kid": kid, "alg": algorithm, "use": "sig"}
    if algorithm == "ES256":
        return ECKey.generate_key("P-256", parameters=params)  # type: ignore[arg-type]
    if algorithm == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=params)  # type: ignore[arg-type]
    raise ValueError(f"unsupported token algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


def _import(jwk: dict[str, Any]) -> ECKey | OKPKey:
    return ECKey.import_key(jwk) if jwk["kty"] == "EC" else OKPKey.import_key(jwk)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LoadedKeys:
    signing: ECKey | OKPKey
    signing_algorithm: str
    verifying: KeySet
    public: tuple[dict[str, Any], ...]  # the JWKS entries


class KeyRing:
    def __init__(self, sealer: Sealer, algorithm: str, token_lifetime: timedelta) -> None:
        self.sealer = sealer
        self.algorithm = algorithm
        self.token_lifetime = token_lifetime
        self._loaded: LoadedKeys | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def current(self) -> LoadedKeys:
        if self._loaded is None:
            raise RuntimeError("the key ring is not loaded: the auth plugin's lifespan loads it")
        return self._loaded

    def knows(self, kid: str) -> bool:
        return any(entry["kid"] == kid for entry in self.current.public)

    async def load(self, *, create: bool = True) -> LoadedKeys:
        """Read the keys; make the first one (or one of the configured algorithm) if needed."""
        async with self._lock:
            return await self._read(create)

    async def _read(self, create: bool) -> LoadedKeys:
        now = datetime.now(timezone.utc)
        await SigningKey.delete().where(SigningKey.expires_at.is_not_null() & (SigningKey.expires_at < now))
        rows = await SigningKey.select().order_by(SigningKey.created_at, ascending=False).output(load_json=True)
        active = [row for row in rows if row["retired_at"] is None]
        if create and (not active or active[0]["algorithm"] != self.algorithm):
            await self._add_and_retire_others(now)
            rows = await SigningKey.select().order_by(SigningKey.created_at, ascending=False).output(load_json=True)
            active = [row for row in rows if row["retired_at"] is None]
        if not active:
            raise RuntimeError("no signing key: start a server once to create one")
        newest = active[0]
        private = self.sealer.open(newest["private_key"])
        if private is None:
            logger.error("the signing key %s cannot be decrypted (secret_key changed?): rotating", newest["kid"])
            await self._add_and_retire_others(now)
            return await self._read(create=False)
        public = tuple(dict(row["public_key"], kid=row["kid"], alg=row["algorithm"], use="sig") for row in rows)
        self._loaded = LoadedKeys(
            signing=_import(json.loads(private)),
            signing_algorithm=newest["algorithm"],
            verifying=KeySet([_import(entry) for entry in public]),
            public=public,
        )
        self._loaded_at = time.monotonic()
        return self._loaded

    async def reload_if_stale(self) -> bool:
        """Reload when a token names an unknown ``kid``; ``True`` if the keys were reloaded."""
        if time.monotonic() - self._loaded_at < RELOAD_SECONDS:
            return False
        await self.load(create=False)
        return True

    async def rotate(self) -> str:
        """Add a new signing key now; the old one verifies until its tokens expire."""
        async with self._lock:
            kid = await self._add_and_retire_others(datetime.now(timezone.utc))
        await self.load()
        return kid

    async def _add_and_retire_others(self, now: datetime) -> str:
        key = generate(self.algorithm)
        private = key.as_dict(private=True)
        public = key.as_dict(private=False)
        kid = str(private["kid"])
        await SigningKey.update(
            {SigningKey.retired_at: now, SigningKey.expires_at: now + self.token_lifetime + timedelta(minutes=1)}
        ).where(SigningKey.retired_at.is_null())
        await SigningKey.insert(
            SigningKey(kid=kid, algorithm=self.algorithm, private_key=self.sealer.seal(json.dumps(private)),
                       public_key={k: v for k, v in public.items() if k not in {"kid", "alg", "use"}}, created_at=now)
        )
        logger.info("new signing key %s (%s)", kid, self.algorithm)
        return kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": list(self.current.public)}
