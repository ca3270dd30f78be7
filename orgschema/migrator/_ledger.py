"""What the database remembers: Piccolo's ``migration`` table and orgschema's checksum ledger.

Piccolo's ledger says what is applied (so plain Piccolo and orgschema stay
interchangeable); orgschema's, beside it, records each applied file's sha256,
source and SQL, so that an edited file is refused before anything runs.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppConfig

from orgschema.errors import AppliedMigrationModified, UnknownAppliedMigration
from orgschema.migrator._scripts import ShippedMigration

logger = logging.getLogger(__name__)

#: orgschema's ledger of checksums, sources and SQL, beside Piccolo's ``migration``.
LEDGER_TABLE = "orgschema_migration"

_LEDGER_DDL = f"""
CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (
    app_name text NOT NULL,
    migration_id text NOT NULL,
    file_name text NOT NULL,
    sha256 text NOT NULL,
    source text NOT NULL,
    sql text,
    applied_at timestamptz NOT NULL DEFAULT now(),
    duration_ms double precision,
    orgschema_version text NOT NULL,
    how text NOT NULL CHECK (how IN ('applied', 'adopted', 'baseline')),
    PRIMARY KEY (app_name, migration_id)
)
"""


@dataclass(frozen=True)
class Ledgers:
    """Piccolo's ``migration`` rows and orgschema's checksum rows of one database."""

    #: (app, id) -> when Piccolo's ledger says it ran.
    ran: Mapping[tuple[str, str], datetime | None]
    #: (app, id) -> the sha256 recorded when it was applied or adopted.
    checksums: Mapping[tuple[str, str], str]
    #: (app, id) -> the file's source as it was applied.
    sources: Mapping[tuple[str, str], str]
    #: Whether Piccolo's ledger and orgschema's exist.
    exist: tuple[bool, bool] = (True, True)

    def applied(self, m: ShippedMigration) -> bool:
        return (m.app_name, m.migration_id) in self.ran

    def checksum(self, m: ShippedMigration) -> str | None:
        return self.checksums.get((m.app_name, m.migration_id))

    def ran_on(self, app_name: str, migration_id: str) -> datetime | None:
        return self.ran.get((app_name, migration_id))

    def stale(self) -> tuple[tuple[str, str], ...]:
        """Checksum rows of migrations that ``piccolo migrations backwards`` undid."""
        return tuple(key for key in self.checksums if key not in self.ran)

    def without(self, keys: Iterable[tuple[str, str]]) -> Ledgers:
        """These ledgers with the checksum rows of ``keys`` forgotten."""
        gone = set(keys)
        return replace(
            self,
            checksums={k: v for k, v in self.checksums.items() if k not in gone},
            sources={k: v for k, v in self.sources.items() if k not in gone},
        )

    def unknown(
        self, shipped: Iterable[ShippedMigration], configs: Iterable[AppConfig]
    ) -> list[tuple[str, str]]:
        """Applied migrations of registered apps that no file ships any more."""
        known = {(m.app_name, m.migration_id) for m in shipped}
        apps = {config.app_name for config in configs}
        return sorted(key for key in self.ran if key[0] in apps and key not in known)


async def exist(conn: asyncpg.Connection) -> tuple[bool, bool]:
    """Whether Piccolo's ledger and orgschema's exist."""
    row = await conn.fetchrow(
        f"SELECT to_regclass('migration') IS NOT NULL, to_regclass('{LEDGER_TABLE}') IS NOT NULL"
    )
    return (bool(row[0]), bool(row[1])) if row else (False, False)


async def read(conn: asyncpg.Connection, exists: tuple[bool, bool] | None = None) -> Ledgers:
    """Both ledgers' rows (empty for a ledger that does not exist)."""
    piccolo, ours = exists or await exist(conn)
    ran: dict[tuple[str, str], datetime | None] = {}
    checksums: dict[tuple[str, str], str] = {}
    sources: dict[tuple[str, str], str] = {}
    if piccolo:
        for row in await conn.fetch("SELECT app_name, name, ran_on FROM migration ORDER BY id"):
            ran[(row["app_name"], row["name"])] = row["ran_on"]
    if ours:
        for row in await conn.fetch(
            f"SELECT app_name, migration_id, sha256, source FROM {LEDGER_TABLE}"
        ):
            key = (row["app_name"], row["migration_id"])
            checksums[key] = row["sha256"]
            sources[key] = row["source"]
    return Ledgers(ran=ran, checksums=checksums, sources=sources, exist=(piccolo, ours))


