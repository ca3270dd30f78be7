"""What ships: the registered apps and their migration files, in the order Piccolo runs them."""

from __future__ import annotations

import hashlib
import os
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from piccolo.conf.apps import AppConfig, Finder, MigrationModule

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


def app_configs(given: Sequence[AppConfig] | None = None) -> tuple[AppConfig, ...]:
    """The apps to migrate, each after the apps its migrations depend on.

    :param given: Apps to use instead of the active Piccolo registry's; their
        ``migration_dependencies`` are added, as registering them would.
    """
    finder = Finder()
    if given is None:
        return tuple(finder.get_app_configs())
    found: dict[str, AppConfig] = {}
    stack = list(reversed(given))
    while stack:
        config = stack.pop()
        if config.app_name not in found:
            found[config.app_name] = config
            stack += config.migration_dependency_app_configs
    return tuple(finder.sort_app_configs(list(found.values())))


def app_tables(config: AppConfig) -> list[str]:
    """The table names an app registers."""
    return [table._meta.tablename for table in config.table_classes]


def registered_tables(configs: Sequence[AppConfig]) -> list[str]:
    """Every table name the apps register, sorted."""
    return sorted({name for config in configs for name in app_tables(config)})


@dataclass(frozen=True)
class _File:
    """A migration file as loaded, and the ``stat`` it was loaded at."""

    signature: tuple[int, int, int]
    migration_id: str | None
    description: str
    source: str
    sha256: str
    module: MigrationModule


#: Migration files loaded in this process, by path. A file is read, hashed and
#: executed again only when its size, mtime or inode changed.
_LOADED: dict[Path, _File] = {}


def shipped_migrations(configs: Sequence[AppConfig]) -> tuple[ShippedMigration, ...]:
    """Every app's migrations, in the order Piccolo's ``forwards all`` runs them.

    Each file is loaded once per process (again only after it changes), from
    the very bytes that are hashed, and without touching ``sys.path``.
    """
    shipped = []
    for config in configs:
        by_id: dict[str, ShippedMigration] = {}
        for path in _migration_files(Path(config.resolved_migrations_folder_path)):
            loaded = _load(path)
            if loaded.migration_id:
                by_id[loaded.migration_id] = ShippedMigration(
                    app_name=config.app_name,
                    migration_id=loaded.migration_id,
                    description=loaded.description,
                    path=path,
                    source=loaded.source,
                    sha256=loaded.sha256,
                    module=loaded.module,
                )
        shipped += [by_id[migration_id] for migration_id in sorted(by_id)]
    return tuple(shipped)


def _migration_files(folder: Path) -> list[Path]:
    # What Piccolo's loader imports: every .py file of the folder but __init__.py.
    return sorted(
        folder / name
        for name in os.listdir(folder)
        if name.endswith(".py") and name != "__init__.py"
    )


def _load(path: Path) -> _File:
    stat = path.stat()
    signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    cached = _LOADED.get(path)
    if cached is not None and cached.signature == signature:
        return cached
    data = path.read_bytes()
    module = cast(MigrationModule, types.ModuleType(path.stem))
    module.__file__ = str(path)
    # Executed from the bytes just hashed, so the checksum recorded is always
    # that of the code that ran (a bytecode cache keyed by mtime could differ).
    exec(compile(data, str(path), "exec", dont_inherit=True), module.__dict__)  # noqa: S102 -- the app's own file
    migration_id = getattr(module, "ID", None)
    loaded = _File(
        signature=signature,
        migration_id=str(migration_id) if migration_id else None,
        description=str(getattr(module, "DESCRIPTION", "")),
        source=data.decode("utf-8"),
        sha256=hashlib.sha256(data).hexdigest(),
        module=module,
    )
    _LOADED[path] = loaded
    return loaded


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
