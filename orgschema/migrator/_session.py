"""The run's connection and its Piccolo wiring: the only module that touches Piccolo's globals.

Piccolo's migration managers find their engine themselves, in the
``piccolo_conf`` module, and print their progress. A run therefore puts an
engine of its own into ``piccolo_conf.DB`` for its duration (one run at a time
per event loop), lends that engine the one connection that holds the migration
lock, records every statement sent through it, and catches what Piccolo prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import logging
import re
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
from piccolo.conf.apps import Finder
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine

from orgschema.database import QuietPostgresEngine, connect_with
from orgschema.errors import ConfigurationError
from orgschema.settings import validate_database_url

logger = logging.getLogger(__name__)

APPLICATION_NAME = "orgschema migrate"

#: Run engines by connection settings: constructing one costs a thread and a
#: loop (Piccolo's synchronous start-up hooks), so a service that migrates
#: repeatedly reuses them.
_ENGINES: dict[str, PostgresEngine] = {}

#: True while migrations are replayed in a scratch schema.
_REPLAYING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "orgschema_replaying", default=False
)

#: Where the run engine records the statements of the migration being run.
_CAPTURED_SQL: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "orgschema_captured_sql", default=None
)

_DDL = re.compile(r"\s*(CREATE|ALTER|DROP|COMMENT)\s", re.IGNORECASE)

_CONCURRENTLY = re.compile(r"\b(CREATE(?:\s+UNIQUE)?|DROP)\s+INDEX\s+CONCURRENTLY\b", re.IGNORECASE)


class RunEngine(QuietPostgresEngine):
    """The engine of one migrator run, with the run's connection as its pool.

    Every migration's transaction runs on the same connection that holds the
    advisory lock, which spares a connection per migration.
    """

    # Every statement a migration sends passes through one of these two, so
    # recording here captures exactly the SQL it ran, parameters inlined.
    async def run_ddl(self, ddl: str, in_pool: bool = True) -> Any:
        sink = _CAPTURED_SQL.get()
        if sink is not None:
            sink.append(ddl)
        transaction = self.current_transaction.get()
        if _REPLAYING.get():
            # Replays run in one transaction on empty scratch tables, where
            # building an index concurrently is neither possible nor useful.
            ddl = _CONCURRENTLY.sub(r"\1 INDEX", ddl)
        if transaction is not None and _DDL.match(ddl):
            # Piccolo sends DDL through the extended protocol (a prepare and
            # an execute per statement); DDL returns no rows, so the simple
            # protocol's single round trip gives the same result sooner.
            await transaction.connection.execute(ddl)
            return []
        return await super().run_ddl(ddl, in_pool=in_pool)

    async def run_querystring(self, querystring: Any, in_pool: bool = True) -> Any:
        sink = _CAPTURED_SQL.get()
        if sink is not None:
            sink.append(str(querystring))
        return await super().run_querystring(querystring, in_pool=in_pool)


@contextlib.contextmanager
def capturing(statements: list[str]) -> Iterator[None]:
    """Record into ``statements`` every statement the run engine sends meanwhile."""
    token = _CAPTURED_SQL.set(statements)
    try:
        yield
    finally:
        _CAPTURED_SQL.reset(token)


@contextlib.contextmanager
def replaying() -> Iterator[None]:
    """Mark statements sent meanwhile as a replay on scratch tables."""
    token = _REPLAYING.set(True)
    try:
        yield
    finally:
        _REPLAYING.reset(token)


def current_connection(engine: PostgresEngine) -> asyncpg.Connection:
    """The connection of ``engine``'s current transaction."""
    transaction = engine.current_transaction.get()
    if transaction is None:
        raise RuntimeError("no transaction is open on the run engine")
    connection: asyncpg.Connection = transaction.connection
    return connection


class _OneConnectionPool:
    """What Piccolo needs of a pool, lending one existing connection and never closing it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def acquire(self) -> _Lend:
        return _Lend(self._conn)

    async def release(self, conn: asyncpg.Connection) -> None:
        return None

    async def close(self) -> None:
        return None


class _Lend:
    """``await pool.acquire()`` and ``async with pool.acquire()`` both give the connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    def __await__(self) -> Any:
        async def lend() -> asyncpg.Connection:
            return self._conn

        return lend().__await__()

    async def __aenter__(self) -> asyncpg.Connection:
        return self._conn

    async def __aexit__(self, *exc_info: object) -> None:
        return None


@contextlib.asynccontextmanager
async def piccolo_engine(database_url: str | None) -> AsyncIterator[PostgresEngine]:
    """A run-scoped engine that Piccolo's migrations will find, on ``database_url`` if given.

    Piccolo's migration managers look their engine up in the ``piccolo_conf``
    module themselves, so the run's engine is put there for its duration (and
    the configured one restored after). Without a URL it uses the configured
    engine's connection settings.
    """
    try:
        conf = Finder().get_piccolo_conf_module()
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"no Piccolo configuration ({exc}): create piccolo_conf.py with DB and "
            "APP_REGISTRY (see README), or set PICCOLO_CONF"
        ) from exc
    if conf is None:
        raise ConfigurationError(
            "no Piccolo configuration: create piccolo_conf.py or set PICCOLO_CONF"
        )
    async with _run_lock(), _run_engine(conf, database_url) as engine:
        yield engine


def _run_lock() -> asyncio.Lock:
    """One run at a time per event loop: runs swap ``piccolo_conf.DB`` and lend connections."""
    loop = asyncio.get_running_loop()
    lock = _RUN_LOCKS.get(loop)
    if lock is None:
        lock = _RUN_LOCKS[loop] = asyncio.Lock()
    return lock


_RUN_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


@contextlib.asynccontextmanager
async def _run_engine(conf: Any, database_url: str | None) -> AsyncIterator[PostgresEngine]:
    current: Engine[Any] | None = getattr(conf, "DB", None)
    if database_url is not None:
        validate_database_url(database_url)
        config: dict[str, Any] = {"dsn": database_url}
    elif isinstance(current, PostgresEngine):
        config = dict(current.config)
    else:
        raise ConfigurationError(
            "orgschema migrates PostgreSQL only: piccolo_conf.DB must be a PostgresEngine"
        )
    key = repr(sorted(config.items()))
    engine = _ENGINES.get(key) or _ENGINES.setdefault(key, RunEngine(config=config))
    conf.DB = engine
    try:
        yield engine
    finally:
        conf.DB = current
        engine.pool = None


async def connect(engine: PostgresEngine) -> asyncpg.Connection:
    """Open the run's connection and lend it to ``engine`` as its pool."""
    settings = dict(engine.config.get("server_settings") or {})
    settings.setdefault("application_name", APPLICATION_NAME)
    conn = await connect_with(engine.config, server_settings=settings)
    engine.pool = _OneConnectionPool(conn)  # type: ignore[assignment]
    return conn


@contextlib.contextmanager
def piccolo_output() -> Iterator[None]:
    """Send what Piccolo prints to our logger at DEBUG, line by line."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        for line in buffer.getvalue().splitlines():
            if line.strip():
                logger.debug("piccolo: %s", line.strip())
