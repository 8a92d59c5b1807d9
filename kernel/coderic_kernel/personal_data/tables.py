"""The data-export table, part of the kernel's Piccolo app (``kernel_data_export``).

One row per archive a member asked for: its state, and the file holding it once built. The
row and its file go when ``expires_at`` passes (the ``auth.expire_exports`` cron job).
"""

from __future__ import annotations

from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

#: building: the job has it; ready: the archive is stored; failed: the job gave up.
EXPORT_STATUSES = ("building", "ready", "failed")


class DataExport(Table, tablename="kernel_data_export"):
    uid = Varchar(length=32, unique=True)  # the export's id in the API
    user_id = Varchar(length=32, index=True)
    status = Varchar(length=10, default="building")
    file_id = Varchar(length=32, null=True, default=None)  # the archive's file (purpose auth.export)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    finished_at = Timestamptz(null=True, default=None)
    expires_at = Timestamptz()


TABLES = [DataExport]
