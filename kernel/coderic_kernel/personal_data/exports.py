"""Data exports: a member asks (``POST /api/v1/me/export``), the ``auth.build_export`` job
writes the archive and stores it as a private file of purpose ``auth.export``, the member is
mailed, and fetches it through a short-lived signed URL (``GET /api/v1/me/export/{id}``).

One export a day per member (the ones that failed do not count). Archives are kept
``RETENTION`` and then removed, file and row, by the ``auth.expire_exports`` cron job.

The archive's file has no owner: it must not count against the member's storage quota (an
export must work for a member at their quota), and it is reached only through its export's
row, whose ``user_id`` is checked. Deleting the account removes it with the row.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any

from coderic_sdk import FilePurpose, JobContext, PluginContext, Problem, Recipient

from ..identity.crypto import new_uid
from ..identity.service import THROTTLED
from ..identity.tables import User
from ..storage.records import FileRecord
from ..storage.service import store_for
from .archive import write_archive
from .tables import DataExport

if TYPE_CHECKING:
    from ..kernel import Kernel

logger = logging.getLogger("coderic.auth.exports")
RETENTION = timedelta(days=7)
ONE_EVERY = timedelta(days=1)
BUILD_JOB = "build_export"
BUILD_ATTEMPTS = 3
PURPOSE = "auth.export"
EXPORT_PURPOSE = FilePurpose(
    "export", max_bytes=64 * 1024**3, allowed_types=("application/zip",), visibility="private",
    description="Archives of members' data (GET /api/v1/me/export/{id}); removed after 7 days.",
)
READY_TEMPLATE = "email.data_export_ready"
#: The page of the web app where a member finds their export (the link in the email).
EXPORT_PAGE = "/account/data"
CHUNK = 1024 * 1024


async def request_export(plugin: PluginContext, user_id: str) -> DataExport:
    """A new export of the member's data, its job queued; 429 when one was asked for today."""
    now = datetime.now(timezone.utc)
    recent = await DataExport.objects().where(
        (DataExport.user_id == user_id) & (DataExport.created_at > now - ONE_EVERY) & (DataExport.status != "failed")
    ).order_by(DataExport.created_at, ascending=False).first()
    if recent is not None:
        retry = max(1, int((recent.created_at + ONE_EVERY - now).total_seconds()))
        raise Problem(429, "One export a day: the last one is at /api/v1/me/export/" + recent.uid + ".", type=THROTTLED,
                      headers={"Retry-After": str(retry)}, extra={"export_id": recent.uid})
    export = DataExport(uid=new_uid(), user_id=user_id, status="building", created_at=now, expires_at=now + RETENTION)
    async with plugin.kernel.database.transaction():
        await export.save()
        await plugin.jobs.enqueue(BUILD_JOB, {"export": export.uid}, key=export.uid)
    return export


async def mine(user_id: str, export_id: str) -> DataExport | None:
    return await DataExport.objects().where(  # type: ignore[no-any-return]
        (DataExport.uid == export_id) & (DataExport.user_id == user_id)
    ).first()


async def signed_url(kernel: Kernel, export: DataExport, base_url: str) -> tuple[str | None, datetime | None]:
    """A signed URL of the archive and when it stops working, once the export is ready."""
    if export.status != "ready" or not export.file_id:
        return None, None
    store = store_for(kernel)
    record = await store.record(export.file_id)
    if record is None:
        return None, None
    expires_in = store.settings.storage_url_expiry_seconds
    url = store.download_url(record, expires_in=expires_in, base_url=base_url)
    return url, datetime.now(timezone.utc) + timedelta(seconds=expires_in)


async def build_export(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The job: write the archive, store it, mark the export ready and mail the member."""
    export = await DataExport.objects().where(DataExport.uid == str(payload["export"])).first()
    if export is None or export.status != "building":
        return  # done by an earlier attempt, or deleted with the account
    kernel: Kernel = ctx.plugin.kernel  # type: ignore[assignment]
    store = store_for(kernel)
    try:
        with tempfile.TemporaryFile() as spool:
            manifest = await write_archive(kernel, export.user_id, spool)
            size = spool.tell()
            spool.seek(0)
            stamp = export.created_at.strftime("%Y-%m-%d")
            record = await store.store(store.purposes[PURPOSE], _chunks(spool), owner=None,
                                       filename=f"coderic-data-{stamp}.zip", declared_size=size)
    except Exception:
        if ctx.attempt >= BUILD_ATTEMPTS:
            await DataExport.update({DataExport.status: "failed", DataExport.finished_at: datetime.now(timezone.utc)}).where(
                (DataExport.uid == export.uid) & (DataExport.status == "building")
            )
        raise
    try:
        async with kernel.database.transaction():
            ready = await DataExport.update({
                DataExport.status: "ready", DataExport.file_id: record.uid, DataExport.finished_at: datetime.now(timezone.utc),
            }).where((DataExport.uid == export.uid) & (DataExport.status == "building")).returning(DataExport.uid)
            if ready:
                await _notify(ctx.plugin, export)
    except BaseException:
        await store.remove(record)
        raise
    if not ready:  # the export (or the account) was deleted while the archive was being written
        await store.remove(record)
        return
    logger.info("data export %s ready: %d plugin file(s), %d file(s), %d byte(s)", export.uid,
                len(manifest["plugins"]), manifest["files"], record.size)


async def _notify(plugin: PluginContext, export: DataExport) -> None:
    user = await User.select(User.email, User.name, User.language).where(User.uid == export.user_id).first()
    if user is None or not user["email"]:
        return
    recipient = Recipient(user["email"], user["name"] or None, export.user_id, user["language"])
    context = {"export_url": plugin.email.link(EXPORT_PAGE), "expires_at": export.expires_at.strftime("%Y-%m-%d %H:%M UTC")}
    await plugin.email.send(READY_TEMPLATE, recipient, context, key=f"data_export:{export.uid}")


async def _chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := spool.read(CHUNK):
        yield chunk


async def remove_export(kernel: Kernel, export: DataExport) -> None:
    """The export's archive (if any) and then its row."""
    if export.file_id:
        store = store_for(kernel)
        record = await FileRecord.objects().where(FileRecord.uid == export.file_id).first()
        if record is not None:
            await store.remove(record)
    await DataExport.delete().where(DataExport.id == export.id)


async def expire_exports(ctx: JobContext) -> None:
    """The cron job: remove every export past ``expires_at``."""
    kernel: Kernel = ctx.plugin.kernel  # type: ignore[assignment]
    expired = await DataExport.objects().where(DataExport.expires_at < datetime.now(timezone.utc))
    for export in expired:
        await remove_export(kernel, export)
    if expired:
        logger.info("removed %d expired data export(s)", len(expired))
