"""Deploy-time migrations that enforce the rules instead of trusting memory.

:func:`migrate` applies the pending migrations of every app in the active
Piccolo registry, in the order ``piccolo migrations forwards all`` uses, and
writes Piccolo's own ``migration`` ledger, so plain Piccolo and orgschema stay
interchangeable. On top of Piccolo it adds:

- **one migrator at a time**: a session-level advisory lock, held on a
  dedicated connection for the whole run; others wait (up to a timeout), then
  find nothing pending;
- **atomic ledger**: each migration, its Piccolo ledger row and its
  ``orgschema_migration`` row commit in one transaction, so a killed migrator
  leaves the database at a migration boundary;
- **checksums**: the sha256, source and SQL of each applied migration are
  recorded; if an applied file is edited later, every run refuses before
  applying anything and shows the diff. Migrations applied earlier by plain
  Piccolo are adopted (their checksum recorded) on the next run;
- **review**: ``dry_run`` runs the pending migrations in a transaction that is
  rolled back, and returns the exact SQL they executed;
- **checks**: :func:`check_migrations` finds table classes that differ from
  the migrations and live databases that differ from what their applied
  migrations produce (a change made by hand);
- **baseline**: adopting a database that the original system created, after
  proving it matches what the migrations would create.

Progress goes to the ``orgschema.migrator`` logger; nothing here prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import difflib
import functools
import hashlib
import importlib.metadata
import io
import logging
import math
import re
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppConfig, Finder, MigrationModule
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from orgschema.catalog import SchemaSnapshot, differences, name_changes, read_snapshot
from orgschema.database import QuietPostgresEngine, connect_with
from orgschema.errors import (
    AppliedMigrationModified,
    ConfigurationError,
    InvalidInputError,
    MigrationError,
    MigrationFailed,
    MigrationLockTimeout,
    SchemaDriftError,
    UnknownAppliedMigration,
)
from orgschema.settings import Settings, validate_database_url

logger = logging.getLogger(__name__)

#: The advisory lock key ("orgschem" in ASCII): one migrator per database.
LOCK_KEY = 0x6F7267736368656D

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

_APPLICATION_NAME = "orgschema migrate"


###############################################################################
# Results


@dataclass(frozen=True)
class AppliedMigration:
    """One migration that :func:`migrate` ran (or, in a dry run, would run)."""

    app_name: str
    migration_id: str
    description: str
    seconds: float
    #: Every statement it executed, in order, each ending with ``;``.
    sql: str


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate` did."""

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
        return {
            "app": self.app_name,
            "id": self.migration_id,
            "description": self.description,
            "state": self.state,
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
            "checksum": self.checksum,
        }


@dataclass(frozen=True)
class StatusReport:
    """Every migration of every registered app, as :func:`migration_status` found them."""

    migrations: tuple[MigrationState, ...]

    @property
    def pending(self) -> tuple[MigrationState, ...]:
        return tuple(m for m in self.migrations if m.state == "pending")

    @property
    def problems(self) -> tuple[MigrationState, ...]:
        return tuple(m for m in self.migrations if m.checksum in ("edited", "missing"))


@dataclass(frozen=True)
class CheckReport:
    """What :func:`check_migrations` found; empty lists mean all is well."""

    #: Statements a new auto migration would hold, as ``app: statement``.
    unmigrated_changes: tuple[str, ...] = ()
    #: How the live database differs from what its applied migrations produce.
    drift: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.unmigrated_changes and not self.drift


###############################################################################
# Public functions


