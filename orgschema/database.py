"""Which database orgschema talks to, and creating one when it is missing.

``DATABASE_URL`` selects the database everywhere; without it, development and
tests use the embedded server (:mod:`orgschema.embedded`) and its ``orgschema``
database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from orgschema.errors import ConfigurationError, DatabaseUnavailable
from orgschema.settings import DEFAULT_CONNECT_TIMEOUT, Settings, mask_password

#: The database created on the embedded server for development.
EMBEDDED_DATABASE = "orgschema"

#: Seconds to wait for a server before saying it cannot be reached
#: (``ORGSCHEMA_CONNECT_TIMEOUT`` sets another).
CONNECT_TIMEOUT = DEFAULT_CONNECT_TIMEOUT


def resolve_database_url(settings: Settings | None = None) -> str:
    """Return ``DATABASE_URL``, or start the embedded server and return its URI.

    With the embedded server, the ``orgschema`` database is created if missing.

    :raises ConfigurationError: no ``DATABASE_URL`` and no embedded extra.
    """
    settings = settings or Settings.from_env()
    if settings.database_url is not None:
        return settings.database_url
    from orgschema.embedded import start_embedded_server

    return start_embedded_server(settings.embedded_dir, EMBEDDED_DATABASE)


class QuietPostgresEngine(PostgresEngine):
    """A Piccolo Postgres engine that does not connect when it is created.

    Piccolo's engines open a connection at construction, to warn about old
    servers, with asyncpg's 60-second default timeout; an unreachable server
    then stalls the import of ``piccolo_conf`` before any orgschema code can
    say so in one line. The first real query reports it instead.
    """

    async def check_version(self) -> None:
        return None


def create_engine(settings: Settings | None = None) -> PostgresEngine:
    """A Piccolo engine for the configured database (see :func:`resolve_database_url`).

    Connections made through it wait at most ``ORGSCHEMA_CONNECT_TIMEOUT``
    seconds, by default :data:`CONNECT_TIMEOUT`.
    """
    settings = settings or Settings.from_env()
    timeout = settings.connect_timeout or CONNECT_TIMEOUT
    return QuietPostgresEngine(config={"dsn": resolve_database_url(settings), "timeout": timeout})


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    return urlsplit(url)._replace(path=f"/{database}").geturl()


def database_name(url: str) -> str:
    """The database a URI names."""
    return urlsplit(url).path.lstrip("/")


async def connect(url: str) -> asyncpg.Connection:
    """Open one asyncpg connection, turning failures into one readable error.

    :raises DatabaseUnavailable: unreachable or silent server, refused login,
        or a missing database; the message masks the password.
    :raises ConfigurationError: the URL or one of its parameters is invalid.
    """
    return await connect_with({"dsn": url})


async def connect_with(config: Mapping[str, Any], **options: Any) -> asyncpg.Connection:
    """Open one asyncpg connection from a Piccolo engine's ``config`` (plus ``options``).

    The one place connection failures become orgschema errors, with at most
    :data:`CONNECT_TIMEOUT` seconds of waiting.

    :raises DatabaseUnavailable: see :func:`connect`.
    :raises ConfigurationError: see :func:`connect`.
    """
    dsn = config.get("dsn")
    where = mask_password(dsn) if isinstance(dsn, str) else "the database of piccolo_conf.DB"
    try:
        return await asyncpg.connect(**{"timeout": CONNECT_TIMEOUT, **config, **options})
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {where}: {str(exc) or type(exc).__name__}; "
            "check DATABASE_URL (or MIGRATION_DATABASE_URL) and that the server is running"
        ) from exc
    except ValueError as exc:  # asyncpg's URI and parameter parsing
        raise ConfigurationError(f"bad database settings for {where}: {exc}") from exc


async def ensure_database(url: str) -> bool:
    """Create the database ``url`` names if it does not exist yet.

    Connects to the server's ``postgres`` database to do it.

    :returns: ``True`` when it was created, ``False`` when it already existed.
    """
    name = database_name(url)
    conn = await connect(with_database(url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f'CREATE DATABASE "{_quote(name)}"')
        except asyncpg.DuplicateDatabaseError:  # created meanwhile by a racing process
            return False
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the database ``url`` names, disconnecting its sessions first."""
    name = database_name(url)
    conn = await connect(with_database(url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{_quote(name)}" WITH (FORCE)')
    finally:
        await conn.close()


def _quote(identifier: str) -> str:
    return identifier.replace('"', '""')


def describe_engine(engine: object) -> str:
    """The masked connection URI of a Piccolo Postgres engine, for messages."""
    config = getattr(engine, "config", None) or {}
    dsn = config.get("dsn")
    return mask_password(dsn) if dsn else repr(config)


async def check_engine(engine: object) -> None:
    """Fail fast, with one readable line, when the engine's database is unreachable.

    :raises DatabaseUnavailable: see :func:`connect`.
    :raises ConfigurationError: Piccolo found no engine (no ``piccolo_conf``).
    """
    config = getattr(engine, "config", None)
    if not config:
        raise ConfigurationError(
            "Piccolo found no database engine: create a piccolo_conf.py with DB = "
            "PostgresEngine(...) or set PICCOLO_CONF"
        )
    conn = await connect_with(config)
    await conn.close()


@asynccontextmanager
async def connection(database_url: str | None = None) -> AsyncIterator[asyncpg.Connection]:
    """One asyncpg connection to ``database_url``, or to the database of Piccolo's engine.

    Library functions that take ``database_url: str | None = None`` use this:
    given a URL they talk to it; without one they use the same database as the
    caller's Piccolo tables (the engine from ``piccolo_conf``).

    :raises DatabaseUnavailable: the server cannot be reached.
    :raises ConfigurationError: no URL and Piccolo finds no engine.
    """
    if database_url is None:
        from piccolo.engine.finder import engine_finder

        engine = engine_finder()
        config = getattr(engine, "config", None)
        if not config:
            raise ConfigurationError(
                "no database: pass database_url, or configure Piccolo's DB "
                "(piccolo_conf.py or PICCOLO_CONF)"
            )
        conn = await connect_with(config)
    else:
        conn = await connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()
