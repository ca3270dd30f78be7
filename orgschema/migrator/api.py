"""The migrator's verbs: :func:`migrate`, :func:`migration_status` and :func:`check_migrations`.

Each builds the run's :class:`~orgschema.migrator._plan.Plan` from what ships
and what the database remembers, then executes, previews or reports it.
"""

from __future__ import annotations

import time

from orgschema.catalog import differences, read_snapshot
from orgschema.migrator import _ledger, _lock, _plan, _replay, _runner, _scripts, _session
from orgschema.migrator.reports import (
    AppliedMigration,
    CheckReport,
    MigrationReport,
    MigrationState,
    StatusReport,
)
from orgschema.settings import Settings


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
    :param settings: Where the defaults come from; read from the environment when ``None``.
    :raises MigrationLockTimeout: another migrator held the lock too long.
    :raises AppliedMigrationModified: an applied migration's file was edited.
    :raises UnknownAppliedMigration: the database lists a migration no registered app ships.
    :raises SchemaDriftError: ``baseline`` found the live schema differs.
    :raises MigrationFailed: a migration raised; it was rolled back, not recorded.
    :raises DatabaseUnavailable: the database cannot be reached.
    :returns: What was applied, adopted and baselined.
    """
    settings = settings or Settings.from_env()
    timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
    started = time.perf_counter()
    async with _session.piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = tuple(_scripts.app_configs())
        shipped = tuple(_scripts.shipped_migrations(configs))
        limit = _scripts.target_index(target, shipped)
        conn = await _session.connect(engine)
        try:
            waited = await _lock.acquire(conn, timeout)
            exist = await _ledger.exist(conn)
            if not dry_run:
                await _ledger.create(conn, exist)
            plan = _plan.build(configs, shipped, await _ledger.read(conn, exist), limit)
            if not dry_run:
                await _ledger.forget(conn, plan.forget)
            _ledger.verify(plan.unknown, plan.edited, plan.ledgers)
            adopted = plan.adopt
            if adopted and not dry_run:
                await _ledger.record(conn, adopted, how="adopted")
            renamed: list[str] = []
            if baseline:
                baselined, renamed = await _replay.baseline(
                    engine, conn, plan, adopt_names=adopt_names, dry_run=dry_run
                )
                plan = plan.with_baseline(baselined)
            applied: list[AppliedMigration]
            if dry_run:
                applied = await _replay.preview(engine, plan.history, plan.pending)
            else:
                applied = await _runner.apply(engine, plan.pending)
        finally:
            await conn.close()  # also releases the session-level lock
    return MigrationReport(
        applied=tuple(applied),
        adopted=tuple(m.key for m in adopted),
        baselined=tuple(m.key for m in plan.baselined),
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
    :param settings: As for :func:`migrate`.
    :raises DatabaseUnavailable: the database cannot be reached.
    :returns: One state per shipped (or recorded but unknown) migration.
    """
    settings = settings or Settings.from_env()
    async with _session.piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = tuple(_scripts.app_configs())
        shipped = tuple(_scripts.shipped_migrations(configs))
        conn = await _session.connect(engine)
        try:
            plan = _plan.build(configs, shipped, await _ledger.read(conn), len(shipped))
        finally:
            await conn.close()
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
    :param settings: As for :func:`migrate`.
    :raises DatabaseUnavailable: the database cannot be reached.
    :returns: What differs; :attr:`CheckReport.ok` when nothing does.
    """
    from piccolo.apps.migrations.commands.new import AutoMigrationManager

    settings = settings or Settings.from_env()
    async with _session.piccolo_engine(database_url or settings.migration_database_url) as engine:
        configs = tuple(_scripts.app_configs())
        shipped = tuple(_scripts.shipped_migrations(configs))
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
        conn = await _session.connect(engine)
        try:
            plan = _plan.build(configs, shipped, await _ledger.read(conn), len(shipped))
            tables = _scripts.registered_tables(configs)
            live = await read_snapshot(conn, tables)
            (expected,) = await _replay.replay(engine, plan.history, [tables], every_step=False)
        finally:
            await conn.close()
    return CheckReport(
        unmigrated_changes=tuple(unmigrated), drift=tuple(differences(live, expected[0]))
    )