async def migrate(
    database_url: str | None = None,
    *,
    target: str | None = None,
    dry_run: bool = False,
    baseline: bool = False,
    adopt_names: bool = False,
    lock_timeout: float | None = None,
    settings: Settings | None = None,
) -> MigrationReport:
    """Apply every pending migration of every registered app, one migrator at a time.

    :param database_url: The database to migrate; default ``MIGRATION_DATABASE_URL``,
        else the engine of the active Piccolo configuration (``DATABASE_URL``).
        It must be a session-level connection (not a transaction-mode pooler).
    :param target: Stop after this migration id (``ID`` or ``app:ID``).
    :param dry_run: Run the pending migrations in one transaction, roll it
        back, and report the SQL they executed. Nothing is recorded.
    :param baseline: Adopt a database created without these migrations (by the
        original system): for each app, find the newest migration whose result
        matches the live tables exactly and record it and those before it as
        applied without running them; then apply the rest.
    :param adopt_names: With ``baseline``, accept constraints and indexes that
        differ from the migrations' only by name, and rename them.
    :param lock_timeout: Seconds to wait for another migrator (default
        ``ORGSCHEMA_LOCK_TIMEOUT``, 60).
    :raises MigrationLockTimeout: another migrator held the lock too long.
    :raises AppliedMigrationModified: an applied migration's file was edited.
    :raises UnknownAppliedMigration: the database lists a migration no registered app ships.
    :raises SchemaDriftError: ``baseline`` found the live schema differs.
    :raises MigrationFailed: a migration raised; it was rolled back, not recorded.
    :raises DatabaseUnavailable: the database cannot be reached.
    """
    settings = settings or Settings.from_env()
    timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
    started = time.perf_counter()
    async with _piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = _app_configs()
        shipped = _shipped_migrations(configs)
        pending_limit = _target_index(target, shipped)
        conn = await _connect(engine)
        try:
            waited = await _acquire_lock(conn, timeout)
            exist = await _ledgers_exist(conn)
            if not dry_run:
                await _create_ledgers(conn, exist)
            recorded = await _read_ledgers(conn, exist)
            if not dry_run:
                await _forget_rolled_back(conn, recorded)
            _verify(shipped, recorded, configs)
            adopted = [m for m in shipped if recorded.applied(m) and not recorded.checksum(m)]
            if adopted and not dry_run:
                await _record(conn, adopted, how="adopted")
            baselined: list[ShippedMigration] = []
            renamed: list[str] = []
            if baseline:
                baselined, renamed = await _baseline(
                    engine,
                    conn,
                    configs,
                    shipped,
                    recorded,
                    adopt_names=adopt_names,
                    dry_run=dry_run,
                )
            done = {m.key for m in baselined} | {m.key for m in shipped if recorded.applied(m)}
            pending = [m for m in shipped[:pending_limit] if m.key not in done]
            if dry_run:
                history = [m for m in shipped if m.key in done]
                applied = await _preview(engine, history, pending)
            else:
                applied = await _apply(engine, pending)
        finally:
            await conn.close()  # also releases the session-level lock
    return MigrationReport(
        applied=tuple(applied),
        adopted=tuple(m.key for m in adopted),
        baselined=tuple(m.key for m in baselined),
        renamed=tuple(renamed),
        dry_run=dry_run,
        lock_wait_seconds=waited,
        seconds=time.perf_counter() - started,
    )


async def migration_status(
    database_url: str | None = None, *, settings: Settings | None = None
) -> StatusReport:
    """List every migration per app: applied or pending, when, and whether its file changed.

    Read-only: takes no lock and creates nothing.

    :param database_url: As for :func:`migrate`.
    """
    settings = settings or Settings.from_env()
    async with _piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = _app_configs()
        shipped = _shipped_migrations(configs)
        conn = await _connect(engine)
        try:
            recorded = await _read_ledgers(conn)
        finally:
            await conn.close()
    states = []
    for m in shipped:
        if not recorded.applied(m):
            states.append(
                MigrationState(m.app_name, m.migration_id, m.description, "pending", None, "-")
            )
            continue
        checksum = recorded.checksum(m)
        verdict = "unrecorded" if checksum is None else "ok" if checksum == m.sha256 else "edited"
        states.append(
            MigrationState(
                m.app_name,
                m.migration_id,
                m.description,
                "applied",
                recorded.ran_on(m.app_name, m.migration_id),
                verdict,
            )
        )
    for app_name, migration_id in recorded.unknown(shipped, configs):
        states.append(
            MigrationState(
                app_name,
                migration_id,
                "",
                "applied",
                recorded.ran_on(app_name, migration_id),
                "missing",
            )
        )
    return StatusReport(tuple(states))


