"""What the migrations produce, found by replaying them in a scratch schema that is rolled back.

``sql``/``--dry-run`` record the pending migrations' statements this way,
``check`` compares the live catalog with the replayed one, and ``--baseline``
finds, per app, the newest migration whose result the live tables match.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from orgschema.catalog import SchemaSnapshot, differences, name_changes, read_snapshot
from orgschema.errors import InvalidInputError, MigrationError, SchemaDriftError
from orgschema.migrator import _ledger
from orgschema.migrator._plan import Plan
from orgschema.migrator._runner import replay_one, run_one, step
from orgschema.migrator._scripts import ShippedMigration, app_tables
from orgschema.migrator._session import current_connection, replaying
from orgschema.migrator.reports import AppliedMigration

logger = logging.getLogger(__name__)


class _Rollback(Exception):
    """Raised inside a transaction to roll it back on purpose."""


@contextlib.asynccontextmanager
async def scratch_schema(engine: PostgresEngine) -> AsyncIterator[str]:
    """A transaction whose ``search_path`` is a new, empty schema; always rolled back.

    Migrations run inside it create their tables there, never in the live
    schema. Needs the CREATE privilege on the database.
    """
    schema = f"orgschema_replay_{uuid.uuid4().hex[:12]}"
    with replaying(), contextlib.suppress(_Rollback):
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


async def replay(
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
        conn = current_connection(engine)
        for position, tables in enumerate(table_sets):
            snapshots[position].append(await read_snapshot(conn, tables, schema))

    async with scratch_schema(engine) as schema:
        for index, m in enumerate(migrations):
            await replay_one(engine, m)
            if every_step or index == len(migrations) - 1:
                await snap(schema)
        if not migrations:
            await snap(schema)
    return snapshots


async def preview(
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
    async with scratch_schema(engine):
        for m in history:
            await replay_one(engine, m)
        for m in pending:
            started = time.perf_counter()
            sql = await run_one(engine, m, await step(m))
            seconds = time.perf_counter() - started
            previews.append(
                AppliedMigration(m.app_name, m.migration_id, m.description, seconds, sql)
            )
    return previews


async def baseline(
    engine: PostgresEngine,
    conn: asyncpg.Connection,
    plan: Plan,
    *,
    adopt_names: bool,
    dry_run: bool,
) -> tuple[tuple[ShippedMigration, ...], list[str]]:
    """Record, per app, the migrations whose result the live tables already match.

    :returns: The migrations recorded (or, in a dry run, to record), and the renames run.
    :raises InvalidInputError: the database has migration history already.
    :raises SchemaDriftError: an app's live tables match none of its migrations.
    """
    configs, shipped, applied = plan.configs, plan.shipped, plan.history
    if applied:
        raise InvalidInputError(
            f"--baseline is for a database with no migration history, and this one has "
            f"{len(applied)} applied migration(s): run `orgschema migrate` without --baseline",
            field="baseline",
        )
    per_app_tables = [app_tables(config) for config in configs]
    per_app = await replay(engine, shipped, per_app_tables, every_step=True)
    baselined: list[ShippedMigration] = []
    renames: list[str] = []
    problems: list[str] = []
    for config, tables, snapshots in zip(configs, per_app_tables, per_app, strict=True):
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
            await conn.execute(_ledger.rows_sql(baselined, how="baseline", piccolo_row=True))
    for m in baselined:
        logger.info("baselined %s (%s)", m.key, m.description)
    return tuple(baselined), renames


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
