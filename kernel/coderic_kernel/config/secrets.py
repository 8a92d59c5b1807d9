"""The kernel's signing key: ``secret_key`` when set, else a generated one.

Production refuses to start without ``secret_key`` (see ``KernelSettings``). In development
a random key is generated once and kept in ``./var/secret_key`` (readable by its owner only),
so signed links, sign-in keys and 2FA secrets survive a restart of ``make run``. Tests get a
key per process.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from .model import KernelSettings

logger = logging.getLogger("coderic.config")
_generated: bytes | None = None
DEVELOPMENT_KEY_FILE = Path("var/secret_key")


def secret_key(settings: KernelSettings) -> bytes:
    global _generated
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if _generated is None:
        if settings.environment == "development":
            _generated = _development_key(DEVELOPMENT_KEY_FILE)
        else:
            _generated = secrets.token_bytes(32)
            logger.warning(
                "secret_key is not set: using a key generated for this process (%s); signed links will not "
                "survive a restart. Set CODERIC_SECRET_KEY (required in production).", settings.environment,
            )
    return _generated


def _development_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48).encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key + b"\n")
    logger.warning("secret_key is not set: generated one for development in %s (set CODERIC_SECRET_KEY in production)", path)
    return key


def derived_key(settings: KernelSettings, purpose: str) -> bytes:
    """A key of its own per purpose, so that a token made for one use is useless for another."""
    return hmac.new(secret_key(settings), f"coderic:{purpose}".encode(), hashlib.sha256).digest()
