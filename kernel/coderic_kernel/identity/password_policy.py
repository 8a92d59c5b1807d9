"""What a new password must be: NIST SP 800-63B and OWASP ASVS 4.0.3 V2.1, no composition rules.

- 12 to 128 characters, counted as Unicode code points of the NFKC form (the form hashed).
  Any character is allowed, spaces and emoji included; nothing is truncated.
- Not among the passwords seen most often in leaks (``data/common-passwords.txt.gz``, plus
  the operator's ``auth_password_list``), compared case-insensitively, nor such a password
  with up to five digits, symbols or spaces added at its ends (``Password1234!``).
- Not the member's email address, its local part, or their name.
- Not one short unit repeated (``abcabcabcabc``) nor a run of consecutive characters
  (``abcdefghijklm``, ``123456789012``): their strength is that of their first few characters.

``check`` answers 422 problem+json naming the field and why, like every invalid input.
"""

from __future__ import annotations

import asyncio
import gzip
import unicodedata
from pathlib import Path

from coderic_sdk import FieldError, Problem

from .passwords import normalised

MIN_LENGTH = 12
MAX_LENGTH = 128
#: How many digits, symbols or spaces added to the ends of a common password still make it common.
MAX_AFFIX = 5
SHIPPED_LIST = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().strip()


_LISTS: dict[Path, frozenset[str]] = {}


def _load(path: Path) -> frozenset[str]:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return frozenset(filter(None, (_folded(line) for line in raw.decode("utf-8", "replace").splitlines())))


async def common_passwords(extra: Path | None = None) -> tuple[frozenset[str], ...]:
    """The shipped list and the operator's, each read once (in a thread: tens of milliseconds)."""
    paths = [SHIPPED_LIST] if extra is None else [SHIPPED_LIST, extra]
    for path in paths:
        if path not in _LISTS:
            _LISTS[path] = await asyncio.to_thread(_load, path)
    return tuple(_LISTS[path] for path in paths)


def problems(password: str, lists: tuple[frozenset[str], ...], *, email: str | None = None,
             name: str | None = None, field: str = "body.password") -> list[FieldError]:
    """Why ``password`` may not be used (empty: it may)."""
    if any(0xD800 <= ord(char) <= 0xDFFF for char in password):
        return [FieldError(field, "contains an invalid character (a lone UTF-16 surrogate)", "invalid_unicode")]
    length = len(normalised(password))
    if length < MIN_LENGTH:
        return [FieldError(field, f"must have at least {MIN_LENGTH} characters (it has {length})", "password_too_short")]
    if length > MAX_LENGTH:
        return [FieldError(field, f"must have at most {MAX_LENGTH} characters (it has {length})", "password_too_long")]
    folded = _folded(password)
    personal = {_folded(email or ""), _folded((email or "").partition("@")[0]), _folded(name or "")} - {""}
    if folded in personal:
        return [FieldError(field, "must not be your email address or your name", "password_personal")]
    if _is_common(folded, lists):
        return [FieldError(field, "is one of the passwords seen most often in leaks; choose another", "password_common")]
    if _is_pattern(folded):
        return [FieldError(field, "is a repeated or consecutive sequence of characters, easy to guess", "password_pattern")]
    return []


async def check(password: str, extra_list: Path | None, *, email: str | None = None, name: str | None = None,
                field: str = "body.password") -> None:
    """422 problem+json when ``password`` may not be used as a new password."""
    lists = await common_passwords(extra_list)
    errors = problems(password, lists, email=email, name=name, field=field)
    if errors:
        raise Problem(422, "Choose another password.", errors=errors)


def _is_common(folded: str, lists: tuple[frozenset[str], ...]) -> bool:
    if any(folded in entries for entries in lists):
        return True
    core = folded.strip(_AFFIX_CHARS)
    if not core or not 0 < len(folded) - len(core) <= MAX_AFFIX:
        return False
    return any(core in entries for entries in lists)


def _is_pattern(folded: str) -> bool:
    size = len(folded)
    for unit in range(1, MIN_LENGTH):  # one unit shorter than the minimum, repeated to the end
        if size % unit == 0 and size // unit > 1 and folded == folded[:unit] * (size // unit):
            return True
    steps = {ord(b) - ord(a) for a, b in zip(folded, folded[1:])}
    if len(steps) == 1 and steps <= {1, -1}:
        return True
    if folded.isdigit():  # 1234567890123: consecutive digits wrapping from 9 to 0
        return len({(int(b) - int(a)) % 10 for a, b in zip(folded, folded[1:])}) == 1
    return False


_AFFIX_CHARS = "0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
