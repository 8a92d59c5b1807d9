from pathlib import Path

from piccolo.conf.apps import AppConfig

from .tables import Greeting

APP_CONFIG = AppConfig(
    app_name="hello",
    migrations_folder_path=str(Path(__file__).parent / "migrations"),
    table_classes=[Greeting],
)