async def check_migrations(
    database_url: str | None = None, *, settings: Settings | None = None
) -> CheckReport:
    """Check that table classes, migrations and the live database agree.

    (a) For every registered app, the statements a new ``--auto`` migration
    would contain (there must be none). (b) The live database compared, from
    the catalog, with what its applied migrations produce when replayed in a
    scratch schema that is rolled back: a column, default, constraint or index
    added, changed or dropped by hand shows up here. Only the registered apps'
    tables are compared; other tables in the database are ignored.

    :param database_url: As for :func:`migrate`.
    """
    from piccolo.apps.migrations.commands.new import AutoMigrationManager

    settings = settings or Settings.from_env()
    async with _piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = _app_configs()
        shipped = _shipped_migrations(configs)
        unmigrated: list[str] = []
        for app_config in configs:
            with _piccolo_output():
                alter = await AutoMigrationManager(auto_input="n").get_alter_statements(
                    app_config=app_config
                )
            unmigrated += [
                f"{app_config.app_name}: {statement}"
                for group in alter
                for statement in group.statements
            ]
        conn = await _connect(engine)
        try:
            recorded = await _read_ledgers(conn)
            tables = _registered_tables(configs)
            live = await read_snapshot(conn, tables)
            applied = [m for m in shipped if recorded.applied(m)]
            (expected,) = await _replay(engine, applied, [tables], every_step=False)
        finally:
            await conn.close()
    return CheckReport(
        unmigrated_changes=tuple(unmigrated), drift=tuple(differences(live, expected[0]))
    )


###############################################################################
# Shipped migrations and the ledgers


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
        return f"{self.app_name}:{self.migration_id}"


def _app_configs() -> list[AppConfig]:
    manager = BaseMigrationManager()
    return [manager.get_app_config(name) for name in manager.get_sorted_app_names()]


def _registered_tables(configs: Sequence[AppConfig]) -> list[str]:
    return sorted({table._meta.tablename for config in configs for table in config.table_classes})


def _shipped_migrations(configs: Sequence[AppConfig]) -> list[ShippedMigration]:
    """Every registered app's migrations, in the order Piccolo's ``forwards all`` runs them."""
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


def _target_index(target: str | None, shipped: Sequence[ShippedMigration]) -> int:
    if target is None:
        return len(shipped)
    for index, migration in enumerate(shipped):
        if target in (migration.migration_id, migration.key):
            return index + 1
    raise InvalidInputError(
        f"no registered app ships a migration {target!r}; see `orgschema status` for the ids",
        field="target",
    )


@dataclass
class _Ledgers:
    """Piccolo's ``migration`` rows and orgschema's checksum rows of one database."""

    ran: dict[tuple[str, str], datetime | None]
    checksums: dict[tuple[str, str], str]
    sources: dict[tuple[str, str], str]

    def applied(self, m: ShippedMigration) -> bool:
        return (m.app_name, m.migration_id) in self.ran

    def checksum(self, m: ShippedMigration) -> str | None:
        return self.checksums.get((m.app_name, m.migration_id))

    def ran_on(self, app_name: str, migration_id: str) -> datetime | None:
        return self.ran.get((app_name, migration_id))

    def unknown(
        self, shipped: Iterable[ShippedMigration], configs: Iterable[AppConfig]
    ) -> list[tuple[str, str]]:
        """Applied migrations of registered apps that no file ships any more."""
        known = {(m.app_name, m.migration_id) for m in shipped}
        apps = {config.app_name for config in configs}
        return sorted(key for key in self.ran if key[0] in apps and key not in known)


