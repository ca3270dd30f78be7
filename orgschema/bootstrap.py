"""The first platform admin of a deployed database, created once and only once.

Staging and production never receive fixtures (see :mod:`orgschema.seeding`);
their first ``platform_admin`` is created here instead, from the CLI
(``orgschema bootstrap``), from the first-run endpoint
(:func:`orgschema.first_run_app`) or from a service's own code. The user, its
Better-auth credential account and its profile are written in one transaction,
only while no platform admin exists, under an advisory lock so that concurrent
calls cannot both succeed. Outside development and test it also marks the
database (:class:`~orgschema.tables.EnvironmentMarker`), so fixtures refuse to
go there afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from orgschema._postgres import SETUP_LOCK_KEY, platform_admin_exists, schema_missing
from orgschema.database import connection
from orgschema.environment import is_seedable
from orgschema.errors import AlreadyBootstrapped, EmailTaken
from orgschema.ids import generate_id
from orgschema.passwords import hash_password
from orgschema.roles import Role
from orgschema.settings import Settings
from orgschema.validation import check_password, normalise_email, normalise_name


@dataclass(frozen=True)
class BootstrapReport:
    """The platform admin :func:`bootstrap_first_admin` created.

    :ivar user_id: The new user's id (Better-auth shaped text).
    :ivar email: The e-mail as stored (lower-case); the admin signs in with it.
    :ivar name: The display name as stored.
    :ivar environment: ``APP_ENV``/``NODE_ENV`` at the time, as given, or ``None``.
    :ivar marked: Whether the database was marked as deployed (anything but
        development or test), so that fixtures now refuse to go there.
    """

    user_id: str
    email: str
    name: str
    environment: str | None
    marked: bool


async def setup_required(
    *, database_url: str | None = None, settings: Settings | None = None
) -> bool:
    """Whether the database still has no platform admin (so the first-run setup is open).

    :param database_url: The database; ``None`` means ``DATABASE_URL``, and
        without it the database of Piccolo's engine.
    :param settings: Read from the process environment when ``None``.
    :raises ConfigurationError: the database has no orgschema tables.
    :raises DatabaseUnavailable: the server cannot be reached.
    :returns: ``True`` while no profile has the role ``platform_admin``.
    """
    url = database_url or (settings or Settings.from_env()).database_url
    async with connection(url) as conn:
        try:
            return not await platform_admin_exists(conn)
        except asyncpg.UndefinedTableError as exc:
            raise schema_missing(exc) from exc


async def bootstrap_first_admin(
    *,
    email: str,
    password: str,
    name: str,
    database_url: str | None = None,
    settings: Settings | None = None,
) -> BootstrapReport:
    """Create the first platform admin: user, credential account and profile, in one transaction.

    Succeeds only while no profile has the role ``platform_admin``; concurrent
    calls are serialised by an advisory lock, so exactly one of them creates
    an admin and the others raise :class:`AlreadyBootstrapped`. The admin
    signs in through Better-auth with ``email`` and ``password``. Unless the
    environment is development or test, the database is also marked as
    deployed (fail closed: an unset environment counts as deployed), after
    which :func:`orgschema.seed` refuses it.

    :param email: The admin's e-mail; checked and stored trimmed and
        lower-cased by :func:`orgschema.validation.normalise_email`.
    :param password: 8 to 128 characters; stored as a Better-auth scrypt hash.
    :param name: The admin's display name (:func:`orgschema.validation.normalise_name`).
    :param database_url: The database; ``None`` means ``DATABASE_URL``, and
        without it the database of Piccolo's engine.
    :param settings: For the environment (and ``DATABASE_URL``); read from the
        process environment when ``None``.
    :raises InvalidInputError: a bad ``email``, ``password`` or ``name``
        (its ``field`` says which); nothing was written.
    :raises AlreadyBootstrapped: a platform admin exists; nothing was written.
    :raises EmailTaken: a user with this e-mail exists; nothing was written.
    :raises ConfigurationError: the database has no orgschema tables.
    :raises DatabaseUnavailable: the server cannot be reached.
    :returns: The new admin's id and e-mail, and whether the database was marked.
    """
    email = normalise_email(email)
    password = check_password(password)
    name = normalise_name(name)
    settings = settings or Settings.from_env()
    environment = settings.environment
    marked = not is_seedable(environment)
    async with connection(database_url or settings.database_url) as conn:
        try:
            # Refuse cheaply before spending ~50 ms of CPU on scrypt; the check
            # that counts is repeated under the lock below.
            if await platform_admin_exists(conn):
                raise _already_bootstrapped()
            hashed = await hash_password(password)
            user_id = generate_id()
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SETUP_LOCK_KEY)
                if await platform_admin_exists(conn):
                    raise _already_bootstrapped()
                if await conn.fetchval(
                    'SELECT EXISTS (SELECT 1 FROM "user" WHERE email = $1)', email
                ):
                    raise _email_taken(email)
                await _insert_admin(conn, user_id, email, name, hashed)
                if marked:
                    await conn.execute(
                        "INSERT INTO environment_marker (environment) VALUES ($1)", environment
                    )
        except asyncpg.UndefinedTableError as exc:
            raise schema_missing(exc) from exc
        except asyncpg.UniqueViolationError as exc:
            # Better-auth signed the same e-mail up between the check and the insert.
            raise _email_taken(email) from exc
    return BootstrapReport(
        user_id=user_id, email=email, name=name, environment=environment, marked=marked
    )


async def _insert_admin(
    conn: asyncpg.Connection, user_id: str, email: str, name: str, hashed: str
) -> None:
    # emailVerified is false: nobody has proven the address yet. Better-auth's
    # credential account uses the user's id as its accountId, and its
    # updatedAt has no database default.
    await conn.execute(
        'INSERT INTO "user" (id, name, email, "emailVerified") VALUES ($1, $2, $3, false)',
        user_id,
        name,
        email,
    )
    await conn.execute(
        'INSERT INTO account (id, "accountId", "providerId", "userId", password, "updatedAt") '
        "VALUES ($1, $2, 'credential', $2, $3, now())",
        generate_id(),
        user_id,
        hashed,
    )
    await conn.execute(
        "INSERT INTO profile (user_id, role) VALUES ($1, $2)", user_id, Role.PLATFORM_ADMIN.value
    )


def _already_bootstrapped() -> AlreadyBootstrapped:
    return AlreadyBootstrapped(
        "a platform admin exists already, so the first-run setup is closed; "
        "sign in as that admin to add others"
    )


def _email_taken(email: str) -> EmailTaken:
    return EmailTaken(
        f"a user with the e-mail {email} exists already; choose another e-mail for the first admin"
    )
