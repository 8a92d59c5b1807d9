from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-30T11:35:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "One membership and one follow per user and project, whatever the races between requests"
PAIRS = ("projects_member", "projects_follow")


async def unique_pairs() -> None:
    from coderic_projects.tables import Follow  # bound to the kernel's database

    for table in PAIRS:
        await Follow.raw(f"CREATE UNIQUE INDEX {table}_project_user ON {table} (project, user_id)")


async def drop_unique_pairs() -> None:
    from coderic_projects.tables import Follow

    for table in PAIRS:
        await Follow.raw(f"DROP INDEX IF EXISTS {table}_project_user")


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="projects", description=DESCRIPTION)
    manager.add_raw(unique_pairs)
    manager.add_raw_backwards(drop_unique_pairs)
    return manager