async def _ledgers_exist(conn: asyncpg.Connection) -> tuple[bool, bool]:
    row = await conn.fetchrow(
        f"SELECT to_regclass('migration') IS NOT NULL, to_regclass('{LEDGER_TABLE}') IS NOT NULL"
    )
    return bool(row[0]), bool(row[1])


async def _read_ledgers(
    conn: asyncpg.Connection, exist: tuple[bool, bool] | None = None
) -> _Ledgers:
    piccolo, ours = exist or await _ledgers_exist(conn)
    ledgers = _Ledgers(ran={}, checksums={}, sources={})
    if piccolo:
        for row in await conn.fetch("SELECT app_name, name, ran_on FROM migration ORDER BY id"):
            ledgers.ran[(row["app_name"], row["name"])] = row["ran_on"]
    if ours:
        for row in await conn.fetch(
            f"SELECT app_name, migration_id, sha256, source FROM {LEDGER_TABLE}"
        ):
            key = (row["app_name"], row["migration_id"])
            ledgers.checksums[key] = row["sha256"]
            ledgers.sources[key] = row["source"]
    return ledgers


async def _create_ledgers(conn: asyncpg.Connection, exist: tuple[bool, bool]) -> None:
    # Created under the advisory lock: concurrent CREATE TABLE IF NOT EXISTS
    # of the same table can fail on the catalog's unique index.
    piccolo, ours = exist
    if not piccolo:
        for ddl in Migration.create_table(if_not_exists=True).ddl:
            await conn.execute(ddl)
    if not ours:
        await conn.execute(_LEDGER_DDL)


async def _forget_rolled_back(conn: asyncpg.Connection, recorded: _Ledgers) -> None:
    """Drop checksum rows of migrations that ``piccolo migrations backwards`` undid.

    Piccolo's ledger says what is applied; a checksum row without its Piccolo
    row would make re-applying that migration collide with itself.
    """
    stale = [key for key in recorded.checksums if key not in recorded.ran]
    if not stale:
        return
    await conn.execute(
        f"DELETE FROM {LEDGER_TABLE} WHERE (app_name, migration_id) IN "
        "(SELECT * FROM unnest($1::text[], $2::text[]))",
        [app for app, _ in stale],
        [migration_id for _, migration_id in stale],
    )
    for key in stale:
        del recorded.checksums[key]
        del recorded.sources[key]
    logger.info("forgot the checksums of %d migration(s) rolled back by Piccolo", len(stale))


def _verify(
    shipped: Sequence[ShippedMigration], recorded: _Ledgers, configs: Sequence[AppConfig]
) -> None:
    """Refuse, before anything runs, when an applied migration is edited or unknown."""
    unknown = recorded.unknown(shipped, configs)
    if unknown:
        listed = ", ".join(f"{app}:{mid}" for app, mid in unknown)
        raise UnknownAppliedMigration(
            f"the database records migrations that no registered app ships: {listed}. "
            "Install the package version that applied them (or register its app); "
            "never delete an applied migration"
        )
    edited = [
        m for m in shipped if recorded.applied(m) and recorded.checksum(m) not in (None, m.sha256)
    ]
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


async def _record(
    conn: asyncpg.Connection,
    migrations: Sequence[ShippedMigration],
    *,
    how: str,
    sql: str | None = None,
    seconds: float | None = None,
    piccolo_row: bool = False,
) -> None:
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


###############################################################################
# Running migrations


class _Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


