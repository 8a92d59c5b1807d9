"""The kernel's own Piccolo app: its tables and migrations (``kernel_*``)."""

from pathlib import Path

from piccolo.conf.apps import AppConfig

from .email.tables import TABLES as EMAIL_TABLES
from .identity.tables import TABLES as IDENTITY_TABLES
from .jobs.tables import OutboxEntry
from .notifications.tables import TABLES as NOTIFICATION_TABLES
from .permissions.tables import TABLES as PERMISSION_TABLES
from .personal_data.tables import DataExport
from .profiles.tables import TABLES as PROFILE_TABLES
from .storage.records import FileRecord

APP_CONFIG = AppConfig(
    app_name="kernel",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[OutboxEntry, *EMAIL_TABLES, FileRecord, *IDENTITY_TABLES, *PERMISSION_TABLES, *PROFILE_TABLES, DataExport,
                   *NOTIFICATION_TABLES],
)
