"""The interface both backends implement. Keys come from ``storage/keys.py`` only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ...config.model import LifecycleRule


@dataclass(frozen=True)
class UploadForm:
    """A presigned POST: the client sends ``fields`` then the ``file`` part to ``url``."""

    url: str
    fields: dict[str, str]


class Backend(Protocol):
    kind: str  # "local" or "s3"

    async def write(self, key: str, chunks: AsyncIterator[bytes], content_type: str) -> None:
        """Store ``chunks`` under ``key``. If ``chunks`` raises, nothing is left behind."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks; ``FileNotFoundError`` when there is none."""
        ...

    async def head(self, key: str, length: int) -> bytes:
        """The first ``length`` bytes (fewer for a smaller object)."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size, ``None`` when there is none."""
        ...

    async def move(self, source: str, target: str) -> None: ...

    async def delete(self, keys: Sequence[str], rules: Sequence[LifecycleRule]) -> None:
        """Remove objects (a missing one is no error). Disk: kept as an old version when a
        rule with ``noncurrent_days`` covers the key, as a versioned bucket would keep it."""
        ...

    def download_url(self, key: str, *, expires_in: int, disposition: str, content_type: str) -> str | None:
        """A presigned URL, or ``None`` when the kernel signs and serves downloads itself."""
        ...

    def upload_form(self, key: str, *, size: int, content_type: str, expires_in: int) -> UploadForm | None:
        """A presigned POST limited to ``size`` bytes of ``content_type``, or ``None`` (disk)."""
        ...

    async def configure_lifecycle(self, rules: Sequence[LifecycleRule]) -> None:
        """S3: put the rules on the bucket, which then expires objects itself. Disk: nothing."""
        ...

    async def expire(self, rules: Sequence[LifecycleRule]) -> int:
        """Disk: remove what the rules say has expired, now; how many objects. S3: 0."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
