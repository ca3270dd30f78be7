"""The plan of a run: every decision made from what ships and what the database remembers.

``migrate``, ``sql``/``--dry-run``, ``status`` and ``check`` all build the same
frozen :class:`Plan` before anything is written; executing it (or printing
it, or reporting on it) is what differs between them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from orgschema.migrator._ledger import Ledgers
from orgschema.migrator._scripts import ShippedMigration

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
    :param baselined: Migrations ``--baseline`` records as applied without running.
    """

    configs: tuple[AppConfig, ...]
    shipped: tuple[ShippedMigration, ...]
    ledgers: Ledgers
    limit: int
    forget: tuple[tuple[str, str], ...] = ()
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


def build(
    configs: tuple[AppConfig, ...],
    shipped: tuple[ShippedMigration, ...],
    ledgers: Ledgers,
    limit: int,
) -> Plan:
    """The plan for ``shipped`` against ``ledgers``, up to ``limit`` migrations."""
    stale = ledgers.stale()
    return Plan(
        configs=configs,
        shipped=shipped,
        ledgers=ledgers.without(stale),
        limit=limit,
        forget=stale,
    )