async def _apply(
    engine: PostgresEngine, pending: Sequence[ShippedMigration]
) -> list[AppliedMigration]:
    if not pending:
        logger.info("no migrations pending")
        return []
    logger.info("%d migration(s) pending", len(pending))
    applied: list[AppliedMigration] = []
    for index, m in enumerate(pending):
        try:
            manager = await _manager(m)
            outside = manager is not None and not manager.wrap_in_transaction
            if outside:
                # Its author opted out of the transaction (CREATE INDEX
                # CONCURRENTLY and the like): run as Piccolo would, then record.
                logger.warning(
                    "%s runs outside a transaction: it is not atomic with its ledger rows", m.key
                )
                result = await _run_one(m, manager)
            async with engine.transaction() as transaction:
                if index < len(pending) - 1:
                    # The last commit flushes the WAL up to itself, and with it
                    # every earlier one, so waiting for each flush buys nothing:
                    # a server crash mid-run can only lose a suffix of whole
                    # migrations (each still atomic with its rows).
                    await transaction.connection.execute("SET LOCAL synchronous_commit = off")
                if not outside:
                    result = await _run_one(m, manager)
                await _record(
                    transaction.connection,
                    [m],
                    how="applied",
                    sql=result.sql,
                    seconds=result.seconds,
                    piccolo_row=True,
                )
        except MigrationFailed:
            raise
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise MigrationFailed(
                f"recording migration {m.key} failed, so it was rolled back: "
                f"{type(exc).__name__}: {exc}. Run `orgschema status` and try again"
            ) from exc
        applied.append(result)
    return applied


async def _preview(
    engine: PostgresEngine,
    history: Sequence[ShippedMigration],
    pending: Sequence[ShippedMigration],
) -> list[AppliedMigration]:
    """The SQL ``pending`` would run, found without touching the live tables.

    The applied history and then the pending migrations are replayed in a
    scratch schema inside a transaction that is rolled back; the pending
    ones' statements are recorded on the way.
    """
    if not pending:
        logger.info("no migrations pending")
        return []
    logger.info("%d migration(s) pending (dry run in a scratch schema)", len(pending))
    previews: list[AppliedMigration] = []
    async with _scratch_schema(engine):
        for m in history:
            await _replay_one(m)
        for m in pending:
            previews.append(await _run_one(m, await _manager(m)))
    return previews


