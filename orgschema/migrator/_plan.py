"""The plan of a run: every decision made from what ships and what the database remembers.

``migrate``, ``sql``/``--dry-run``, ``status`` and ``check`` all build the same
frozen :class:`Plan` before anything is written; executing it (or printing
it, or reporting on it) is what differs between them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import asyncpg

from orgschema.migrator import _ledger
from orgschema.migrator._ledger import Ledgers
from orgschema.migrator._scripts import ShippedMigration, app_tables, registered_tables
from orgschema.migrator.reports import UntrackedTables

if TYPE_CHECKING:
    from piccolo.conf.apps import AppConfig


@dataclass(frozen=True)
class Plan:
    """What a run will do, decided before any write.

    :param configs: The apps, dependencies first.
    :param shipped: Their migrations, in the order they run.
    :param ledgers: What the database remembers (checksums of migrations
        Piccolo rolled back already forgotten; see :attr:`forget`).
    :param limit: How many of ``shipped`` the run covers (``--target``).
    :param forget: Checksum rows to delete: Piccolo rolled those migrations back.
    :param untracked: Apps without migration history whose tables exist.
    :param baselined: Migrations ``--baseline`` records as applied without running.
    """

    configs: tuple[AppConfig, ...]
    shipped: tuple[ShippedMigration, ...]
    ledgers: Ledgers
    limit: int
    forget: tuple[tuple[str, str], ...] = ()
    untracked: tuple[UntrackedTables, ...] = ()
    baselined: tuple[ShippedMigration, ...] = ()

    @property
    def history(self) -> tuple[ShippedMigration, ...]:
        """The migrations applied (or baselined), in order: what the schema is built from."""
        done = {m.key for m in self.baselined}
        return tuple(m for m in self.shipped if self.ledgers.applied(m) or m.key in done)

    @property
    def pending(self) -> tuple[ShippedMigration, ...]:
        """The migrations to run, in order, up to the target."""
        done = {m.key for m in self.history}
        return tuple(m for m in self.shipped[: self.limit] if m.key not in done)

    @property
    def adopt(self) -> tuple[ShippedMigration, ...]:
        """Migrations applied by plain Piccolo, whose checksums are not recorded yet."""
        return tuple(
            m for m in self.shipped if self.ledgers.applied(m) and not self.ledgers.checksum(m)
        )

    @property
    def edited(self) -> tuple[ShippedMigration, ...]:
        """Applied migrations whose file changed since."""
        return tuple(
            m
            for m in self.shipped
            if self.ledgers.applied(m) and self.ledgers.checksum(m) not in (None, m.sha256)
        )

    @property
    def unknown(self) -> tuple[tuple[str, str], ...]:
        """``(app, id)`` the ledger lists for a registered app that ships no such file."""
        return tuple(self.ledgers.unknown(self.shipped, self.configs))

    def with_baseline(self, baselined: tuple[ShippedMigration, ...]) -> Plan:
        """This plan, with ``baselined`` counted as applied."""
        return replace(self, baselined=baselined)


async def build(
    conn: asyncpg.Connection,
    configs: tuple[AppConfig, ...],
    shipped: tuple[ShippedMigration, ...],
    limit: int,
) -> Plan:
    """The plan for ``shipped`` against the database of ``conn``, up to ``limit`` migrations.

    Reads which ledgers and which of the apps' tables exist (one query), then
    the ledgers.
    """
    row = await conn.fetchrow(
        # relname cast to text: an array of name would make asyncpg look the
        # type up in the catalog first, a query costing more than this one.
        f"SELECT {_ledger.EXIST_SQL}, array("
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
        "AND c.relname = ANY($1::text[]))",
        registered_tables(configs),
    )
    if row is None:  # a SELECT without FROM returns one row; this only narrows the type
        raise RuntimeError("the server returned no row")
    ledgers = await _ledger.read(conn, (row[0], row[1]))
    stale = ledgers.stale()
    return Plan(
        configs=configs,
        shipped=shipped,
        ledgers=ledgers.without(stale),
        limit=limit,
        forget=stale,
        untracked=_untracked(configs, shipped, ledgers, set(row[2])),
    )


def _untracked(
    configs: tuple[AppConfig, ...],
    shipped: tuple[ShippedMigration, ...],
    ledgers: Ledgers,
    present: set[str],
) -> tuple[UntrackedTables, ...]:
    """Apps that ship migrations, have none recorded, and whose tables exist anyway."""
    recorded = {app for app, _ in ledgers.ran}
    shipping = {m.app_name for m in shipped}
    fresh = [c for c in configs if c.app_name in shipping and c.app_name not in recorded]
    found = []
    for config in fresh:
        tables = tuple(table for table in app_tables(config) if table in present)
        if tables:
            found.append(UntrackedTables(config.app_name, tables))
    return tuple(found)
