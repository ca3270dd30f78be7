"""What a step does: run one migration, in its transaction, with its ledger rows."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine

from orgschema.errors import MigrationFailed
from orgschema.migrator import _ledger
from orgschema.migrator._scripts import ShippedMigration
from orgschema.migrator._session import capturing, piccolo_output
from orgschema.migrator.reports import AppliedMigration

logger = logging.getLogger(__name__)


async def apply(
    engine: PostgresEngine, pending: Sequence[ShippedMigration]
) -> list[AppliedMigration]:
    """Apply ``pending`` in order, each atomic with its ledger rows.

    :raises MigrationFailed: a migration raised (or its rows could not be
        written); it was rolled back, and those after it did not run.
    """
    if not pending:
        logger.info("no migrations pending")
        return []
    logger.info("%d migration(s) pending", len(pending))
    applied: list[AppliedMigration] = []
    for index, m in enumerate(pending):
        try:
            manager = await load_manager(m)
            outside = manager is not None and not manager.wrap_in_transaction
            if outside:
                # Its author opted out of the transaction (CREATE INDEX
                # CONCURRENTLY and the like): run as Piccolo would, then record.
                logger.warning(
                    "%s runs outside a transaction: it is not atomic with its ledger rows", m.key
                )
                result = await run_one(m, manager)
            async with engine.transaction() as transaction:
                if index < len(pending) - 1:
                    # The last commit flushes the WAL up to itself, and with it
                    # every earlier one, so waiting for each flush buys nothing:
                    # a server crash mid-run can only lose a suffix of whole
                    # migrations (each still atomic with its rows).
                    await transaction.connection.execute("SET LOCAL synchronous_commit = off")
                if not outside:
                    result = await run_one(m, manager)
                await _ledger.record(
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


async def load_manager(m: ShippedMigration) -> MigrationManager | None:
    """The manager ``m``'s ``forwards()`` returns (``None`` for a migration that returns none).

    :raises MigrationFailed: ``forwards()`` raised.
    """
    try:
        with piccolo_output():
            manager = await m.module.forwards()
    except Exception as exc:
        raise MigrationFailed(
            f"migration {m.key} ({m.description}) could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    return manager if isinstance(manager, MigrationManager) else None


async def run_one(m: ShippedMigration, manager: MigrationManager | None) -> AppliedMigration:
    """Run one migration (in the current transaction, if any), capturing its SQL.

    :raises MigrationFailed: it raised.
    """
    statements: list[str] = []
    logger.info("applying %s (%s)", m.key, m.description)
    started = time.perf_counter()
    try:
        with capturing(statements):
            if manager is not None:
                with piccolo_output():
                    await manager.run()
    except Exception as exc:
        raise MigrationFailed(
            f"migration {m.key} ({m.description}) failed and was rolled back; nothing was "
            f"recorded: {type(exc).__name__}: {exc}. Fix the cause and run again"
        ) from exc
    seconds = time.perf_counter() - started
    logger.info("applied %s in %.3f s", m.key, seconds)
    sql = "\n".join(s.strip().rstrip(";") + ";" for s in statements) or "-- (no statements)"
    return AppliedMigration(m.app_name, m.migration_id, m.description, seconds, sql)


async def replay_one(m: ShippedMigration) -> None:
    """Run ``m`` without recording it (inside a replay's scratch schema)."""
    manager = await load_manager(m)
    if manager is not None:
        with piccolo_output():
            await manager.run()
