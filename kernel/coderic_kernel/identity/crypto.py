"""Secrets the identity service hands out and keeps: random tokens, their hashes, and
encryption at rest for what must be read back (TOTP secrets, private signing keys)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

from ..config.model import KernelSettings
from ..config.secrets import derived_key

TOKEN_BYTES = 32


def new_token(prefix: str = "") -> str:
    """A random token of 256 bits, URL-safe; ``prefix`` tells kinds apart (``cdr_pat_``)."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def new_uid() -> str:
    return secrets.token_hex(16)


def token_hash(token: str) -> str:
    """What the database keeps of a token: enough to find it, useless to present."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


class Sealer:
    """Authenticated encryption (Fernet: AES-128-CBC + HMAC-SHA256) with a key derived from
    ``secret_key`` for identity data. Changing ``secret_key`` makes sealed data unreadable:
    TOTP users must enrol again and signing keys are replaced (see docs/auth.md)."""

    def __init__(self, settings: KernelSettings) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derived_key(settings, "identity.seal")))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str | None:
        """The plain text, or ``None`` if it was sealed with another key or altered."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            return None
