"""Which database orgschema talks to, and creating one when it is missing.

``DATABASE_URL`` selects the database everywhere; without it, development and
tests use the embedded server (:mod:`orgschema.embedded`) and its ``orgschema``
database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
from piccolo.engine.postgres import PostgresEngine

from orgschema.errors import ConfigurationError, DatabaseUnavailable
from orgschema.settings import Settings, mask_password

#: The database created on the embedded server for development.
EMBEDDED_DATABASE = "orgschema"

#: Seconds to wait for a server before saying it cannot be reached.
CONNECT_TIMEOUT = 10.0


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


def create_engine(settings: Settings | None = None) -> PostgresEngine:
    """A Piccolo engine for the configured database (see :func:`resolve_database_url`)."""
    return PostgresEngine(config={"dsn": resolve_database_url(settings)})


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    return urlsplit(url)._replace(path=f"/{database}").geturl()


def database_name(url: str) -> str:
    """The database a URI names."""
    return urlsplit(url).path.lstrip("/")


async def connect(url: str) -> asyncpg.Connection:
    """Open one asyncpg connection, turning failures into one readable error.

    :raises DatabaseUnavailable: unreachable server, refused login, or a
        missing database; the message masks the password.
    """
    try:
        return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to {mask_password(url)}: {exc or type(exc).__name__}; "
            "check DATABASE_URL and that the server is running"
        ) from exc
    except ValueError as exc:  # asyncpg's own URI parsing
        raise ConfigurationError(f"bad database URL {mask_password(url)}: {exc}") from exc


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
    if not config or "dsn" not in config:
        if engine is None:
            raise ConfigurationError(
                "Piccolo found no database engine: create a piccolo_conf.py with DB = "
                "PostgresEngine(...) or set PICCOLO_CONF"
            )
        return  # an engine configured by keyword arguments; let Piccolo connect
    conn = await connect(config["dsn"])
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
        conn = await _connect_with(config)
    else:
        conn = await connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def _connect_with(config: dict[str, object]) -> asyncpg.Connection:
    dsn = config.get("dsn")
    if isinstance(dsn, str) and len(config) == 1:
        return await connect(dsn)
    try:
        return await asyncpg.connect(**config, timeout=CONNECT_TIMEOUT)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to the database of Piccolo's engine: {exc}; check piccolo_conf.py"
        ) from exc
