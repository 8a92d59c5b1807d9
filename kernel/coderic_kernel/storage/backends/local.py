"""Files in a folder: the embedded default (``file://./var/files``).

Writes go to ``.partial/`` and are renamed into place once complete, so a reader never sees
half a file and an interrupted upload leaves nothing under its key. Disk I/O runs in
threads, in chunks of at most 1 MiB, so memory stays flat whatever the file's size. Deleted
files covered by a ``noncurrent_days`` rule wait in ``.versions/`` like old versions in a
versioned bucket; ``expire`` (from a cron job) removes what has expired.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote

from ..keys import check_key
from .base import UploadForm

if TYPE_CHECKING:
    from ...config.model import LifecycleRule

CHUNK = 1 << 20
PARTIAL = ".partial"
VERSIONS = ".versions"
DAY = 86_400.0


class LocalBackend:
    kind = "local"

    def __init__(self, root: Path, buffer_bytes: int = CHUNK) -> None:
        self.root = root
        self.chunk = min(buffer_bytes, CHUNK)

    @classmethod
    def from_url(cls, url: str, buffer_bytes: int) -> LocalBackend:
        return cls(Path(unquote(url.removeprefix("file://"))).expanduser().absolute(), buffer_bytes)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def write(self, key: str, chunks: AsyncIterator[bytes], content_type: str) -> None:
        target = self.path(key)
        partial = self.root / PARTIAL / secrets.token_hex(12)
        await asyncio.to_thread(partial.parent.mkdir, parents=True, exist_ok=True)
        handle: BinaryIO = await asyncio.to_thread(partial.open, "wb")
        try:
            pending = bytearray()
            async for chunk in chunks:
                pending += chunk
                if len(pending) >= self.chunk:
                    await asyncio.to_thread(handle.write, bytes(pending))
                    pending.clear()
            if pending:
                await asyncio.to_thread(handle.write, bytes(pending))
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(_place, partial, target)
        except BaseException:
            await asyncio.to_thread(_discard, handle, partial)
            raise

    async def read(self, key: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        handle: BinaryIO = await asyncio.to_thread(self.path(key).open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, self.chunk):
                yield chunk
        finally:
            handle.close()

    async def head(self, key: str, length: int) -> bytes:
        def read() -> bytes:
            with self.path(key).open("rb") as handle:
                return handle.read(length)

        return await asyncio.to_thread(read)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self.path(key).stat)).st_size
        except FileNotFoundError:
            return None

    async def move(self, source: str, target: str) -> None:
        await asyncio.to_thread(_place, self.path(source), self.path(target))

    async def delete(self, keys: Sequence[str], rules: Sequence[LifecycleRule]) -> None:
        def remove() -> None:
            for key in keys:
                path = self.path(key)
                keep = any(r.noncurrent_days and key.startswith(r.prefix) for r in rules)
                try:
                    if keep:
                        version = self.root / VERSIONS / f"{key}.{time.time_ns()}"
                        version.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(path, version)
                        os.utime(version)  # its age as an old version starts now
                    else:
                        path.unlink()
                except FileNotFoundError:
                    continue
                _prune_empty(path.parent, self.root)

        await asyncio.to_thread(remove)

    def download_url(self, key: str, *, expires_in: int, disposition: str, content_type: str) -> str | None:
        return None  # the kernel signs and serves disk downloads itself

    def upload_form(self, key: str, *, size: int, content_type: str, expires_in: int) -> UploadForm | None:
        return None

    async def configure_lifecycle(self, rules: Sequence[LifecycleRule]) -> None:
        return None  # a folder has no rules of its own: the cron job calls ``expire``

    async def expire(self, rules: Sequence[LifecycleRule]) -> int:
        return await asyncio.to_thread(self._expire, list(rules), time.time())

    def _expire(self, rules: list[LifecycleRule], now: float) -> int:
        removed = 0
        checks: list[tuple[Path, str, float]] = [(self.root / PARTIAL, "", now - DAY)]  # interrupted writes
        for rule in rules:
            if rule.expire_days:
                checks.append((self.root, rule.prefix, now - rule.expire_days * DAY))
            if rule.noncurrent_days:
                checks.append((self.root / VERSIONS, rule.prefix, now - rule.noncurrent_days * DAY))
        for base, prefix, cutoff in checks:
            start = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
            if not start.is_dir():
                continue
            for folder, dirs, files in os.walk(start):
                if base == self.root:  # the live tree: never descend into the bookkeeping folders
                    dirs[:] = [d for d in dirs if d not in (PARTIAL, VERSIONS)]
                for name in files:
                    path = Path(folder) / name
                    relative = path.relative_to(base).as_posix()
                    if relative.startswith(prefix) and path.stat().st_mtime < cutoff:
                        path.unlink(missing_ok=True)
                        removed += 1
                        _prune_empty(path.parent, base)
        return removed

    async def ping(self) -> None:
        def check() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise PermissionError(f"{self.root} is not writable")

        await asyncio.to_thread(check)

    async def close(self) -> None:
        return None


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _discard(handle: BinaryIO, partial: Path) -> None:
    handle.close()
    partial.unlink(missing_ok=True)


def _prune_empty(folder: Path, root: Path) -> None:
    """Remove folders left empty up to (not including) ``root``."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
