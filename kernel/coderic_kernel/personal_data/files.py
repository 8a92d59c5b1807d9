"""The ``files`` built-in's personal data: every file the member owns, of every plugin.

The export lists the records; the archive builder adds each file's bytes at ``archive_path``.
Deleting removes the files, their variants and their records, whichever plugin stored them
(so a plugin's delete need not remove the user's files itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coderic_sdk import PersonalData

from ..storage.records import FileRecord
from ..storage.service import store_for
from .common import plain

if TYPE_CHECKING:
    from ..kernel import Kernel

BATCH = 200


def archive_path(record: FileRecord) -> str:
    """Where a file's bytes go in the archive: ``files/<id>/<the uploader's name for it>``."""
    name = record.filename.replace("/", "_").replace("\\", "_").strip() or "file"
    return f"files/{record.uid}/{name}"


async def owned(user_id: str) -> list[FileRecord]:
    return list(await FileRecord.objects().where(FileRecord.owner == user_id).order_by(FileRecord.id))


def declarations(kernel: Kernel) -> list[PersonalData]:
    async def export_files(user_id: str) -> list[dict[str, Any]]:
        return [{
            "id": record.uid, "plugin": record.plugin, "purpose": record.purpose, "filename": record.filename,
            "content_type": record.content_type, "size": record.size, "checksum": record.checksum,
            "visibility": record.visibility, "status": record.status, "created_at": plain(record.created_at),
            "archive_path": archive_path(record) if record.status == "stored" else None,
        } for record in await owned(user_id)]

    async def delete_files(user_id: str) -> None:
        store = store_for(kernel)
        while True:
            batch = await FileRecord.objects().where(FileRecord.owner == user_id).order_by(FileRecord.id).limit(BATCH)
            for record in batch:
                await store.remove(record)
            if len(batch) < BATCH:
                return

    return [PersonalData("files", export_files, delete_files, "Every file the member uploaded, of every plugin.")]
