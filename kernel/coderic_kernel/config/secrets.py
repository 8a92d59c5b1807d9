"""The kernel's signing key: ``secret_key`` when set, else one generated for this process.

Production refuses to start without ``secret_key`` (see ``KernelSettings``). Elsewhere a
random key is made once per process, with a warning: links signed with it (unsubscribe,
email tracking) stop working when the process restarts, and differ between processes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from .model import KernelSettings

logger = logging.getLogger("coderic.config")
_generated: bytes | None = None


def secret_key(settings: KernelSettings) -> bytes:
    global _generated
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    if _generated is None:
        _generated = secrets.token_bytes(32)
        logger.warning(
            "secret_key is not set: using a key generated for this process (%s); signed links will not "
            "survive a restart. Set CODERIC_SECRET_KEY (required in production).", settings.environment,
        )
    return _generated


def derived_key(settings: KernelSettings, purpose: str) -> bytes:
    """A key of its own per purpose, so that a token made for one use is useless for another."""
    return hmac.new(secret_key(settings), f"coderic:{purpose}".encode(), hashlib.sha256).digest()
