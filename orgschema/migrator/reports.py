"""What the migrator's public functions return: frozen reports, one per verb."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AppliedMigration:
    """One migration that :func:`~orgschema.migrate` ran (or, in a dry run, would run)."""

    app_name: str
    migration_id: str
    description: str
    seconds: float
    #: Every statement it executed, in order, each ending with ``;``.
    sql: str


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`~orgschema.migrate` did."""

    applied: tuple[AppliedMigration, ...]
    #: ``app:id`` of migrations applied earlier by plain Piccolo, whose checksums were recorded now.
    adopted: tuple[str, ...] = ()
    #: ``app:id`` of migrations recorded as applied by ``baseline`` without running them.
    baselined: tuple[str, ...] = ()
    #: The renames ``baseline`` with ``adopt_names`` ran.
    renamed: tuple[str, ...] = ()
    dry_run: bool = False
    lock_wait_seconds: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True)
class MigrationState:
    """One shipped (or recorded) migration and where it stands in a database."""

    app_name: str
    migration_id: str
    description: str
    #: ``applied`` or ``pending``.
    state: str
    applied_at: datetime | None
    #: ``ok``, ``edited`` (the file changed since it was applied), ``unrecorded``
    #: (applied by plain Piccolo, adopted on the next migrate), ``missing`` (no
    #: such file ships any more), or ``-`` while pending.
    checksum: str

    def as_dict(self) -> dict[str, Any]:
        """The state as plain JSON types (``orgschema status --json``)."""
        return {
            "app": self.app_name,
            "id": self.migration_id,
            "description": self.description,
            "state": self.state,
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
            "checksum": self.checksum,
        }


@dataclass(frozen=True)
class UntrackedTables:
    """An app whose tables exist although none of its migrations is recorded.

    The database was created some other way (the original Drizzle stack, say);
    ``orgschema migrate --baseline`` adopts it, and plain ``migrate`` refuses.
    """

    app_name: str
    tables: tuple[str, ...]


@dataclass(frozen=True)
class StatusReport:
    """Every migration of every registered app, as :func:`~orgschema.migration_status` found them."""

    migrations: tuple[MigrationState, ...]
    #: Apps whose tables are present without migration history.
    untracked: tuple[UntrackedTables, ...] = ()

    @property
    def pending(self) -> tuple[MigrationState, ...]:
        """The migrations not applied yet."""
        return tuple(m for m in self.migrations if m.state == "pending")

    @property
    def problems(self) -> tuple[MigrationState, ...]:
        """Applied migrations whose file was edited or no longer ships."""
        return tuple(m for m in self.migrations if m.checksum in ("edited", "missing"))


@dataclass(frozen=True)
class CheckReport:
    """What :func:`~orgschema.check_migrations` found; empty lists mean all is well."""

    #: Statements a new auto migration would hold, as ``app: statement``.
    unmigrated_changes: tuple[str, ...] = ()
    #: How the live database differs from what its applied migrations produce.
    drift: tuple[str, ...] = ()
    #: ``app:id`` the database records as applied that no registered app ships.
    unknown_applied: tuple[str, ...] = ()
    #: ``app:id`` of applied migrations whose file was edited since.
    edited: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether table classes, migrations and the database agree."""
        return not (self.unmigrated_changes or self.drift or self.unknown_applied or self.edited)
