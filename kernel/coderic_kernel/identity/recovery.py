"""Recovery codes: ten single-use codes that stand in for the authenticator when it is lost.

A code looks like ``7k3m-9xqp-2d`` (ten characters of Crockford's base32 alphabet, 50 random
bits): no ``i``, ``l``, ``o`` or ``u`` to misread, and what is typed is forgiven (upper case,
no dashes, ``O`` for ``0``, ``I``/``L`` for ``1``). They are shown once; the table keeps the
SHA-256 of the user's id and the normalised code, so equal codes of two users differ and one
guess cannot be tried against every account of a stolen copy. Using a code marks it used in
the statement that checks it: two requests with one code cannot both succeed.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from .crypto import token_hash
from .tables import RecoveryCode

COUNT = 10
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
LENGTH = 10
_MISREAD = str.maketrans({"o": "0", "i": "1", "l": "1", "-": None, " ": None})


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalised(code: str) -> str | None:
    """The code as hashed: lower case, without separators, misread letters mapped."""
    if len(code) > 4 * LENGTH:
        return None
    plain = code.strip().lower().translate(_MISREAD)
    return plain if len(plain) == LENGTH and all(char in ALPHABET for char in plain) else None


def _hash(user_id: str, plain: str) -> str:
    return token_hash(f"{user_id}:{plain}")


async def replace(user_id: str) -> list[str]:
    """Ten new codes for the user; every earlier code stops working. Returns them to show once."""
    codes = [new_code() for _ in range(COUNT)]
    await RecoveryCode.delete().where(RecoveryCode.user_id == user_id)
    await RecoveryCode.insert(*(
        RecoveryCode(user_id=user_id, code_hash=_hash(user_id, normalised(code) or "")) for code in codes
    ))
    return codes


async def use(user_id: str, code: str) -> bool:
    """Use one of the user's codes up; ``False`` if it is not one, or was used."""
    plain = normalised(code)
    if plain is None:
        return False
    claimed = await RecoveryCode.update({RecoveryCode.used_at: datetime.now(timezone.utc)}).where(
        (RecoveryCode.user_id == user_id) & (RecoveryCode.code_hash == _hash(user_id, plain))
        & RecoveryCode.used_at.is_null()
    ).returning(RecoveryCode.id)
    return bool(claimed)


async def remaining(user_id: str) -> int:
    return int(await RecoveryCode.count().where((RecoveryCode.user_id == user_id) & RecoveryCode.used_at.is_null()))


async def delete_all(user_id: str) -> None:
    await RecoveryCode.delete().where(RecoveryCode.user_id == user_id)
