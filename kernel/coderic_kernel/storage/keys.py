"""Storage keys are made by the kernel alone: an uploader's filename never reaches a path.

A file's objects live under ``<visibility>/<plugin>/<purpose>/<id[:2]>/<id>/``: ``original``
and one object per image variant. Signed uploads wait under ``tmp/<id>`` until confirmed, so
a lifecycle rule on ``tmp/`` sweeps the abandoned ones. The visibility prefix lets an
operator expose ``public/`` (and nothing else) through a CDN.
"""

from __future__ import annotations

import re
import secrets
import unicodedata

ORIGINAL = "original"
FILE_ID = re.compile(r"^[0-9a-f]{32}$")
KEY = re.compile(r"^(tmp|private|public)/[a-z0-9_./-]+$")
FILENAME_MAX = 200


def new_file_id() -> str:
    return secrets.token_hex(16)


def object_key(visibility: str, purpose: str, file_id: str, name: str = ORIGINAL) -> str:
    """``purpose`` is ``<plugin>.<name>``; both parts are validated names."""
    plugin, short = purpose.split(".", 1)
    return f"{visibility}/{plugin}/{short}/{file_id[:2]}/{file_id}/{name}"


def variant_key(key: str, variant: str) -> str:
    return f"{key.rsplit('/', 1)[0]}/{variant}"


def pending_key(file_id: str) -> str:
    return f"tmp/{file_id}"


def check_key(key: str) -> str:
    """Refuse anything but a key this module made (defence in depth for the disk backend)."""
    if not KEY.match(key) or ".." in key or "//" in key:
        raise ValueError(f"not a storage key: {key!r}")
    return key


def clean_filename(name: str | None) -> str:
    """The uploader's filename as metadata: no path, no control or bidi characters, bounded."""
    if not name:
        return ""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(
        ch for ch in unicodedata.normalize("NFC", name)
        if unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    )
    kept = kept.strip(" .")
    return kept[:FILENAME_MAX]


def content_disposition(filename: str, inline: bool) -> str:
    """RFC 6266 with an ASCII fallback and the UTF-8 name (RFC 8187)."""
    from urllib.parse import quote

    kind = "inline" if inline else "attachment"
    if not filename:
        return kind
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;%' else "_" for ch in filename)
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
