"""The storage service: every write checked the same way, whoever makes it.

An upload through the API, a plugin's ``files.put`` and a confirmed signed upload all go
through ``FileStore``: the purpose's size limit and the quotas bound the bytes before any is
written, the type is detected from the first bytes and checked against the purpose's
allow-list before any is written, images are re-encoded without metadata, and the record is
written last. ``PluginFiles`` is the SDK's ``Storage`` for one plugin.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from coderic_sdk import FilePurpose, NotFound, Problem, SignedUpload, StorageUsage, StoredFile
from coderic_sdk.storage import IMAGE_TYPES

from ..services.per_kernel import per_kernel
from . import quotas
from .backends import Backend, open_backend
from .keys import ORIGINAL, clean_filename, content_disposition, new_file_id, object_key, pending_key, variant_key
from .purposes import IMAGE_MAX_BYTES, resolve
from .records import FileRecord
from .signing import Signer
from .sniff import SNIFF_BYTES, sniff

if TYPE_CHECKING:
    from ..config.model import KernelSettings
    from ..kernel import Kernel

TYPE_PROBLEM = "https://coderic.org/problems/file-type-not-allowed"
FILES_PATH = "/api/v1/files"


def is_inline(content_type: str) -> bool:
    """Only plain raster images are shown in the browser; everything else is downloaded."""
    return content_type in IMAGE_TYPES


@per_kernel
def store_for(kernel: Kernel) -> FileStore:
    """The kernel's file store, made on first use: the built-in ``files`` plugin asks for it
    while routes are collected at boot, so a bad purpose stops boot naming its plugin."""
    from ..config.secrets import derived_key
    from .purposes import collect_purposes

    settings = kernel.config.kernel
    purposes = collect_purposes(kernel.hooks, list(kernel.contexts.values()))
    return FileStore(settings, purposes, derived_key(settings, "storage"))


class FileStore:
    """One per kernel. The backend is made on first use (boto3 is imported only then)."""

    def __init__(self, settings: KernelSettings, purposes: Mapping[str, FilePurpose], signing_key: bytes) -> None:
        self.settings = settings
        self.purposes = dict(purposes)
        self.signer = Signer(signing_key)
        self._backend: Backend | None = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = open_backend(self.settings)
        return self._backend

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()
            self._backend = None

    # --- writing -------------------------------------------------------------------------

    async def allowance(self, purpose: FilePurpose, owner: str | None) -> quotas.Allowance:
        return await quotas.allowance(
            purpose.max_bytes, owner=owner, plugin=_plugin(purpose), user_quota=self.settings.storage_user_quota_bytes,
            plugin_quota=self.settings.storage_plugin_quota_bytes,
        )

    async def store(
        self, purpose: FilePurpose, chunks: AsyncIterable[bytes], *, owner: str | None, filename: str = "",
        declared_size: int | None = None, attached: bool = True,
    ) -> FileRecord:
        """Validate and store one file; raise a 413 or 415 ``Problem`` with nothing left behind."""
        allowance = await self.allowance(purpose, owner)
        if declared_size is not None and declared_size > allowance.limit:
            raise allowance.refuse(declared_size)  # refused before a byte of the file is read
        stream = _Limited(chunks.__aiter__(), allowance)
        head = await stream.head(SNIFF_BYTES)
        content_type = self.check_type(purpose, head)
        file_id = new_file_id()
        key = object_key(purpose.visibility, purpose.name, file_id)
        if purpose.variants:
            data = head + b"".join([chunk async for chunk in stream.rest()])
            size, checksum, variants = await self._store_image(key, data, content_type, purpose)
        else:
            await self.backend.write(key, stream.all(), content_type)
            size, checksum, variants = stream.size, stream.sha256.hexdigest(), ()
        record = FileRecord(
            uid=file_id, owner=owner, plugin=_plugin(purpose), purpose=purpose.name, key=key,
            filename=clean_filename(filename), content_type=content_type, size=size, checksum=checksum,
            visibility=purpose.visibility, status="stored", attached=attached or not purpose.attach,
            variants=",".join(variants),
        )
        try:
            await record.save()
        except BaseException:  # no record, no object: nothing would ever find it to delete it
            await self.backend.delete([key, *(variant_key(key, v) for v in variants)], ())
            raise
        await self._settle_quota(record, allowance)
        return record

    def check_type(self, purpose: FilePurpose, head: bytes) -> str:
        content_type = sniff(head)
        if content_type not in purpose.allowed_types:
            allowed = ", ".join(sorted(purpose.allowed_types))
            raise Problem(415, f"This purpose accepts {allowed}; the content is {content_type}.", type=TYPE_PROBLEM,
                          extra={"detected_type": content_type, "allowed_types": sorted(purpose.allowed_types)})
        return content_type

    async def _store_image(self, key: str, data: bytes, content_type: str, purpose: FilePurpose) -> tuple[int, str, tuple[str, ...]]:
        from . import images  # Pillow is imported when the first image arrives, not at boot

        try:
            made = await asyncio.to_thread(images.process, data, content_type, purpose.variants)
        except images.ImageError as exc:
            raise Problem(415, f"The image cannot be used: {exc}.", type=TYPE_PROBLEM) from None
        written: list[str] = []
        try:
            for name, body in [(ORIGINAL, made.original), *made.variants.items()]:
                target = key if name == ORIGINAL else variant_key(key, name)
                await self.backend.write(target, _once(body), content_type)
                written.append(target)
        except BaseException:
            await self.backend.delete(written, ())
            raise
        return len(made.original), hashlib.sha256(made.original).hexdigest(), tuple(made.variants)

    async def _settle_quota(self, record: FileRecord, allowance: quotas.Allowance) -> None:
        exceeded = await quotas.over_quota(
            owner=record.owner, plugin=record.plugin, user_quota=self.settings.storage_user_quota_bytes,
            plugin_quota=self.settings.storage_plugin_quota_bytes,
        )
        if exceeded is not None:  # another upload took the room meanwhile
            await self.remove(record)
            raise quotas.Allowance(max(0, allowance.limit - record.size), exceeded).refuse()

    # --- signed uploads --------------------------------------------------------------------

    async def begin_upload(
        self, purpose: FilePurpose, *, owner: str | None, size: int, content_type: str, filename: str = "",
        expires_in: int | None = None, base_url: str = "",
    ) -> SignedUpload:
        if purpose.variants and size > IMAGE_MAX_BYTES:
            raise quotas.Allowance(IMAGE_MAX_BYTES, "purpose").refuse(size)
        allowance = await self.allowance(purpose, owner)
        if size > allowance.limit:
            raise allowance.refuse(size)
        content_type = content_type.lower()
        if content_type not in purpose.allowed_types:
            allowed = ", ".join(sorted(purpose.allowed_types))
            raise Problem(415, f"This purpose accepts {allowed}.", type=TYPE_PROBLEM)
        expires_in = expires_in or self.settings.storage_upload_expiry_seconds
        file_id = new_file_id()
        record = FileRecord(
            uid=file_id, owner=owner, plugin=_plugin(purpose), purpose=purpose.name,
            key=object_key(purpose.visibility, purpose.name, file_id), filename=clean_filename(filename),
            content_type=content_type, size=size, visibility=purpose.visibility, status="pending",
            attached=not purpose.attach,
        )
        await record.save()
        form = self.backend.upload_form(pending_key(file_id), size=size, content_type=content_type, expires_in=expires_in)
        if form is None:  # disk: the kernel receives the upload at a signed URL of its own
            url = f"{base_url}{FILES_PATH}/uploads/{file_id}/content?{self.signer.query('upload', file_id, expires_in)}"
            fields: dict[str, str] = {}
        else:
            url, fields = form.url, form.fields
        expires_at = datetime.now(timezone.utc) + timedelta(seconds=expires_in)
        return SignedUpload(to_stored(record), url, fields, expires_at)

    async def receive_upload(self, record: FileRecord, chunks: AsyncIterable[bytes]) -> None:
        """Disk only: the bytes of a signed upload, bounded by the size that was signed."""
        allowance = quotas.Allowance(record.size, "purpose")
        stream = _Limited(chunks.__aiter__(), allowance)
        await self.backend.write(pending_key(record.uid), stream.all(), record.content_type)
        if stream.size == 0:
            await self.backend.delete([pending_key(record.uid)], ())
            raise Problem(422, "The file is empty.")

    async def confirm_upload(self, record: FileRecord) -> FileRecord:
        """Check what arrived at a signed upload and put it in place (or remove it and refuse)."""
        if record.status == "stored":
            return record
        purpose = self.purposes.get(record.purpose)
        temporary = pending_key(record.uid)
        size = await self.backend.size(temporary)
        if size is None:
            raise Problem(409, "Nothing has been uploaded for this file yet.")
        try:
            if purpose is None:
                raise Problem(409, f"The purpose {record.purpose!r} no longer exists.")
            if size > record.size:
                raise quotas.Allowance(record.size, "purpose").refuse(size)
            content_type = self.check_type(purpose, await self.backend.head(temporary, SNIFF_BYTES))
        except Problem:
            await self.remove(record)
            raise
        if purpose.variants:
            data = b"".join([chunk async for chunk in self.backend.read(temporary)])
            try:
                size, record.checksum, variants = await self._store_image(record.key, data, content_type, purpose)
            except Problem:
                await self.remove(record)
                raise
            await self.backend.delete([temporary], ())
            record.variants = ",".join(variants)
        else:
            await self.backend.move(temporary, record.key)
            # What is stored now, read back as a stream: the kernel may never have seen these
            # bytes (S3), and on disk a second upload to the same URL may have replaced them.
            size, record.checksum = await self._digest(record.key)
        record.size, record.content_type, record.status = size, content_type, "stored"
        await record.save([FileRecord.size, FileRecord.content_type, FileRecord.status, FileRecord.checksum, FileRecord.variants])
        return record

    async def _digest(self, key: str) -> tuple[int, str]:
        """The size and SHA-256 of a stored object, read chunk by chunk (it may be gigabytes)."""
        sha256 = hashlib.sha256()
        size = 0
        async for chunk in self.backend.read(key):
            sha256.update(chunk)
            size += len(chunk)
        return size, sha256.hexdigest()

    # --- reading ---------------------------------------------------------------------------

    async def record(self, file_id: str, plugin: str | None = None) -> FileRecord | None:
        query = FileRecord.objects().where(FileRecord.uid == file_id)
        if plugin is not None:
            query = query.where(FileRecord.plugin == plugin)
        return await query.first()

    def object_key(self, record: FileRecord, variant: str | None) -> str:
        if not variant:
            return record.key
        if variant not in _variants(record):
            raise NotFound(f"File {record.uid} has no variant {variant!r}.")
        return variant_key(record.key, variant)

    def open(self, record: FileRecord, variant: str | None = None) -> AsyncIterator[bytes]:
        if record.status != "stored":
            raise NotFound(f"File {record.uid} has not been uploaded yet.")
        return self.backend.read(self.object_key(record, variant))

    def download_url(self, record: FileRecord, *, variant: str | None = None, expires_in: int | None = None, base_url: str = "") -> str:
        """A stable CDN URL for public files when a CDN base is set; a signed URL otherwise."""
        key = self.object_key(record, variant)
        public_base = self.settings.storage_public_base_url
        if record.visibility == "public" and public_base:
            return f"{public_base}/{key}"
        expires_in = expires_in or self.settings.storage_url_expiry_seconds
        disposition = content_disposition(record.filename, is_inline(record.content_type))
        signed = self.backend.download_url(key, expires_in=expires_in, disposition=disposition, content_type=record.content_type)
        if signed is not None:
            return signed
        return f"{base_url}{FILES_PATH}/{record.uid}/content?{self.signer.query('download', record.uid, expires_in, variant or '')}"

    # --- removing --------------------------------------------------------------------------

    async def remove(self, record: FileRecord) -> None:
        keys = [pending_key(record.uid)] if record.status == "pending" else [
            record.key, *(variant_key(record.key, v) for v in _variants(record))
        ]
        await self.backend.delete(keys, self.settings.storage_lifecycle)
        await FileRecord.delete().where(FileRecord.id == record.id)

    async def list(self, owner: str, *, plugin: str | None = None, purpose: str | None = None, limit: int = 100) -> list[FileRecord]:
        query = FileRecord.objects().where(FileRecord.owner == owner)
        if plugin is not None:
            query = query.where(FileRecord.plugin == plugin)
        if purpose is not None:
            query = query.where(FileRecord.purpose == purpose)
        return list(await query.order_by(FileRecord.created_at, ascending=False).order_by(FileRecord.id, ascending=False).limit(limit))


class PluginFiles:
    """The SDK's ``Storage`` for one plugin: its own purposes and files only."""

    def __init__(self, store: FileStore, plugin: str, public_url: str = "") -> None:
        self.store = store
        self.plugin = plugin
        self.public_url = public_url

    def _purpose(self, name: str) -> FilePurpose:
        purpose = resolve(self.store.purposes, self.plugin, name)
        if purpose is None:
            mine = sorted(p for p in self.store.purposes if p.startswith(f"{self.plugin}."))
            raise ValueError(f"unknown file purpose {name!r} of plugin {self.plugin!r}; registered: {', '.join(mine) or 'none'}")
        return purpose

    async def _record(self, file_id: str) -> FileRecord:
        record = await self.store.record(file_id, self.plugin)
        if record is None:
            raise NotFound(f"File {file_id} does not exist.")
        return record

    async def put(self, purpose: str, data: bytes | AsyncIterable[bytes], *, owner: str | None = None, filename: str = "",
                  attached: bool = True) -> StoredFile:
        chunks = _once(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
        size = len(data) if isinstance(data, (bytes, bytearray, memoryview)) else None
        record = await self.store.store(self._purpose(purpose), chunks, owner=owner, filename=filename,
                                        declared_size=size, attached=attached)
        return to_stored(record)

    async def get(self, file_id: str) -> StoredFile | None:
        record = await self.store.record(file_id, self.plugin)
        return to_stored(record) if record is not None else None

    async def open(self, file_id: str, variant: str | None = None) -> AsyncIterator[bytes]:  # type: ignore[override]
        record = await self._record(file_id)
        try:
            async for chunk in self.store.open(record, variant):
                yield chunk
        except FileNotFoundError:  # a lifecycle rule removed the object before its record
            raise NotFound(f"File {file_id} has no content any more.") from None

    async def read(self, file_id: str, variant: str | None = None) -> bytes:
        return b"".join([chunk async for chunk in self.open(file_id, variant)])

    async def delete(self, file_id: str) -> bool:
        record = await self.store.record(file_id, self.plugin)
        if record is None:
            return False
        await self.store.remove(record)
        return True

    async def attach(self, file_id: str) -> None:
        record = await self._record(file_id)
        await FileRecord.update({FileRecord.attached: True}).where(FileRecord.id == record.id)

    async def download_url(self, file_id: str, *, expires_in: int | None = None, variant: str | None = None) -> str:
        return self.store.download_url(await self._record(file_id), variant=variant, expires_in=expires_in, base_url=self.public_url)

    async def upload_url(self, purpose: str, *, owner: str | None, size: int, content_type: str, filename: str = "",
                         expires_in: int | None = None) -> SignedUpload:
        return await self.store.begin_upload(self._purpose(purpose), owner=owner, size=size, content_type=content_type,
                                             filename=filename, expires_in=expires_in, base_url=self.public_url)

    async def confirm_upload(self, file_id: str) -> StoredFile:
        return to_stored(await self.store.confirm_upload(await self._record(file_id)))

    async def list(self, owner: str, *, purpose: str | None = None, limit: int = 100) -> list[StoredFile]:
        full = self._purpose(purpose).name if purpose else None
        return [to_stored(r) for r in await self.store.list(owner, plugin=self.plugin, purpose=full, limit=limit)]

    async def usage(self, owner: str) -> StorageUsage:
        used = await quotas.usage(owner=owner)
        return StorageUsage(used.used_bytes, used.files, self.store.settings.storage_user_quota_bytes)


def to_stored(record: FileRecord) -> StoredFile:
    created = record.created_at if isinstance(record.created_at, datetime) else datetime.now(timezone.utc)
    return StoredFile(
        id=record.uid, owner=record.owner, plugin=record.plugin, purpose=record.purpose, filename=record.filename,
        content_type=record.content_type, size=record.size, checksum=record.checksum, visibility=record.visibility,  # type: ignore[arg-type]
        status=record.status, attached=record.attached, variants=_variants(record), created_at=created,  # type: ignore[arg-type]
    )


def _variants(record: FileRecord) -> tuple[str, ...]:
    return tuple(v for v in (record.variants or "").split(",") if v)


def _plugin(purpose: FilePurpose) -> str:
    return purpose.name.split(".", 1)[0]


async def _once(data: bytes | bytearray | memoryview) -> AsyncIterator[bytes]:
    yield bytes(data)


class _Limited:
    """Passes chunks on while counting and hashing them; past the allowance, refuses."""

    def __init__(self, chunks: AsyncIterator[bytes], allowance: quotas.Allowance) -> None:
        self.chunks = chunks
        self.allowance = allowance
        self.size = 0
        self.sha256 = hashlib.sha256()
        self._head = b""

    def _count(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.allowance.limit:
            raise self.allowance.refuse()
        self.sha256.update(chunk)
        return chunk

    async def head(self, length: int) -> bytes:
        """Read until ``length`` bytes (or the end); they are yielded again by ``all``."""
        parts = []
        total = 0
        while total < length:
            try:
                chunk = await self.chunks.__anext__()
            except StopAsyncIteration:
                break
            parts.append(self._count(chunk))
            total += len(chunk)
        self._head = b"".join(parts)
        return self._head[:length]

    async def rest(self) -> AsyncIterator[bytes]:
        tail = self._head[SNIFF_BYTES:]
        if tail:
            yield tail
        async for chunk in self.chunks:
            yield self._count(chunk)

    async def all(self) -> AsyncIterator[bytes]:
        if self._head:
            yield self._head
        async for chunk in self.chunks:
            yield self._count(chunk)