async def _manager(m: ShippedMigration) -> MigrationManager | None:
    try:
        with _piccolo_output():
            manager = await m.module.forwards()
    except Exception as exc:
        raise MigrationFailed(
            f"migration {m.key} ({m.description}) could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    return manager if isinstance(manager, MigrationManager) else None


async def _run_one(m: ShippedMigration, manager: MigrationManager | None) -> AppliedMigration:
    """Run one migration (in the current transaction, if any), capturing its SQL."""
    statements: list[str] = []
    logger.info("applying %s (%s)", m.key, m.description)
    started = time.perf_counter()
    token = _CAPTURED_SQL.set(statements)
    try:
        if manager is not None:
            with _piccolo_output():
                await manager.run()
    except Exception as exc:
        raise MigrationFailed(
            f"migration {m.key} ({m.description}) failed and was rolled back; nothing was "
            f"recorded: {type(exc).__name__}: {exc}. Fix the cause and run again"
        ) from exc
    finally:
        _CAPTURED_SQL.reset(token)
    seconds = time.perf_counter() - started
    logger.info("applied %s in %.3f s", m.key, seconds)
    sql = "\n".join(s.strip().rstrip(";") + ";" for s in statements) or "-- (no statements)"
    return AppliedMigration(m.app_name, m.migration_id, m.description, seconds, sql)


async def _replay_one(m: ShippedMigration) -> None:
    manager = await _manager(m)
    if manager is not None:
        with _piccolo_output():
            await manager.run()


@contextlib.asynccontextmanager
async def _scratch_schema(engine: PostgresEngine) -> AsyncIterator[str]:
    """A transaction whose ``search_path`` is a new, empty schema; always rolled back.

    Migrations run inside it create their tables there, never in the live
    schema. Needs the CREATE privilege on the database.
    """
    schema = f"orgschema_replay_{uuid.uuid4().hex[:12]}"
    token = _REPLAYING.set(True)
    try:
        with contextlib.suppress(_Rollback):
            async with engine.transaction() as transaction:
                conn = transaction.connection
                try:
                    await conn.execute(f'CREATE SCHEMA "{schema}"')
                except asyncpg.InsufficientPrivilegeError as exc:
                    raise MigrationError(
                        "replaying the migrations needs a scratch schema, and this role may "
                        f"not create one ({exc}): grant CREATE on the database, or use "
                        "MIGRATION_DATABASE_URL with the migrating role"
                    ) from exc
                await conn.execute(f'SET LOCAL search_path TO "{schema}"')
                yield schema
                raise _Rollback
    finally:
        _REPLAYING.reset(token)


async def _replay(
    engine: PostgresEngine,
    migrations: Sequence[ShippedMigration],
    table_sets: Sequence[Sequence[str]],
    *,
    every_step: bool,
) -> list[list[SchemaSnapshot]]:
    """What ``migrations`` produce, read from the catalog of a scratch schema.

    Reads snapshots of each table set after every migration, or only at the
    end, and rolls everything back. Returns one list per table set.
    """
    snapshots: list[list[SchemaSnapshot]] = [[] for _ in table_sets]

    async def snap(schema: str) -> None:
        conn = engine.current_transaction.get().connection  # type: ignore[union-attr]
        for position, tables in enumerate(table_sets):
            snapshots[position].append(await read_snapshot(conn, tables, schema))

    async with _scratch_schema(engine) as schema:
        for index, m in enumerate(migrations):
            await _replay_one(m)
            if every_step or index == len(migrations) - 1:
                await snap(schema)
        if not migrations:
            await snap(schema)
    return snapshots


async def _baseline(
    engine: PostgresEngine,
    conn: asyncpg.Connection,
    configs: Sequence[AppConfig],
    shipped: Sequence[ShippedMigration],
    recorded: _Ledgers,
    *,
    adopt_names: bool,
    dry_run: bool,
) -> tuple[list[ShippedMigration], list[str]]:
    """Record, per app, the migrations whose result the live tables already match."""
    applied = [m for m in shipped if recorded.applied(m)]
    if applied:
        raise InvalidInputError(
            f"--baseline is for a database with no migration history, and this one has "
            f"{len(applied)} applied migration(s): run `orgschema migrate` without --baseline",
            field="baseline",
        )
    app_tables = [[t._meta.tablename for t in config.table_classes] for config in configs]
    per_app = await _replay(engine, shipped, app_tables, every_step=True)
    baselined: list[ShippedMigration] = []
    renames: list[str] = []
    problems: list[str] = []
    for config, tables, snapshots in zip(configs, app_tables, per_app, strict=True):
        live = await read_snapshot(conn, tables)
        if not live.tables:
            continue  # none of its tables exist: its migrations simply run
        positions = [i for i, m in enumerate(shipped) if m.app_name == config.app_name]
        match = _newest_match(live, [snapshots[i] for i in positions])
        if match is None:
            closest = min(
                (snapshots[i] for i in positions), key=lambda s: len(differences(live, s))
            )
            problems += [f"{config.app_name}: {line}" for line in differences(live, closest)]
            continue
        count, app_renames = match
        if app_renames and not adopt_names:
            problems += [
                f"{config.app_name}: differs only by name; --adopt-names would run: {sql}"
                for sql in app_renames
            ]
            continue
        baselined += [shipped[i] for i in positions[:count]]
        renames += app_renames
    if problems:
        raise SchemaDriftError(
            "the live schema does not match what the migrations create, so nothing was "
            "recorded:\n  " + "\n  ".join(problems)
        )
    if not dry_run and baselined:
        async with conn.transaction():
            for sql in renames:
                await conn.execute(sql)
            await _record(conn, baselined, how="baseline", piccolo_row=True)
    for m in baselined:
        logger.info("baselined %s (%s)", m.key, m.description)
    return baselined, renames


def _newest_match(
    live: SchemaSnapshot, snapshots: Sequence[SchemaSnapshot]
) -> tuple[int, list[str]] | None:
    """How many of an app's migrations the live tables match (newest first), with renames."""
    for count in range(len(snapshots), 0, -1):
        expected = snapshots[count - 1]
        if not differences(live, expected):
            return count, []
        if live.tables == expected.tables and live.columns == expected.columns:
            renames = name_changes(live, expected)
            if renames is not None:
                return count, renames
    return None


###############################################################################
# Engine, connection and lock


#: Run engines by connection settings: constructing one costs a thread and a
#: loop (Piccolo's synchronous start-up hooks), so a service that migrates
#: repeatedly reuses them.
_ENGINES: dict[str, PostgresEngine] = {}


class _RunEngine(QuietPostgresEngine):
    """The engine of one migrator run, with the run's connection as its pool.

    Every migration's transaction runs on the same connection that holds the
    advisory lock, which spares a connection per migration.
    """

    # Every statement a migration sends passes through one of these two, so
    # recording here captures exactly the SQL it ran, parameters inlined.
    async def run_ddl(self, ddl: str, in_pool: bool = True) -> Any:
        sink = _CAPTURED_SQL.get()
        if sink is not None:
            sink.append(ddl)
        transaction = self.current_transaction.get()
        if _REPLAYING.get():
            # Replays run in one transaction on empty scratch tables, where
            # building an index concurrently is neither possible nor useful.
            ddl = _CONCURRENTLY.sub(r"\1 INDEX", ddl)
        if transaction is not None and _DDL.match(ddl):
            # Piccolo sends DDL through the extended protocol (a prepare and
            # an execute per statement); DDL returns no rows, so the simple
            # protocol's single round trip gives the same result sooner.
            await transaction.connection.execute(ddl)
            return []
        return await super().run_ddl(ddl, in_pool=in_pool)

    async def run_querystring(self, querystring: Any, in_pool: bool = True) -> Any:
        sink = _CAPTURED_SQL.get()
        if sink is not None:
            sink.append(str(querystring))
        return await super().run_querystring(querystring, in_pool=in_pool)


_DDL = re.compile(r"\s*(CREATE|ALTER|DROP|COMMENT)\s", re.IGNORECASE)

_CONCURRENTLY = re.compile(r"\b(CREATE(?:\s+UNIQUE)?|DROP)\s+INDEX\s+CONCURRENTLY\b", re.IGNORECASE)

#: True while migrations are replayed in a scratch schema.
_REPLAYING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "orgschema_replaying", default=False
)

