"""Signed tokens for links in email: open pixel, click redirect, one-click unsubscribe.

A token is ``<payload>.<signature>``, both base64url without padding. The payload is the
fields joined by line breaks; the signature is HMAC-SHA256 over it, truncated to 128 bits, with a
key derived from ``secret_key`` for the token's kind, so an open token cannot be replayed as
an unsubscribe token. Anything that does not verify is ``None``: the routes answer 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

from ..config.model import KernelSettings
from ..config.secrets import derived_key

SEPARATOR = "\n"  # never inside a field: addresses and ids are refused with line breaks
SIGNATURE_BYTES = 16
MAX_TOKEN_CHARS = 2048


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, settings: KernelSettings) -> None:
        self.settings = settings
        self._keys: dict[str, bytes] = {}

    def _key(self, kind: str) -> bytes:
        key = self._keys.get(kind)
        if key is None:
            key = self._keys[kind] = derived_key(self.settings, f"email.{kind}")
        return key

    def sign(self, kind: str, fields: Sequence[str]) -> str:
        if any(SEPARATOR in field for field in fields):
            raise ValueError("token fields cannot contain '|'")
        payload = SEPARATOR.join(fields).encode()
        signature = hmac.new(self._key(kind), payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]
        return f"{_b64(payload)}.{_b64(signature)}"

    def verify(self, kind: str, token: str, arity: int) -> list[str] | None:
        """The fields of a genuine token of this kind with ``arity`` fields; else ``None``."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        encoded, _, signed = token.partition(".")
        try:
            payload, signature = _unb64(encoded), _unb64(signed)
        except (binascii.Error, ValueError):
            return None
        expected = hmac.new(self._key(kind), payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]
        if not hmac.compare_digest(signature, expected):
            return None
        try:
            fields = payload.decode().split(SEPARATOR)
        except UnicodeDecodeError:
            return None
        return fields if len(fields) == arity else None
