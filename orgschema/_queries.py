"""Running the domain helpers' SQL on Piccolo's engine, with driver errors translated.

The helpers in :mod:`orgschema.organizations` and :mod:`orgschema.profiles`
run where the service's own Piccolo queries run: on the engine of the tables
(``DB`` of ``piccolo_conf``), through its connection pool when one is started,
and inside ``async with DB.transaction():`` when called in one. Constraint
violations come back as orgschema's exceptions, chosen by constraint name.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from piccolo.querystring import QueryString

from orgschema._postgres import schema_missing
from orgschema.errors import (
    AlreadyMember,
    ConflictError,
    DatabaseUnavailable,
    InvalidInputError,
    OrgschemaError,
    SlugTaken,
    UnknownOrganization,
    UnknownUser,
)
from orgschema.tables import Organization

_BY_CONSTRAINT: dict[str, Callable[[], OrgschemaError]] = {
    "organization_slug_key": lambda: SlugTaken(
        "another organization has this slug; pass a different slug"
    ),
    "organization_slug_check": lambda: InvalidInputError(
        "a slug is lower-case letters and digits with single hyphens between them",
        field="slug",
    ),
    "organization_user_organization_id_user_id_unique": lambda: AlreadyMember(
        "the user is a member of this organization already; use change_member_role to change the role"
    ),
    "organization_user_organization_id_fkey": lambda: UnknownOrganization(
        "no organization has this id"
    ),
    "organization_user_user_id_fkey": lambda: UnknownUser("no user has this id"),
    "profile_user_id_fkey": lambda: UnknownUser("no user has this id"),
    "profile_organization_id_fkey": lambda: UnknownOrganization("no organization has this id"),
    "organization_user_role_check": lambda: InvalidInputError(
        "not a membership role", field="role"
    ),
    "profile_role_check": lambda: InvalidInputError("not a platform role", field="role"),
}


class _Statement(QueryString):
    """A ``QueryString`` of plain values whose template is compiled once per process.

    Piccolo parses a template on every run; the helpers and authentication run
    the same few templates on every request. Compiling with placeholders in
    place of the values gives exactly the SQL Piccolo would.
    """

    __slots__ = ()

    def compile_string(self, engine_type: str = "postgres") -> tuple[str, list[Any]]:
        return _compiled(self.template, len(self.args), engine_type), list(self.args)


@functools.lru_cache(maxsize=256)
def _compiled(template: str, arity: int, engine_type: str) -> str:
    sql, _values = QueryString(template, *([None] * arity)).compile_string(engine_type)
    return sql


async def fetch(template: str, *args: Any) -> Sequence[asyncpg.Record]:
    """Run ``template`` (``{}`` placeholders, as in Piccolo's ``raw``) on the tables' engine.

    ``args`` are plain values (never columns or query strings).

    :raises OrgschemaError: a subclass named after the violated constraint.
    :raises ConfigurationError: the database has no orgschema tables.
    :raises DatabaseUnavailable: the server cannot be reached.
    """
    engine = Organization._meta.db
    try:
        rows: Sequence[asyncpg.Record] = await engine.run_querystring(_Statement(template, *args))
        return rows
    except asyncpg.IntegrityConstraintViolationError as exc:
        make = _BY_CONSTRAINT.get(exc.constraint_name or "")
        if make is None:
            raise ConflictError(f"the database refused the change: {exc}") from exc
        raise make() from exc
    except asyncpg.UndefinedTableError as exc:
        raise schema_missing(exc) from exc
    except asyncpg.DataError as exc:  # e.g. a NUL character, which text cannot hold
        raise InvalidInputError(f"the database refused a value: {exc}") from exc
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database of Piccolo's engine: {exc}; check piccolo_conf.py"
        ) from exc


def as_uuid(value: uuid.UUID | str, field: str) -> uuid.UUID:
    """``value`` as a UUID.

    :raises InvalidInputError: ``value`` is not a UUID (``field`` names it).
    """
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise InvalidInputError(f"{field} must be a UUID, not {value!r}", field=field) from exc


def as_user_id(value: str) -> str:
    """``value`` if it can be a user id (non-empty text).

    :raises InvalidInputError: ``value`` is empty or not a string.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f"user_id must be a non-empty string, not {value!r}", field="user_id"
        )
    return value