#: Where the run engine records the statements of the migration being run.
_CAPTURED_SQL: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "orgschema_captured_sql", default=None
)


class _OneConnectionPool:
    """What Piccolo needs of a pool, lending one existing connection and never closing it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def acquire(self) -> _Lend:
        return _Lend(self._conn)

    async def release(self, conn: asyncpg.Connection) -> None:
        return None

    async def close(self) -> None:
        return None


class _Lend:
    """``await pool.acquire()`` and ``async with pool.acquire()`` both give the connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def __await__(self) -> Any:
        async def lend() -> asyncpg.Connection:
            return self._conn

        return lend().__await__()

    async def __aenter__(self) -> asyncpg.Connection:
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        return None


@contextlib.asynccontextmanager
async def _piccolo_engine(database_url: str | None) -> AsyncIterator[PostgresEngine]:
    """A run-scoped engine that Piccolo's migrations will find, on ``database_url`` if given.

    Piccolo's migration managers look their engine up in the ``piccolo_conf``
    module themselves, so the run's engine is put there for its duration (and
    the configured one restored after). Without a URL it uses the configured
    engine's connection settings.
    """
    try:
        conf = Finder().get_piccolo_conf_module()
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"no Piccolo configuration ({exc}): create piccolo_conf.py with DB and "
            "APP_REGISTRY (see README), or set PICCOLO_CONF"
        ) from exc
    if conf is None:
        raise ConfigurationError(
            "no Piccolo configuration: create piccolo_conf.py or set PICCOLO_CONF"
        )
    async with _run_lock(), _run_engine(conf, database_url) as engine:
        yield engine


