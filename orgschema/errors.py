"""Every exception orgschema raises on purpose, under one base class.

The tree, with the exit code the CLI maps each to (and the HTTP status where
one reaches HTTP)::

    OrgschemaError                       exit 1   anything else orgschema refused to do
    ├── ConfigurationError               exit 3   no usable database: bad DATABASE_URL, missing extra
    ├── DatabaseUnavailable              exit 3   the server cannot be reached or refuses the login
    ├── InvalidInputError (ValueError)   exit 2   bad e-mail, password, role, slug... (HTTP 422)
    ├── NotFoundError                    exit 1   an unknown user, organization or membership (HTTP 404)
    │   ├── UnknownUser                  exit 1   no user has that id
    │   ├── UnknownOrganization          exit 1   no organization has that id
    │   └── NotAMember                   exit 1   the user is not a member of that organization
    ├── ConflictError                    exit 1   a duplicate slug, e-mail or membership (HTTP 409)
    │   ├── SlugTaken                    exit 1   another organization has that slug: pick another
    │   ├── AlreadyMember                exit 1   the user is a member already: nothing to add
    │   └── EmailTaken                   exit 1   a user has that e-mail already: sign in instead
    ├── MigrationError                   exit 6
    │   ├── MigrationLockTimeout         exit 4   another migrator holds the lock
    │   ├── AppliedMigrationModified     exit 5   an applied migration's file was edited
    │   ├── UnknownAppliedMigration      exit 5   the ledger lists a migration no app ships
    │   ├── SchemaDriftError             exit 5   tables and migrations, or database and migrations, differ
    │   ├── MigrationFailed              exit 6   a migration raised; rolled back, not recorded
    │   ├── MigrationBlocked             exit 9   other sessions held a table's lock through every retry
    │   ├── PoolerRefused                exit 10  the connection goes through a transaction-mode pooler
    │   ├── ReadOnlyRefused              exit 11  a read-only standby (or read-only database) cannot migrate
    │   ├── MigrationConnectionLost      exit 12  the connection died mid-run (failover, restart)
    │   └── BaselineRequired             exit 13  tables exist without migration history: adopt with --baseline
    ├── EnvironmentRefused               exit 7   seeding in staging/production, or an unknown environment
    └── BootstrapError                   exit 8
        ├── AlreadyBootstrapped          exit 8   a platform admin exists (HTTP 409)
        └── SetupTokenRejected           exit 8   missing or wrong setup token (HTTP 401)

Messages say what to do next. Driver errors are wrapped with ``raise ... from``
so the cause stays visible, never swallowed.
"""

from __future__ import annotations


class OrgschemaError(Exception):
    """Base of every error orgschema raises on purpose."""

    exit_code: int = 1
    status_code: int = 500


class ConfigurationError(OrgschemaError):
    """The configuration names no usable database (or a needed extra is missing)."""

    exit_code = 3


class DatabaseUnavailable(OrgschemaError):
    """The configured PostgreSQL server could not be reached or refused the login."""

    exit_code = 3
    status_code = 503


class InvalidInputError(OrgschemaError, ValueError):
    """A value given to orgschema is invalid; ``field`` names it when there is one."""

    exit_code = 2
    status_code = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(OrgschemaError):
    """What was asked for does not exist."""

    status_code = 404


class ConflictError(OrgschemaError):
    """The change would duplicate something unique (a slug, an e-mail, a membership)."""

    status_code = 409


class UnknownUser(NotFoundError):
    """No user has the id given."""

    field = "user_id"


class UnknownOrganization(NotFoundError):
    """No organization has the id given."""

    field = "organization_id"


class NotAMember(NotFoundError):
    """The user is not a member of the organization (so there is no role to change or remove)."""


class SlugTaken(ConflictError):
    """Another organization has this slug; choose another one."""

    field = "slug"


class AlreadyMember(ConflictError):
    """The user is a member of the organization already; change the role instead."""


class EmailTaken(ConflictError):
    """A user with this e-mail exists already."""

    field = "email"


class MigrationError(OrgschemaError):
    """Migrations could not be brought up to date."""

    exit_code = 6


class MigrationLockTimeout(MigrationError):
    """Another migrator held the database's migration lock for longer than the timeout."""

    exit_code = 4


class AppliedMigrationModified(MigrationError):
    """The file of a migration that was already applied has changed since."""

    exit_code = 5


class UnknownAppliedMigration(MigrationError):
    """The database records a migration that no registered app ships."""

    exit_code = 5


class SchemaDriftError(MigrationError):
    """The table classes, the migrations and the live database do not agree."""

    exit_code = 5


class MigrationFailed(MigrationError):
    """A migration raised; its transaction was rolled back and it is not recorded."""

    exit_code = 6


class MigrationBlocked(MigrationError):
    """A migration could not take its locks within the DDL lock timeout, on every attempt.

    Each attempt was rolled back, so nothing of that migration is applied.
    ``blocking_pids`` are the sessions that held the locks it waited for.
    """

    exit_code = 9

    def __init__(self, message: str, *, blocking_pids: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.blocking_pids = blocking_pids


class PoolerRefused(MigrationError):
    """The migrator's connection is not one server session (a transaction-mode pooler).

    Its advisory lock would not hold there, so nothing was locked or applied.
    """

    exit_code = 10


class ReadOnlyRefused(MigrationError):
    """The database is a read-only standby, or read-only; nothing can be migrated there."""

    exit_code = 11


class MigrationConnectionLost(MigrationError):
    """The migrator's connection was lost mid-run (a failover, a restart, a terminated session)."""

    exit_code = 12


class BaselineRequired(MigrationError):
    """Tables of registered apps exist but their migrations were never recorded.

    The database was created some other way (the original Drizzle stack, say):
    adopt it with ``orgschema migrate --baseline``; nothing was applied.
    """

    exit_code = 13


class EnvironmentRefused(OrgschemaError):
    """The operation is not allowed in this environment (or the environment is unknown)."""

    exit_code = 7
    status_code = 403


class BootstrapError(OrgschemaError):
    """The first platform admin could not be created."""

    exit_code = 8


class AlreadyBootstrapped(BootstrapError):
    """A platform admin exists already; the first-run setup is closed."""

    status_code = 409


class SetupTokenRejected(BootstrapError):
    """The setup token was missing or wrong."""

    status_code = 401
