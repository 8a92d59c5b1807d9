"""The file record table, part of the kernel's Piccolo app (``kernel_file``).

Bytes live in the backend; this table says what they are and whose. ``size`` of a pending
(signed, not yet confirmed) upload is the size it was allowed, so quotas count it already.
"""

from __future__ import annotations

from piccolo.columns import BigInt, Boolean, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

#: pending: a signed upload not yet confirmed; stored: checked and in place.
FILE_STATUSES = ("pending", "stored")


class FileRecord(Table, tablename="kernel_file"):
    uid = Varchar(length=32, unique=True)  # the file's id in URLs and the API
    owner = Varchar(length=100, null=True, default=None, index=True)
    plugin = Varchar(length=40, index=True)
    purpose = Varchar(length=81)
    key = Varchar(length=255)
    filename = Varchar(length=255, default="")
    content_type = Varchar(length=100)
    size = BigInt(default=0)
    checksum = Varchar(length=64, default="")  # sha256 of the stored original, hex
    visibility = Varchar(length=8, default="private")
    status = Varchar(length=8, default="stored", index=True)
    attached = Boolean(default=True)
    variants = Varchar(length=255, default="")  # comma-separated variant names
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
