"""The shipped migrations agree with the table classes and apply once."""

from __future__ import annotations

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.new import AutoMigrationManager
from piccolo.conf.apps import MigrationModule

from orgschema.migrator import migrate
from orgschema.piccolo_app import APP_CONFIG


def shipped_migrations() -> dict[str, MigrationModule]:
    return BaseMigrationManager().get_migration_modules(APP_CONFIG.resolved_migrations_folder_path)


async def test_no_auto_migration_pending_at_head(database_url: str) -> None:
    """A new ``--auto`` migration generated now would contain no statement."""
    alter = await AutoMigrationManager(auto_input="n").get_alter_statements(app_config=APP_CONFIG)
    assert [statement for group in alter for statement in group.statements] == []


async def test_second_migrate_applies_nothing(database_url: str) -> None:
    report = await migrate()
    assert report.applied == ()


async def test_piccolo_ledger_lists_every_shipped_migration_once(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT name FROM migration WHERE app_name = 'orgschema' ORDER BY name"
        )
    finally:
        await conn.close()
    assert [row["name"] for row in rows] == sorted(shipped_migrations())
    assert len(rows) >= 2


async def test_every_shipped_migration_belongs_to_the_app() -> None:
    for migration_id, module in shipped_migrations().items():
        manager = await module.forwards()
        assert isinstance(manager, MigrationManager)
        assert (manager.migration_id, manager.app_name) == (migration_id, "orgschema")
