"""What a file is, from its first bytes: magic numbers (puremagic), then a look at text.

The client's ``Content-Type`` header and the filename's extension are never consulted. Text
is checked for markup and scripts, so an HTML page named ``photo.txt`` is ``text/html``, and
a purpose that allows ``text/plain`` refuses it.
"""

from __future__ import annotations

import re

import puremagic

#: Bytes read before deciding; the stream is held back only this long.
SNIFF_BYTES = 8192
OCTET_STREAM = "application/octet-stream"
#: Formats that are containers of others: when the magic bytes fit several, the container is named.
_CONTAINERS = frozenset({"application/zip"})
_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg", "audio/x-wav": "audio/wav", "image/x-png": "image/png"}
_MARKUP = [
    (re.compile(rb"<svg[\s>/]", re.I), "image/svg+xml"),
    (re.compile(rb"<!doctype\s+html|<(html|head|body|script|iframe|object|embed|meta|link|style|img|a|form|div|p|title)[\s>/]", re.I), "text/html"),
    (re.compile(rb"<\?xml|<!doctype|<!entity", re.I), "application/xml"),
    (re.compile(rb"^\s*#!|<\?php|\bjavascript:", re.I), "text/x-script"),
]
# Types that are text: checked for markup and scripts before they are believed.
_TEXT_TYPES = {"text/plain", "text/csv", "text/markdown", "application/json", "text/html", "application/xml", "text/xml"}
# Text types kept as detected when no markup is found; any other text is ``text/plain``.
_KEPT_TEXT_TYPES = {"text/csv", "text/markdown", "application/json", "text/vtt", "text/calendar"}


def sniff(head: bytes) -> str:
    """The content type of a file that starts with ``head`` (at most ``SNIFF_BYTES``)."""
    if not head:
        return OCTET_STREAM
    detected = _magic(head)
    if detected is None or detected in _TEXT_TYPES or detected.startswith("text/"):
        return _text_type(head, detected)
    return detected


def _magic(head: bytes) -> str | None:
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        return None
    ranked = [m for m in sorted(matches, key=lambda m: -m.confidence) if m.mime_type]
    if not ranked:
        return None
    best = {_ALIASES.get(m.mime_type.lower(), m.mime_type.lower()) for m in ranked if m.confidence == ranked[0].confidence}
    containers = _CONTAINERS & best
    if containers and len(best) > 1:  # the bytes only say "a zip" (docx, jar and odt are zips too)
        return min(containers)
    mime = ranked[0].mime_type.lower()
    return _ALIASES.get(mime, mime)


def _text_type(head: bytes, detected: str | None) -> str:
    if b"\x00" in head:
        return detected or OCTET_STREAM
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the head
            return detected or OCTET_STREAM
        text = head[: exc.start].decode("utf-8")
    sample = text.lstrip("\ufeff").encode()
    for pattern, mime in _MARKUP:
        if pattern.search(sample):
            return mime
    return detected if detected in _KEPT_TEXT_TYPES else "text/plain"
