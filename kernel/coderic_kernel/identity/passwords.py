"""Password hashing with argon2id (argon2-cffi).

The parameters are argon2-cffi's defaults, RFC 9106's low-memory profile (64 MiB, 3 passes,
4 lanes), well above OWASP's minimum (19 MiB, 2 passes, 1 lane). When they rise, a hash made
with the old ones is replaced at the user's next successful sign-in (``needs_rehash``).
Hashing takes tens of milliseconds of CPU: the async helpers run it in a worker thread so
the event loop keeps serving other requests meanwhile.

A password is hashed and checked in its NFKC form (``normalised``), so the same characters
typed on two keyboards that compose them differently are the same password; it is never
truncated. The rules a new password must meet are in ``password_policy.py``.
"""

from __future__ import annotations

import asyncio
import os
import unicodedata
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher()
#: Hashing gets every core but one: a burst of sign-ins queues here instead of starving the
#: event loop's thread, so other requests keep their latency.
_HASHING = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="argon2")
#: Verified against when the account does not exist, so that an unknown email takes as long as a known one.
_DUMMY_HASH = HASHER.hash("not the password of anyone: equalises timing")


def normalised(password: str) -> str:
    """The form a password is hashed in: Unicode NFKC."""
    return unicodedata.normalize("NFKC", password)


def _secret(password: str) -> bytes:
    # surrogatepass: a lone surrogate from JSON is refused by the policy; here it must not raise.
    return normalised(password).encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    return HASHER.hash(_secret(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; ``password_hash=None`` (no such user, or no password)
    is checked against a dummy hash and is always wrong, in the same time."""
    try:
        return HASHER.verify(password_hash or _DUMMY_HASH, _secret(password)) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, verify_password, password_hash, password)
