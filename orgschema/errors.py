"""Every exception orgschema raises on purpose, under one base class.

The tree, with the exit code the CLI maps each to::

    OrgschemaError                  exit 1   anything else orgschema refused to do
    ├── ConfigurationError          exit 3   no usable database: bad DATABASE_URL, missing extra
    ├── DatabaseUnavailable         exit 3   the server named by DATABASE_URL cannot be reached
    └── MigrationError
        └── MigrationFailed         exit 6   a migration raised; rolled back, not recorded

Messages say what to do next. Driver errors are wrapped with ``raise ... from``
so the cause stays visible, never swallowed.
"""

from __future__ import annotations


class OrgschemaError(Exception):
    """Base of every error orgschema raises on purpose."""

    exit_code: int = 1


class ConfigurationError(OrgschemaError):
    """The configuration names no usable database (or a needed extra is missing)."""

    exit_code = 3


class DatabaseUnavailable(OrgschemaError):
    """The configured PostgreSQL server could not be reached or refused the login."""

    exit_code = 3


class MigrationError(OrgschemaError):
    """Migrations could not be brought up to date."""


class MigrationFailed(MigrationError):
    """A migration raised; its transaction was rolled back and it is not recorded."""

    exit_code = 6
