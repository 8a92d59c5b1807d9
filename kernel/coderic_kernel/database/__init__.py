"""The database: Piccolo engines behind one service, and the migration runner."""

from .migrations import MigrationRunner, PluginApp
from .service import DatabaseService

__all__ = ["DatabaseService", "MigrationRunner", "PluginApp"]
