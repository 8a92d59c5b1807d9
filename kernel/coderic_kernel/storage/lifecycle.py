"""Lifecycle: the configured rules, and the clean-up of uploads nobody finished or used.

On S3 the rules are put on the bucket (``put_bucket_lifecycle_configuration``) when the
kernel starts, and the bucket expires objects itself. On disk the ``files.clean_up`` cron job
applies them. On both, the job also removes what only the kernel can know is garbage:
signed uploads never confirmed, files of purposes that need attaching that were never
attached, and the records of files the rules expired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .records import FileRecord
from .service import FileStore

#: A signed upload may be confirmed until its URL expires, and a little after.
CONFIRM_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class CleanUp:
    pending: int = 0  # signed uploads never confirmed
    orphans: int = 0  # never attached
    expired: int = 0  # records whose files a rule expired
    objects: int = 0  # objects the disk backend removed itself (expired, old versions, partial writes)


async def clean_up(store: FileStore, now: datetime | None = None) -> CleanUp:
    now = now or datetime.now(timezone.utc)
    settings = store.settings
    pending_cutoff = now - timedelta(seconds=settings.storage_upload_expiry_seconds) - CONFIRM_GRACE
    pending = await _remove(store, (FileRecord.status == "pending") & (FileRecord.created_at < pending_cutoff))
    orphan_cutoff = now - timedelta(hours=settings.storage_orphan_hours)
    orphans = await _remove(
        store, (FileRecord.status == "stored") & (FileRecord.attached == False) & (FileRecord.created_at < orphan_cutoff)  # noqa: E712
    )
    expired = 0
    for rule in settings.storage_lifecycle:
        if rule.expire_days and not rule.prefix.startswith("tmp/"):
            cutoff = now - timedelta(days=rule.expire_days)
            expired += await _remove(store, FileRecord.created_at < cutoff, prefix=rule.prefix)
    objects = await store.backend.expire(settings.storage_lifecycle)
    return CleanUp(pending, orphans, expired, objects)


async def _remove(store: FileStore, where: object, prefix: str = "", batch: int = 500) -> int:
    """Remove every file matching ``where`` whose key starts with ``prefix``, in batches."""
    removed = 0
    last = 0
    while True:
        query = FileRecord.objects().where(where).where(FileRecord.id > last)  # type: ignore[arg-type]
        records = await query.order_by(FileRecord.id).limit(batch)
        for record in records:
            last = record.id
            if record.key.startswith(prefix):
                await store.remove(record)
                removed += 1
        if len(records) < batch:
            return removed