def _run_lock() -> asyncio.Lock:
    """One run at a time per event loop: runs swap ``piccolo_conf.DB`` and lend connections."""
    loop = asyncio.get_running_loop()
    lock = _RUN_LOCKS.get(loop)
    if lock is None:
        lock = _RUN_LOCKS[loop] = asyncio.Lock()
    return lock


_RUN_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def _run_engine(conf: Any, database_url: str | None) -> AsyncIterator[PostgresEngine]:
    current: Engine | None = getattr(conf, "DB", None)
    if database_url is None and not isinstance(current, PostgresEngine):
        raise ConfigurationError(
            "orgschema migrates PostgreSQL only: piccolo_conf.DB must be a PostgresEngine"
        )
    if database_url is not None:
        validate_database_url(database_url)
    config = {"dsn": database_url} if database_url else dict(current.config)  # type: ignore[union-attr]
    key = repr(sorted(config.items()))
    engine = _ENGINES.get(key) or _ENGINES.setdefault(key, _RunEngine(config=config))
    conf.DB = engine  # type: ignore[attr-defined]
    try:
        yield engine
    finally:
        conf.DB = current  # type: ignore[attr-defined]
        engine.pool = None


async def _connect(engine: PostgresEngine) -> asyncpg.Connection:
    """Open the run's connection and lend it to ``engine`` as its pool."""
    settings = dict(engine.config.get("server_settings") or {})
    settings.setdefault("application_name", _APPLICATION_NAME)
    conn = await connect_with(engine.config, server_settings=settings)
    engine.pool = _OneConnectionPool(conn)  # type: ignore[assignment]
    return conn


async def _acquire_lock(conn: asyncpg.Connection, wait_seconds: float) -> float:
    """Take the migration lock, waiting up to ``wait_seconds`` seconds; returns the wait."""
    started = time.perf_counter()
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        return 0.0
    holder = await _lock_holder(conn)
    logger.info("waiting up to %.0f s for the migration lock, held by %s", wait_seconds, holder)
    if wait_seconds <= 0:
        raise MigrationLockTimeout(
            f"the migration lock is held by {holder}; try again when it finishes"
        )
    # Block server-side, so waiters are queued fairly and wake the moment the
    # holder's session ends (including when it is killed).
    # lock_timeout = 0 would mean "wait forever": never round down to it.
    await conn.execute(f"SET lock_timeout = {max(1, math.ceil(wait_seconds * 1000))}")
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    except asyncpg.LockNotAvailableError as exc:
        raise MigrationLockTimeout(
            f"gave up after {wait_seconds:.0f} s waiting for the migration lock, held by "
            f"{await _lock_holder(conn)}; if that migrator is stuck, stop it "
            "(its lock goes with its connection) and run again"
        ) from exc
    finally:
        await conn.execute("RESET lock_timeout")
    waited = time.perf_counter() - started
    logger.info("got the migration lock after %.1f s", waited)
    return waited


async def _lock_holder(conn: asyncpg.Connection) -> str:
    row = await conn.fetchrow(
        """
        SELECT a.pid, a.application_name, a.backend_start
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ($1::bigint >> 32)::oid
          AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
        """,
        LOCK_KEY,
    )
    if row is None:
        return "a session that has just released it"
    return (
        f"pid {row['pid']} ({row['application_name'] or 'no application_name'}, "
        f"connected since {row['backend_start']:%Y-%m-%d %H:%M:%S %Z})"
    )


@contextlib.contextmanager
def _piccolo_output() -> Iterator[None]:
    """Send what Piccolo prints to our logger at DEBUG, line by line."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                logger.debug("piccolo: %s", line.strip())
