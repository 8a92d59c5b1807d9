"""The platform's VAPID key pair (RFC 8292), which signs every Web Push request so push
services know the pushes come from the server browsers subscribed with.

py-vapid does the signing; this module only turns the configured key into a signer, says its
public half the way ``PushManager.subscribe`` wants it, and makes new pairs for operators.
"""

from __future__ import annotations

import base64
import time

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02, VapidException


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Base64url, with or without padding; ``ValueError`` when it is not."""
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=" for c in text):
        raise ValueError("not base64url (A-Z a-z 0-9 - _)")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64url") from exc


def load(private_key: str) -> Vapid02:
    """A signer from the configured key: the raw 32-byte key in base64url (what ``coderic
    notifications vapid-keys`` prints), or a DER key in base64url; ``ValueError`` otherwise."""
    try:
        return Vapid02.from_string(private_key.strip())
    except Exception as exc:  # py-vapid raises what cryptography or binascii raise
        raise ValueError("not a VAPID private key (run 'coderic notifications vapid-keys' for one)") from exc


def check_subject(private_key: str, subject: str) -> None:
    """``ValueError`` unless py-vapid signs claims with ``subject`` (it checks its form itself):
    better at start-up than at every push."""
    try:
        load(private_key).sign({"sub": subject, "aud": "https://push.example", "exp": int(time.time()) + 60})
    except VapidException as exc:
        raise ValueError(f"py-vapid refuses {subject!r} as the VAPID subject; set notifications_vapid_subject to "
                         "mailto:you@example.org or an https:// URL with a domain") from exc


def public_key(signer: Vapid02) -> str:
    """The application server key for ``PushManager.subscribe``: the uncompressed P-256 point, base64url."""
    return b64url(signer.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def generate() -> tuple[str, str]:
    """A new key pair: (private key for ``notifications_vapid_private_key``, public key)."""
    signer = Vapid02()
    signer.generate_keys()
    private = signer.private_key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(private), public_key(signer)
