"""Apply and reverse each plugin's Piccolo migrations, in plugin dependency order.

Piccolo's own runner imports migration files by bare module name from a folder put on
``sys.path``, so two plugins with a file of the same name would shadow each other; this
runner imports each file under a name of its own. Each migration and the record of it
commit in one transaction, so a failed migration leaves neither behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns import Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.conf.apps import AppConfig
from piccolo.table import Table

from ..errors import PluginError, describe
from .service import DatabaseService


class MigrationRecord(Table, tablename="kernel_migration"):
    """One applied migration of one plugin."""

    app_name = Varchar(length=100)
    name = Varchar(length=200)
    ran_on = Timestamptz(default=TimestamptzNow())


@dataclass(frozen=True)
class PluginApp:
    """A plugin's Piccolo app; ``app.app_name`` equals ``plugin``."""

    plugin: str
    app: AppConfig


@dataclass(frozen=True)
class MigrationState:
    plugin: str
    id: str
    description: str
    applied: bool


class MigrationRunner:
    def __init__(self, database: DatabaseService, apps: Sequence[PluginApp]) -> None:
        self.database = database
        self.apps = list(apps)
        self._modules: dict[str, dict[str, ModuleType]] = {}

    def modules(self, plugin: str) -> dict[str, ModuleType]:
        """The plugin's migration modules by id, sorted; imported once."""
        if plugin not in self._modules:
            self._modules[plugin] = _import_migrations(plugin, self.require(plugin).app)
        return self._modules[plugin]

    async def status(self) -> list[MigrationState]:
        applied = await self._applied()
        return [
            MigrationState(entry.plugin, mid, getattr(module, "DESCRIPTION", ""), mid in applied.get(entry.plugin, set()))
            for entry in self.apps
            for mid, module in self.modules(entry.plugin).items()
        ]

    async def pending(self) -> list[MigrationState]:
        return [state for state in await self.status() if not state.applied]

    async def forwards(self, plugin: str | None = None) -> list[MigrationState]:
        """Apply every pending migration (of one plugin, or of all in order); return them."""
        if plugin is not None:
            self.require(plugin)
        done = []
        for state in await self.pending():
            if plugin is not None and state.plugin != plugin:
                continue
            await self._run(state, backwards=False)
            done.append(state)
        return done

    async def backwards(self, plugin: str, migration_id: str) -> list[MigrationState]:
        """Reverse the plugin's applied migrations, newest first, down to ``migration_id``
        (included); ``all`` reverses every one, ``1`` only the newest."""
        self.require(plugin)
        applied = [s for s in await self.status() if s.plugin == plugin and s.applied]
        applied.reverse()
        if migration_id == "all":
            chosen = applied
        elif migration_id == "1":
            chosen = applied[:1]
        else:
            ids = [s.id for s in applied]
            if migration_id not in ids:
                known = ", ".join(reversed(ids)) or "none"
                raise PluginError(plugin, "migrate", f"migration {migration_id!r} is not applied; applied: {known}")
            chosen = applied[: ids.index(migration_id) + 1]
        for state in chosen:
            await self._run(state, backwards=True)
        return chosen

    async def _run(self, state: MigrationState, *, backwards: bool) -> None:
        module = self.modules(state.plugin)[state.id]
        try:
            async with self.database.transaction():
                manager = await module.forwards()
                if isinstance(manager, MigrationManager):
                    with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints progress
                        await manager.run(backwards=backwards)
                if backwards:
                    await MigrationRecord.delete().where(
                        (MigrationRecord.app_name == state.plugin) & (MigrationRecord.name == state.id)
                    )
                else:
                    await MigrationRecord.insert(MigrationRecord(app_name=state.plugin, name=state.id))
        except PluginError:
            raise
        except Exception as exc:
            direction = "reversing" if backwards else "applying"
            raise PluginError(state.plugin, "migrate", f"{direction} {state.id}: {describe(exc)}") from exc

    async def _applied(self) -> dict[str, set[str]]:
        await MigrationRecord.create_table(if_not_exists=True)
        rows = await MigrationRecord.select(MigrationRecord.app_name, MigrationRecord.name)
        applied: dict[str, set[str]] = {}
        for row in rows:
            applied.setdefault(row["app_name"], set()).add(row["name"])
        return applied

    def require(self, plugin: str) -> PluginApp:
        """The plugin's app; a ``PluginError`` naming those with migrations when it has none."""
        for entry in self.apps:
            if entry.plugin == plugin:
                return entry
        known = ", ".join(e.plugin for e in self.apps) or "none"
        raise PluginError(plugin, "migrate", f"has no migrations; plugins with migrations: {known}")


def _import_migrations(plugin: str, app: AppConfig) -> dict[str, ModuleType]:
    folder = Path(app.resolved_migrations_folder_path)
    if not folder.is_dir():
        raise PluginError(plugin, "database", f"migrations folder {str(folder)!r} does not exist")
    modules: dict[str, ModuleType] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py":
            continue
        name = f"coderic_migrations.{plugin}.{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise PluginError(plugin, "database", f"cannot import migration {path.name}: {describe(exc)}") from exc
        sys.modules[name] = module
        migration_id = getattr(module, "ID", None)
        if not migration_id or not callable(getattr(module, "forwards", None)):
            raise PluginError(plugin, "database", f"migration {path.name} has no ID or no forwards()")
        modules[migration_id] = module
    return dict(sorted(modules.items()))
