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
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

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
    #: Whether Piccolo's ledger and orgschema's exist.
    exist: tuple[bool, bool]

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
        return replace(self, checksums={k: v for k, v in self.checksums.items() if k not in gone})

    def unknown(
        self, shipped: Iterable[ShippedMigration], configs: Iterable[AppConfig]
    ) -> list[tuple[str, str]]:
        """Applied migrations of registered apps that no file ships any more."""
        known = {(m.app_name, m.migration_id) for m in shipped}
        apps = {config.app_name for config in configs}
        return sorted(key for key in self.ran if key[0] in apps and key not in known)


#: Whether Piccolo's ledger and orgschema's exist, as SQL expressions.
EXIST_SQL = f"to_regclass('migration') IS NOT NULL, to_regclass('{LEDGER_TABLE}') IS NOT NULL"


async def read(conn: asyncpg.Connection, exist: tuple[bool, bool]) -> Ledgers:
    """Both ledgers' rows (none for a ledger that does not exist).

    Not the sources: only the diff of an edited file needs one (see :func:`verify`).

    :param exist: Whether each ledger exists (from :data:`EXIST_SQL`).
    """
    piccolo, ours = exist
    ran: dict[tuple[str, str], datetime | None] = {}
    checksums: dict[tuple[str, str], str] = {}
    if piccolo and ours:
        # Both in one round trip; a checksum row whose Piccolo row is gone
        # (rolled back by Piccolo) comes with no ran_on.
        rows = await conn.fetch(
            f"""
            SELECT coalesce(m.app_name, o.app_name) AS app_name,
                   coalesce(m.name, o.migration_id) AS name,
                   m.id IS NOT NULL AS ran, m.ran_on, o.sha256
            FROM migration m
            FULL JOIN {LEDGER_TABLE} o ON o.app_name = m.app_name AND o.migration_id = m.name
            ORDER BY m.id
            """
        )
        for row in rows:
            key = (row["app_name"], row["name"])
            if row["ran"]:
                ran[key] = row["ran_on"]
            if row["sha256"] is not None:
                checksums[key] = row["sha256"]
    elif piccolo:
        for row in await conn.fetch("SELECT app_name, name, ran_on FROM migration ORDER BY id"):
            ran[(row["app_name"], row["name"])] = row["ran_on"]
    elif ours:
        for row in await conn.fetch(f"SELECT app_name, migration_id, sha256 FROM {LEDGER_TABLE}"):
            checksums[(row["app_name"], row["migration_id"])] = row["sha256"]
    return Ledgers(ran=ran, checksums=checksums, exist=(piccolo, ours))


def create_sql(exist: tuple[bool, bool]) -> str:
    """SQL creating whichever ledger is missing ("" when both exist); run it under the lock.

    Under the advisory lock because concurrent ``CREATE TABLE IF NOT EXISTS``
    of the same table can fail on the catalog's unique index.
    """
    piccolo, ours = exist
    ddl = [] if piccolo else list(_piccolo_ledger_ddl())
    if not ours:
        ddl.append(_LEDGER_DDL)
    return ";\n".join(ddl)


@functools.cache
def _piccolo_ledger_ddl() -> tuple[str, ...]:
    # Piccolo builds it from its table class each time it is asked: once will do.
    return tuple(Migration.create_table(if_not_exists=True).ddl)


def forget_sql(keys: Sequence[tuple[str, str]]) -> str:
    """SQL deleting the checksum rows of ``keys`` ("" for none): migrations Piccolo rolled back.

    Piccolo's ledger says what is applied; a checksum row without its Piccolo
    row would make re-applying that migration collide with itself.
    """
    if not keys:
        return ""
    logger.info("forgetting the checksums of %d migration(s) rolled back by Piccolo", len(keys))
    listed = ", ".join(f"({_text(app)}, {_text(migration_id)})" for app, migration_id in keys)
    return f"DELETE FROM {LEDGER_TABLE} WHERE (app_name, migration_id) IN ({listed})"


async def verify(
    conn: asyncpg.Connection,
    unknown: Sequence[tuple[str, str]],
    edited: Sequence[ShippedMigration],
    recorded: Ledgers,
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
        sources = {
            (row["app_name"], row["migration_id"]): row["source"]
            for row in await conn.fetch(
                f"SELECT app_name, migration_id, source FROM {LEDGER_TABLE} "
                "WHERE (app_name, migration_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
                [m.app_name for m in edited],
                [m.migration_id for m in edited],
            )
        }
        diffs = []
        for m in edited:
            key = (m.app_name, m.migration_id)
            diff = difflib.unified_diff(
                sources[key].splitlines(keepends=True),
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


#: ``duration_ms`` of a migration recorded in its own transaction: how long
#: that transaction has run on the server, up to the ledger write.
SINCE_BEGIN = "extract(epoch FROM clock_timestamp() - now()) * 1000"


def rows_sql(
    migrations: Sequence[ShippedMigration],
    *,
    how: str,
    sql: str | None = None,
    duration_ms: str = "NULL",
    piccolo_row: bool = False,
) -> str:
    """The ledger rows of ``migrations`` as one SQL script (``how``: applied, adopted, baseline).

    Literals rather than parameters, so that the rows can travel in one
    round trip with the migration's own statements and its ``COMMIT``; text is
    dollar-quoted with a tag that does not occur in it, so nothing in a
    source file can end the literal.

    :param duration_ms: A SQL expression (:data:`SINCE_BEGIN`, a number, ``NULL``).
    :param piccolo_row: Also write Piccolo's ``migration`` row.
    """
    statements: list[str] = []
    for m in migrations:
        values = ", ".join(
            [
                _text(m.app_name),
                _text(m.migration_id),
                _text(m.path.name),
                _text(m.sha256),
                _text(m.source),
                _text(sql),
                duration_ms,
                _text(_version()),
                _text(how),
            ]
        )
        statements.append(
            f"INSERT INTO {LEDGER_TABLE} (app_name, migration_id, file_name, sha256, source, "
            f"sql, duration_ms, orgschema_version, how) VALUES ({values})"
        )
        if piccolo_row:
            # Piccolo's own rows carry naive local time, as its TimestampNow default does.
            statements.append(
                "INSERT INTO migration (name, app_name, ran_on) VALUES "
                f"({_text(m.migration_id)}, {_text(m.app_name)}, "
                f"{_text(datetime.now().isoformat())}::timestamp)"
            )
    return ";\n".join(statements)


def _text(value: str | None) -> str:
    if value is None:
        return "NULL"
    tag = "orgschema"
    while tag in value:
        tag = f"orgschema_{secrets.token_hex(8)}"
    return f"${tag}${value}${tag}$"


@functools.cache
def _version() -> str:
    # importlib.metadata scans sys.path on every call: look once per process.
    try:
        return importlib.metadata.version("orgschema")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"
