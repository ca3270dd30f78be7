"""What ships: the registered apps and their migration files, in the order Piccolo runs them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.conf.apps import AppConfig, MigrationModule

from orgschema.errors import InvalidInputError


@dataclass(frozen=True)
class ShippedMigration:
    """A migration file that a registered app ships."""

    app_name: str
    migration_id: str
    description: str
    path: Path
    source: str
    sha256: str
    module: MigrationModule = field(compare=False, repr=False)

    @property
    def key(self) -> str:
        """``app:id``, as messages and reports name a migration."""
        return f"{self.app_name}:{self.migration_id}"


def app_configs() -> list[AppConfig]:
    """The apps of the active Piccolo registry, dependencies first."""
    manager = BaseMigrationManager()
    return [manager.get_app_config(name) for name in manager.get_sorted_app_names()]


def app_tables(config: AppConfig) -> list[str]:
    """The table names an app registers."""
    return [table._meta.tablename for table in config.table_classes]


def registered_tables(configs: Sequence[AppConfig]) -> list[str]:
    """Every table name the apps register, sorted."""
    return sorted({name for config in configs for name in app_tables(config)})


def shipped_migrations(configs: Sequence[AppConfig]) -> list[ShippedMigration]:
    """Every app's migrations, in the order Piccolo's ``forwards all`` runs them."""
    manager = BaseMigrationManager()
    shipped = []
    for app_config in configs:
        modules = manager.get_migration_modules(app_config.resolved_migrations_folder_path)
        for migration_id in sorted(modules):
            module = modules[migration_id]
            path = Path(str(module.__file__))
            data = path.read_bytes()
            shipped.append(
                ShippedMigration(
                    app_name=app_config.app_name,
                    migration_id=migration_id,
                    description=str(getattr(module, "DESCRIPTION", "")),
                    path=path,
                    source=data.decode("utf-8"),
                    sha256=hashlib.sha256(data).hexdigest(),
                    module=module,
                )
            )
    return shipped


def target_index(target: str | None, shipped: Sequence[ShippedMigration]) -> int:
    """How many of ``shipped`` a run up to ``target`` (``ID`` or ``app:ID``) covers.

    :raises InvalidInputError: no registered app ships ``target``.
    """
    if target is None:
        return len(shipped)
    for index, migration in enumerate(shipped):
        if target in (migration.migration_id, migration.key):
            return index + 1
    raise InvalidInputError(
        f"no registered app ships a migration {target!r}; see `orgschema status` for the ids",
        field="target",
    )
