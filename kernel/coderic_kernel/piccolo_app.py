"""The kernel's own Piccolo app: its tables and migrations (``kernel_*``)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from .email.tables import TABLES as EMAIL_TABLES
from .jobs.tables import OutboxEntry
from .storage.records import FileRecord

APP_CONFIG = AppConfig(
    app_name="kernel",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[OutboxEntry, *EMAIL_TABLES, FileRecord],
)
