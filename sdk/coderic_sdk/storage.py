"""File storage: upload purposes a plugin declares, and the ``Storage`` service it uses.

A *purpose* says what a file is for (``accounts.avatar``, ``courses.video``) and so how it is
checked: its largest size, the content types allowed (detected from the content's magic bytes,
never taken from the client), who may read it, and the image variants made from it. Every
stored file belongs to one purpose, and so to the plugin that declared it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

Visibility = Literal["private", "public"]

#: Image types Pillow decodes and variants are made for; the only types ever served inline.
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_VARIANT = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


@dataclass(frozen=True, slots=True)
class FilePurpose:
    """What uploads of one kind may be. Named ``<plugin>.<name>`` once registered.

    ``max_bytes`` bounds each file (checked while streaming: nothing larger is written).
    ``allowed_types`` are content types as detected from the bytes (``image/png``,
    ``application/pdf``, ``video/mp4``, ``text/plain``); HTML, SVG and scripts are refused
    unless listed, and are never served inline even then. ``variants`` maps a variant name to
    the longest side in pixels of a resized copy (images only: every allowed type must be an
    image). ``attach``: files uploaded through the API are orphans until the plugin calls
    ``files.attach(id)``; orphans older than ``storage_orphan_hours`` are deleted.
    """

    name: str
    max_bytes: int
    allowed_types: frozenset[str] | tuple[str, ...]
    visibility: Visibility = "private"
    variants: Mapping[str, int] = field(default_factory=dict)
    attach: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name.rsplit(".", 1)[-1]):
            raise ValueError(f"file purpose {self.name!r}: a name is a lower-case letter, then letters, digits or '_'")
        if self.max_bytes < 1:
            raise ValueError(f"file purpose {self.name!r}: max_bytes must be positive")
        object.__setattr__(self, "allowed_types", frozenset(t.lower() for t in self.allowed_types))
        if not self.allowed_types:
            raise ValueError(f"file purpose {self.name!r}: allow at least one content type")
        if self.visibility not in ("private", "public"):
            raise ValueError(f"file purpose {self.name!r}: visibility is 'private' or 'public'")
        for variant, size in self.variants.items():
            if not _VARIANT.match(variant) or not 1 <= size <= 4096:
                raise ValueError(f"file purpose {self.name!r}: variant {variant!r} needs a short name and 1..4096 pixels")
        if self.variants and not set(self.allowed_types) <= IMAGE_TYPES:
            raise ValueError(f"file purpose {self.name!r}: variants need image types only ({', '.join(sorted(IMAGE_TYPES))})")


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A stored file's record. ``filename`` is what the uploader called it: metadata only,
    never part of a path. ``content_type`` was detected from the bytes."""

    id: str
    owner: str | None
    plugin: str
    purpose: str
    filename: str
    content_type: str
    size: int
    checksum: str  # sha256, hex
    visibility: Visibility
    status: Literal["pending", "stored"]
    attached: bool
    variants: tuple[str, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SignedUpload:
    """Where a client sends a file itself: a multipart ``POST`` of ``fields`` then the
    ``file`` part to ``url``, before ``expires_at``; then the upload is confirmed."""

    file: StoredFile
    url: str
    fields: Mapping[str, str]
    expires_at: datetime
    method: str = "POST"


@dataclass(frozen=True, slots=True)
class StorageUsage:
    """Bytes stored and the quota (``None``: unlimited)."""

    used_bytes: int
    files: int
    quota_bytes: int | None


@runtime_checkable
class Storage(Protocol):
    """The plugin's files (``plugin.files``): only files of its own purposes are visible.

    ``purpose`` is the short name the plugin registered (``"avatar"``) or the full one.
    Every write is validated like an upload through the API: size, detected type, quotas.
    """

    async def put(
        self, purpose: str, data: bytes | AsyncIterable[bytes], *, owner: str | None = None, filename: str = "",
        attached: bool = True,
    ) -> StoredFile:
        """Store a file streamed from ``data``; raise ``Problem`` (413, 415) when refused."""
        ...

    async def get(self, file_id: str) -> StoredFile | None: ...

    def open(self, file_id: str, variant: str | None = None) -> AsyncIterator[bytes]:
        """The file's bytes, streamed in chunks (``NotFound`` when it does not exist)."""
        ...

    async def read(self, file_id: str, variant: str | None = None) -> bytes:
        """The whole file in memory: for small files only."""
        ...

    async def delete(self, file_id: str) -> bool:
        """Remove the file and its variants; ``False`` when there was none."""
        ...

    async def attach(self, file_id: str) -> None:
        """Mark the file as used, so that orphan clean-up keeps it."""
        ...

    async def download_url(self, file_id: str, *, expires_in: int | None = None, variant: str | None = None) -> str:
        """A URL anyone holding it can download from until it expires (public files: a stable one)."""
        ...

    async def upload_url(
        self, purpose: str, *, owner: str | None, size: int, content_type: str, filename: str = "",
        expires_in: int | None = None,
    ) -> SignedUpload:
        """Let a client upload directly (large files): the URL enforces size and type."""
        ...

    async def confirm_upload(self, file_id: str) -> StoredFile:
        """Check a signed upload's bytes (size, detected type) and make it a stored file."""
        ...

    async def list(self, owner: str, *, purpose: str | None = None, limit: int = 100) -> list[StoredFile]:
        """The owner's files of this plugin, newest first."""
        ...

    async def usage(self, owner: str) -> StorageUsage:
        """What ``owner`` stores across every plugin, against the per-user quota."""
        ...
