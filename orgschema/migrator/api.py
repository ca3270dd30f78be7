"""The migrator's verbs: :func:`migrate`, :func:`migration_status` and :func:`check_migrations`.

Each builds the run's :class:`~orgschema.migrator._plan.Plan` from what ships
and what the database remembers, then executes, previews or reports it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import asyncpg

from orgschema.catalog import differences, read_snapshot
from orgschema.errors import BaselineRequired, MigrationError
from orgschema.migrator import _ledger, _lock, _plan, _replay, _runner, _scripts, _session
from orgschema.migrator.reports import (
    AppliedMigration,
    CheckReport,
    MigrationReport,
    MigrationState,
    StatusReport,
)
from orgschema.settings import Settings

if TYPE_CHECKING:
    from piccolo.conf.apps import AppConfig
    from piccolo.engine.postgres import PostgresEngine


async def migrate(
    database_url: str | None = None,
    *,
    target: str | None = None,
    dry_run: bool = False,
    baseline: bool = False,
    adopt_names: bool = False,
    lock_timeout: float | None = None,
    ddl_lock_timeout: float | None = None,
    ddl_retries: int | None = None,
    statement_timeout: float | None = None,
    settings: Settings | None = None,
    app_configs: Sequence[AppConfig] | None = None,
) -> MigrationReport:
    """Apply every pending migration of every registered app, one migrator at a time.

    :param database_url: The database to migrate; default ``MIGRATION_DATABASE_URL``,
        else the engine of the active Piccolo configuration (``DATABASE_URL``).
        It must be a direct or session-mode connection, on the primary.
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
    :param ddl_lock_timeout: Seconds each migration statement may wait for a
        table lock before its migration is rolled back and retried (default
        ``ORGSCHEMA_DDL_LOCK_TIMEOUT``, 5; 0 waits without limit).
    :param ddl_retries: How many times such a migration is retried, with
        backoff and jitter (default ``ORGSCHEMA_DDL_RETRIES``, 4).
    :param statement_timeout: Seconds any migration statement may run
        (default ``ORGSCHEMA_STATEMENT_TIMEOUT``; unset leaves the server's).
    :param settings: Where the defaults come from; read from the environment when ``None``.
    :param app_configs: The apps to migrate (with their migration dependencies)
        instead of those of the active Piccolo registry.
    :raises ConfigurationError: a timeout or retry count is out of range.
    :raises PoolerRefused: the connection goes through a transaction-mode pooler.
    :raises ReadOnlyRefused: the database is a read-only standby.
    :raises MigrationLockTimeout: another migrator held the lock too long.
    :raises AppliedMigrationModified: an applied migration's file was edited.
    :raises UnknownAppliedMigration: the database lists a migration no registered app ships.
    :raises BaselineRequired: tables exist without migration history (use ``baseline``).
    :raises SchemaDriftError: ``baseline`` found the live schema differs.
    :raises MigrationBlocked: a migration timed out on a table lock on every attempt.
    :raises MigrationFailed: a migration raised; it was rolled back, not recorded.
    :raises MigrationConnectionLost: the connection was lost mid-run.
    :raises DatabaseUnavailable: the database cannot be reached.
    :returns: What was applied, adopted and baselined.
    """
    settings = _with_overrides(
        settings or Settings.from_env(),
        lock_timeout=lock_timeout,
        ddl_lock_timeout=ddl_lock_timeout,
        ddl_retries=ddl_retries,
        statement_timeout=statement_timeout,
    )
    started = time.perf_counter()
    async with _session.piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = _scripts.app_configs(app_configs)
        shipped = _scripts.shipped_migrations(configs)
        limit = _scripts.target_index(target, shipped)
        run = await _connect(engine, settings, lock=True, write=True)
        conn, locked = run.conn, False
        doing = "waiting for the migration lock"
        try:
            waited = await _lock.acquire(conn, settings.lock_timeout, held=run.locked)
            locked = True
            doing = "reading the ledgers"
            plan = await _plan.build(conn, configs, shipped, limit)
            await _ledger.verify(conn, plan.unknown, plan.edited, plan.ledgers)
            if plan.untracked and not baseline:
                raise _baseline_required(plan)
            doing = "recording what was applied before"
            prelude = "" if dry_run else await _bookkeep(conn, plan, baseline=baseline)
            renamed: list[str] = []
            if baseline:
                doing = "baselining"
                baselined, renamed = await _replay.baseline(
                    engine, conn, plan, adopt_names=adopt_names, dry_run=dry_run
                )
                plan = plan.with_baseline(baselined)
            applied: list[AppliedMigration]
            doing = "applying the migrations"
            if dry_run:
                applied = await _replay.preview(engine, plan.history, plan.pending)
            else:
                applied = await _runner.apply(engine, run, plan.pending, settings, prelude=prelude)
        except _session.DRIVER_ERRORS as exc:
            raise _database_error(exc, doing, conn, wrote=locked and not dry_run) from exc
        finally:
            await _session.close(run, locked=locked)
    return MigrationReport(
        applied=tuple(applied),
        adopted=tuple(m.key for m in plan.adopt),
        baselined=tuple(m.key for m in plan.baselined),
        renamed=tuple(renamed),
        dry_run=dry_run,
        lock_wait_seconds=waited,
        seconds=time.perf_counter() - started,
    )


async def migration_status(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    app_configs: Sequence[AppConfig] | None = None,
) -> StatusReport:
    """List every migration per app: applied or pending, when, and whether its file changed.

    Read-only: takes no lock and creates nothing, so it also works on a standby.

    :param database_url: As for :func:`migrate`.
    :param settings: As for :func:`migrate`.
    :param app_configs: As for :func:`migrate`.
    :raises DatabaseUnavailable: the database cannot be reached.
    :returns: One state per shipped (or recorded but unknown) migration, and
        the apps whose tables exist without history.
    """
    settings = settings or Settings.from_env()
    async with _session.piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = _scripts.app_configs(app_configs)
        shipped = _scripts.shipped_migrations(configs)
        run = await _connect(engine, settings, lock=False, write=False)
        try:
            plan = await _plan.build(run.conn, configs, shipped, len(shipped))
        except _session.DRIVER_ERRORS as exc:
            raise _database_error(exc, "reading the ledgers", run.conn) from exc
        finally:
            await _session.close(run, locked=False)
    recorded = plan.ledgers
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
    for app_name, migration_id in plan.unknown:
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
    return StatusReport(tuple(states), untracked=plan.untracked)


async def check_migrations(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    app_configs: Sequence[AppConfig] | None = None,
) -> CheckReport:
    """Check that table classes, migrations and the live database agree.

    (a) For every registered app, the statements a new ``--auto`` migration
    would contain (there must be none). (b) The live database compared, from
    the catalog, with what its applied migrations produce when replayed in a
    scratch schema that is rolled back: a column, default, constraint or index
    added, changed or dropped by hand shows up here. Only the registered apps'
    tables are compared; other tables in the database are ignored. (c) The
    ledger: an applied migration whose file was edited, or that no registered
    app ships any more.

    :param database_url: As for :func:`migrate`.
    :param settings: As for :func:`migrate`.
    :param app_configs: As for :func:`migrate`.
    :raises ReadOnlyRefused: the database is a read-only standby (replays need writes).
    :raises DatabaseUnavailable: the database cannot be reached.
    :returns: What differs; :attr:`CheckReport.ok` when nothing does.
    """
    from piccolo.apps.migrations.commands.new import AutoMigrationManager

    settings = settings or Settings.from_env()
    async with _session.piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = _scripts.app_configs(app_configs)
        shipped = _scripts.shipped_migrations(configs)
        unmigrated: list[str] = []
        for app_config in configs:
            with _session.piccolo_output():
                alter = await AutoMigrationManager(auto_input="n").get_alter_statements(
                    app_config=app_config
                )
            unmigrated += [
                f"{app_config.app_name}: {statement}"
                for group in alter
                for statement in group.statements
            ]
        run = await _connect(engine, settings, lock=False, write=True)
        try:
            plan = await _plan.build(run.conn, configs, shipped, len(shipped))
            tables = _scripts.registered_tables(configs)
            live = await read_snapshot(run.conn, tables)
            (expected,) = await _replay.replay(engine, plan.history, [tables], every_step=False)
        except _session.DRIVER_ERRORS as exc:
            raise _database_error(exc, "replaying the migrations", run.conn) from exc
        finally:
            await _session.close(run, locked=False)
    return CheckReport(
        unmigrated_changes=tuple(unmigrated),
        drift=tuple(differences(live, expected[0])),
        unknown_applied=tuple(f"{app}:{mid}" for app, mid in plan.unknown),
        edited=tuple(m.key for m in plan.edited),
    )


async def _connect(
    engine: PostgresEngine, settings: Settings, *, lock: bool, write: bool
) -> _session.Run:
    try:
        return await _session.connect(engine, settings, lock=lock, write=write)
    except _session.DRIVER_ERRORS as exc:
        raise _database_error(exc, "checking the connection") from exc


async def _bookkeep(conn: asyncpg.Connection, plan: _plan.Plan, *, baseline: bool) -> str:
    """Bring the ledgers up to date with the plan; returns SQL for the first migration's transaction.

    Creates a missing ledger, forgets checksums of migrations Piccolo rolled
    back, records those plain Piccolo applied, in one round trip. A ledger
    that only needs creating is created in the first migration's transaction
    instead (the SQL returned), which spares a synchronous commit of its own.
    """
    create = _ledger.create_sql(plan.ledgers.exist)
    if plan.pending and not (plan.forget or plan.adopt or baseline):
        return create
    script = [
        create,
        _ledger.forget_sql(plan.forget),
        _ledger.rows_sql(plan.adopt, how="adopted"),
    ]
    if any(script):
        await conn.execute(";\n".join(sql for sql in script if sql))
    return ""


def _with_overrides(settings: Settings, **overrides: float | int | None) -> Settings:
    """``settings`` with the arguments given in code; validated like the environment's."""
    given = {name: value for name, value in overrides.items() if value is not None}
    return replace(settings, **given) if given else settings  # type: ignore[arg-type]


def _baseline_required(plan: _plan.Plan) -> BaselineRequired:
    listed = "; ".join(
        f"{u.app_name}: " + ", ".join(f'"{table}"' for table in u.tables) for u in plan.untracked
    )
    return BaselineRequired(
        "the database has tables of registered apps but no migration history for them, so it "
        f"was created some other way (the original Drizzle stack, say): {listed}. Nothing was "
        "applied. Adopt it with `orgschema migrate --baseline` (add --adopt-names when only "
        "constraint and index names differ; see docs/migrations.md)"
    )


def _database_error(
    exc: BaseException, doing: str, conn: asyncpg.Connection | None = None, *, wrote: bool = False
) -> MigrationError:
    """The error for what the database did to a run while ``doing``; ``wrote``: it may have written."""
    if _session.is_lost(exc, conn):
        after = (
            "Each migration commits together with its ledger rows, so none is half-applied: "
            "run `orgschema status` to see where it stands, and `orgschema migrate` again once "
            "the database is back"
            if wrote
            else "Nothing was applied by this run: run it again once the database is back"
        )
        return _session.lost(exc, doing, after)
    return MigrationError(
        f"the database refused the migrator while {doing}: {type(exc).__name__}: {exc}. "
        "Nothing of the migration in progress was applied; fix the cause and run again"
    )
