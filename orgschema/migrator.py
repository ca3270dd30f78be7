"""Applying the shipped migrations from Python.

:func:`migrate` runs exactly what ``piccolo migrations forwards all`` runs, for
every app in the active Piccolo registry, and writes Piccolo's own ledger, so
the two stay interchangeable. Piccolo reports progress with ``print``; here it
goes to the ``orgschema.migrator`` logger instead, since library code never
prints.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from dataclasses import dataclass

from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import run_forwards
from piccolo.apps.migrations.tables import Migration

from piccolo.engine.finder import engine_finder

from orgschema.database import check_engine
from orgschema.errors import MigrationFailed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationReport:
    """What :func:`migrate` did.

    :ivar applied: ``(app_name, migration_id)`` of each migration applied, in order.
    :ivar seconds: Wall-clock time of the whole run.
    """

    applied: tuple[tuple[str, str], ...]
    seconds: float


async def migrate() -> MigrationReport:
    """Apply every pending migration of every registered app, in Piccolo's order.

    :raises MigrationFailed: a migration raised; its transaction was rolled
        back and it is not recorded as applied.
    """
    started = time.perf_counter()
    await check_engine(engine_finder())
    await BaseMigrationManager().create_migration_table()
    before = await _ledger()
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            result = await run_forwards(app_name="all")
    except Exception as exc:
        raise MigrationFailed(
            f"a migration failed and was rolled back: {exc}; fix the cause and run again"
        ) from exc
    finally:
        for line in output.getvalue().splitlines():
            if line.strip():
                logger.info("%s", line.strip())
    if not result.success:
        raise MigrationFailed(f"migrations did not complete: {result.message}")
    applied = tuple(row for row in await _ledger() if row not in before)
    return MigrationReport(applied=applied, seconds=time.perf_counter() - started)


async def _ledger() -> list[tuple[str, str]]:
    rows = await Migration.select(Migration.app_name, Migration.name).order_by(Migration.id).run()
    return [(row["app_name"], row["name"]) for row in rows]
