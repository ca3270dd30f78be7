"""Deploy-time migrations that enforce the rules instead of trusting memory.

:func:`migrate` applies the pending migrations of every app in the active
Piccolo registry, in the order ``piccolo migrations forwards all`` uses, and
writes Piccolo's own ``migration`` ledger, so plain Piccolo and orgschema stay
interchangeable. On top of Piccolo it adds:

- **one migrator at a time**: a session-level advisory lock, held on a
  dedicated connection for the whole run; others poll for it outside any
  transaction (up to a timeout), then find nothing pending. The connection
  must be one server session (a transaction-mode pooler is refused) on a
  writable primary (a standby is refused), and the server is asked to notice
  a dead migrator within seconds;
- **never stalls the service**: each migration's statements wait at most
  ``lock_timeout`` for a table lock; the migration is then rolled back and
  retried with backoff, and the error after the last attempt names the
  sessions that blocked it;
- **atomic ledger**: each migration, its Piccolo ledger row and its
  ``orgschema_migration`` row commit in one transaction, so a killed migrator
  leaves the database at a migration boundary;
- **checksums**: the sha256, source and SQL of each applied migration are
  recorded; if an applied file is edited later, every run refuses before
  applying anything and shows the diff. Migrations applied earlier by plain
  Piccolo are adopted (their checksum recorded) on the next run;
- **review**: ``dry_run`` replays the applied and the pending migrations in a
  scratch schema, in a transaction that is rolled back, and returns the exact
  SQL the pending ones executed;
- **checks**: :func:`check_migrations` finds table classes that differ from
  the migrations and live databases that differ from what their applied
  migrations produce (a change made by hand);
- **baseline**: adopting a database that the original system created, after
  proving it matches what the migrations would create; without it, such a
  database is refused before anything is written.

Where each part lives (Alembic's split of what ships, what the database
remembers, and what a step does):

- :mod:`~orgschema.migrator.api`: the verbs; :mod:`~orgschema.migrator.reports`:
  what they return;
- ``_scripts``: the registered apps and their migration files;
- ``_ledger``: both ledgers (create, read, verify, record);
- ``_plan``: the frozen plan every verb builds before any write;
- ``_session``: the run's connection and the Piccolo engine wiring;
- ``_lock``: the advisory lock;
- ``_runner``: running one migration with its ledger rows;
- ``_replay``: replays in a scratch schema (``sql``, ``check``, ``--baseline``).

Progress goes to the ``orgschema.migrator`` loggers; nothing here prints.
"""

from orgschema.migrator._ledger import LEDGER_TABLE
from orgschema.migrator._lock import LOCK_KEY
from orgschema.migrator._scripts import ShippedMigration
from orgschema.migrator.api import check_migrations, migrate, migration_status
from orgschema.migrator.reports import (
    AppliedMigration,
    CheckReport,
    MigrationReport,
    MigrationState,
    StatusReport,
    UntrackedTables,
)

__all__ = [
    "AppliedMigration",
    "CheckReport",
    "LEDGER_TABLE",
    "LOCK_KEY",
    "MigrationReport",
    "MigrationState",
    "ShippedMigration",
    "StatusReport",
    "UntrackedTables",
    "check_migrations",
    "migrate",
    "migration_status",
]