async def create(conn: asyncpg.Connection, exists: tuple[bool, bool]) -> None:
    """Create whichever ledger is missing (under the migration lock)."""
    # Under the advisory lock: concurrent CREATE TABLE IF NOT EXISTS of the
    # same table can fail on the catalog's unique index.
    piccolo, ours = exists
    if not piccolo:
        for ddl in Migration.create_table(if_not_exists=True).ddl:
            await conn.execute(ddl)
    if not ours:
        await conn.execute(_LEDGER_DDL)


async def forget(conn: asyncpg.Connection, keys: Sequence[tuple[str, str]]) -> None:
    """Delete the checksum rows of ``keys`` (migrations Piccolo rolled back).

    Piccolo's ledger says what is applied; a checksum row without its Piccolo
    row would make re-applying that migration collide with itself.
    """
    if not keys:
        return
    await conn.execute(
        f"DELETE FROM {LEDGER_TABLE} WHERE (app_name, migration_id) IN "
        "(SELECT * FROM unnest($1::text[], $2::text[]))",
        [app for app, _ in keys],
        [migration_id for _, migration_id in keys],
    )
    logger.info("forgot the checksums of %d migration(s) rolled back by Piccolo", len(keys))


def verify(
    unknown: Sequence[tuple[str, str]], edited: Sequence[ShippedMigration], recorded: Ledgers
) -> None:
    """Refuse, before anything runs, when an applied migration is edited or unknown.

    :raises UnknownAppliedMigration: the ledger lists a migration no registered app ships.
    :raises AppliedMigrationModified: an applied file changed; the message holds the diff.
    """
    if unknown:
        listed = ", ".join(f"{app}:{mid}" for app, mid in unknown)
        raise UnknownAppliedMigration(
            f"the database records migrations that no registered app ships: {listed}. "
            "Install the package version that applied them (or register its app); "
            "never delete an applied migration"
        )
    if edited:
        diffs = []
        for m in edited:
            key = (m.app_name, m.migration_id)
            diff = difflib.unified_diff(
                recorded.sources[key].splitlines(keepends=True),
                m.source.splitlines(keepends=True),
                fromfile=f"{m.path.name} (as applied, sha256 {recorded.checksums[key][:12]})",
                tofile=f"{m.path.name} (now, sha256 {m.sha256[:12]})",
            )
            diffs.append("".join(diff))
        raise AppliedMigrationModified(
            f"{len(edited)} applied migration(s) were edited since they ran: "
            + ", ".join(m.key for m in edited)
            + ". Restore the files and put the change in a new migration.\n"
            + "\n".join(diffs)
        )


_INSERT_OURS = f"""
    INSERT INTO {LEDGER_TABLE}
        (app_name, migration_id, file_name, sha256, source, sql, duration_ms,
         orgschema_version, how)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""

# Both ledgers' rows in one round trip. Piccolo's own rows carry naive local
# time, as its TimestampNow default does.
_INSERT_BOTH = f"""
    WITH piccolo AS (
        INSERT INTO migration (name, app_name, ran_on) VALUES ($2, $1, $10)
    )
    {_INSERT_OURS}
"""


async def record(
    conn: asyncpg.Connection,
    migrations: Sequence[ShippedMigration],
    *,
    how: str,
    sql: str | None = None,
    seconds: float | None = None,
    piccolo_row: bool = False,
) -> None:
    """Write the ledger rows of ``migrations`` (``how``: applied, adopted or baseline)."""
    for m in migrations:
        args: list[Any] = [
            m.app_name,
            m.migration_id,
            m.path.name,
            m.sha256,
            m.source,
            sql,
            None if seconds is None else seconds * 1000,
            _version(),
            how,
        ]
        if piccolo_row:
            await conn.execute(_INSERT_BOTH, *args, datetime.now())
        else:
            await conn.execute(_INSERT_OURS, *args)


@functools.cache
def _version() -> str:
    # importlib.metadata scans sys.path on every call: look once per process.
    try:
        return importlib.metadata.version("orgschema")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"
