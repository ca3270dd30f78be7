"""The run's connection and its Piccolo wiring: the only module that touches Piccolo's globals.

Piccolo's migration managers find their engine themselves, in the
``piccolo_conf`` module, and print their progress. A run therefore puts an
engine of its own into ``piccolo_conf.DB`` for its duration (one run at a time
per event loop), lends that engine the one connection that holds the migration
lock, records every statement sent through it, and catches what Piccolo prints.

The run's connection is proven fit before anything is locked: one server
session (a transaction-mode pooler would scatter the lock and the migrations
over several), on a primary (not a read-only standby), with the server's
dead-client detection on, so a killed migrator's lock goes within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import io
import logging
import re
import secrets
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from piccolo.conf.apps import Finder
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction

from orgschema.database import QuietPostgresEngine, connect_with, describe_engine
from orgschema.errors import (
    ConfigurationError,
    MigrationConnectionLost,
    OrgschemaError,
    PoolerRefused,
    ReadOnlyRefused,
)
from orgschema.migrator import _lock
from orgschema.settings import Settings, validate_database_url

logger = logging.getLogger(__name__)

APPLICATION_NAME = "orgschema migrate"


#: True while migrations are replayed in a scratch schema.
_REPLAYING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "orgschema_replaying", default=False
)

#: Where the run engine records the statements of the migration being run.
_CAPTURED_SQL: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "orgschema_captured_sql", default=None
)

#: What a batching :class:`Transaction` holds back, to send in one round trip.
_BATCH: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "orgschema_ddl_batch", default=None
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
            sink.statements.append(ddl)
            sink.only_ddl = sink.only_ddl and bool(_DDL.match(ddl))
        transaction = self.current_transaction.get()
        if _REPLAYING.get():
            # Replays run in one transaction on empty scratch tables, where
            # building an index concurrently is neither possible nor useful.
            ddl = _CONCURRENTLY.sub(r"\1 INDEX", ddl)
        if transaction is not None and _DDL.match(ddl):
            batch = _BATCH.get()
            if batch is not None:
                batch.append(ddl)
                return []
            # Piccolo sends DDL through the extended protocol (a prepare and
            # an execute per statement); DDL returns no rows, so the simple
            # protocol's single round trip gives the same result sooner.
            await transaction.connection.execute(ddl)
            return []
        await flush(self)
        return await super().run_ddl(ddl, in_pool=in_pool)

    async def run_querystring(self, querystring: Any, in_pool: bool = True) -> Any:
        sink = _CAPTURED_SQL.get()
        if sink is not None:
            sink.statements.append(str(querystring))
            sink.only_ddl = False
        await flush(self)
        return await super().run_querystring(querystring, in_pool=in_pool)


class Transaction:
    """A transaction of the run's connection that Piccolo's code joins as its own.

    It is begun, committed and rolled back with plain SQL, so that ``BEGIN``,
    the statements of a migration and its ledger rows can travel together.
    With ``batch``, DDL (which returns nothing) is held back and sent as one
    simple-protocol script: when a statement that returns rows comes, and
    with the ``COMMIT``. On a busy server every round trip costs a wake-up of
    the backend, and one migration of a few tables is dozens of statements;
    this way a migration of plain DDL is one round trip. Only what goes through
    the engine is held back, so a migration with Python of its own
    (``add_raw``), which may reach the connection by other paths, is not
    batched.
    """

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    @contextlib.asynccontextmanager
    async def begin(
        cls, engine: PostgresEngine, conn: asyncpg.Connection, setup: str, *, batch: bool
    ) -> AsyncIterator[Transaction]:
        """``BEGIN``, then ``setup`` (the transaction's ``SET LOCAL``s); rolled back on error."""
        # What Piccolo's own `engine.transaction()` finds and joins.
        joined = PostgresTransaction(engine)
        joined.connection = conn
        piccolo = engine.current_transaction.set(joined)
        held = _BATCH.set(["BEGIN", setup] if batch else None)
        try:
            if not batch:
                await conn.execute(f"BEGIN; {setup}")
            yield cls(conn)
        except BaseException:
            if not conn.is_closed() and conn.is_in_transaction():
                with contextlib.suppress(*LOST, asyncpg.PostgresError):
                    await conn.execute("ROLLBACK")
            raise
        finally:
            _BATCH.reset(held)
            engine.current_transaction.reset(piccolo)

    async def commit(self, last: str) -> None:
        """Send what is held back, ``last`` (the ledger rows), and ``COMMIT``."""
        batch = _BATCH.get() or []
        script = ";\n".join([*batch, last, "COMMIT"])
        batch.clear()
        await self._conn.execute(script)


async def send_ddl(engine: PostgresEngine, statements: Sequence[str]) -> None:
    """Send DDL through the run engine, as a migration's own would go (recorded, batched)."""
    batch, sink = _BATCH.get(), _CAPTURED_SQL.get()
    if batch is not None and all(_DDL.match(statement) for statement in statements):
        # What run_ddl would do with each, without its per-statement Python.
        batch.extend(statements)
        if sink is not None:
            sink.statements.extend(statements)
        return
    for statement in statements:
        await engine.run_ddl(statement)


async def flush(engine: PostgresEngine) -> None:
    """Send the DDL a batching :class:`Transaction` holds back so far."""
    batch = _BATCH.get()
    if batch:
        script = ";\n".join(batch)
        batch.clear()
        await current_connection(engine).execute(script)


@dataclass
class Capture:
    """The statements the run engine sent during :func:`capturing`, in order."""

    statements: list[str] = field(default_factory=list)
    #: Whether each was DDL (no statement returned rows a migration could act on).
    only_ddl: bool = True


@contextlib.contextmanager
def capturing() -> Iterator[Capture]:
    """Record every statement the run engine sends meanwhile."""
    capture = Capture()
    token = _CAPTURED_SQL.set(capture)
    try:
        yield capture
    finally:
        _CAPTURED_SQL.reset(token)


def is_replaying() -> bool:
    """Whether statements sent now go to scratch tables (a replay or preview)."""
    return _REPLAYING.get()


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


@functools.cache
def _run_engine_instance() -> RunEngine:
    # Once per process: constructing an engine costs a thread and a loop
    # (Piccolo's synchronous start-up hooks); each run gives it the connection
    # settings of its database, and runs take turns (see _run_lock).
    return RunEngine(config={})


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
    engine = _run_engine_instance()
    engine.config = config
    conf.DB = engine
    try:
        yield engine
    finally:
        conf.DB = current
        engine.pool = None


###############################################################################
# The run's connection


#: Seconds the session check (behind a pooler) may take: a second connection,
#: a NOTIFY, and its delivery, which takes milliseconds where it comes at all.
_PROBE_WAIT = 5.0

# The server's dead-client detection for the run's session: a killed
# migrator's backend ends (and its lock goes) within a second or two even
# while a statement runs, and within about 25 s when its host vanished.
_DEAD_CLIENT = {
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
}
_CLIENT_CHECK = ("client_connection_check_interval", "1000")  # PostgreSQL 14 and later

#: What asyncpg raises when the connection itself is gone. InternalClientError
#: is how it answers a query on a connection whose server sent an error while
#: it was idle (a terminated session's FATAL) and then hung up: the run never
#: shares a connection between tasks, so that is the only way to meet it.
LOST: tuple[type[BaseException], ...] = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InternalClientError,
    ConnectionError,
)

#: Everything the driver raises, for turning into orgschema's errors.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)

_LOST_OR_SLOW: tuple[type[BaseException], ...] = (*LOST, TimeoutError)


@dataclass(frozen=True)
class Run:
    """The run's connection, and what is known of its server session."""

    conn: asyncpg.Connection
    #: ``pg_backend_pid()`` (through a pooler, not the pid asyncpg was told).
    pid: int
    #: Reached through something that is not the server (a session pooler).
    proxied: bool = False
    #: The migration lock was free and is held already (taken with the checks).
    locked: bool = False


async def connect(engine: PostgresEngine, settings: Settings, *, lock: bool, write: bool) -> Run:
    """Open the run's connection, prove it fit for the run, and lend it to ``engine``.

    :param lock: The run will hold the migration lock: the connection must be
        one server session (no transaction-mode pooler), and the server is
        asked to notice a dead client within seconds.
    :param write: The run writes (or replays in a scratch schema): the
        database must not be a read-only standby.
    :raises PoolerRefused: ``lock``, and the connection is not one session.
    :raises ReadOnlyRefused: ``write``, and the database is read-only.
    :raises DatabaseUnavailable: the server cannot be reached.
    """
    conn = await _open(engine.config, settings, APPLICATION_NAME)
    try:
        run = (
            await _check(engine, settings, conn, lock=lock, write=write)
            if lock or write
            else Run(conn, conn.get_server_pid())
        )
    except BaseException:
        await close_connection(conn)
        raise
    engine.pool = _OneConnectionPool(conn)  # type: ignore[assignment]
    return run


async def side_connection(
    engine: PostgresEngine, settings: Settings, purpose: str
) -> asyncpg.Connection:
    """Another connection to the run's database, for ``purpose`` (its application name says)."""
    return await _open(engine.config, settings, f"{APPLICATION_NAME} ({purpose})")


async def close(run: Run, *, locked: bool) -> None:
    """Close the run's connection, releasing the migration lock first when a pooler is between.

    Through a session-mode pooler the server session outlives the connection,
    and with it a lock that closing alone would not free; a direct
    connection's session, and its lock, end with it.
    """
    if locked and run.proxied and not run.conn.is_closed():
        with contextlib.suppress(*LOST):
            await _lock.release(run.conn)
    await close_connection(run.conn)


async def _open(config: dict[str, Any], settings: Settings, name: str) -> asyncpg.Connection:
    server_settings = {"application_name": name, **(config.get("server_settings") or {})}
    # No named prepared statements: behind a transaction-mode pooler they
    # collide with other clients' on a shared server session before the
    # pooler can be refused in one line. A run repeats few statements, so
    # the cache would spare few round trips anyway.
    options: dict[str, Any] = {"server_settings": server_settings, "statement_cache_size": 0}
    if settings.connect_timeout is not None:
        options["timeout"] = settings.connect_timeout
    return await connect_with(config, **options)


async def close_connection(conn: asyncpg.Connection) -> None:
    """Close ``conn``, abandoning it if the server does not answer."""
    try:
        await conn.close(timeout=5)
    except _LOST_OR_SLOW:
        conn.terminate()


async def _check(
    engine: PostgresEngine, settings: Settings, conn: asyncpg.Connection, *, lock: bool, write: bool
) -> Run:
    """Refuse a connection unfit for the run, set its session up, and try the lock.

    One round trip says what the server knows of this session, sets its
    dead-client detection, and takes the migration lock when the connection
    is plainly direct (see below) and writable, so that a run that finds the
    lock free needs no second query for it.
    """
    session = dict(_DEAD_CLIENT)
    if conn.get_server_version().major >= 14:
        session.update([_CLIENT_CHECK])
    # Direct: a direct connection's cancel key carries the backend's pid, and
    # over TCP the server sees our own address and port; a pooler answers
    # with keys and a socket of its own.
    transport = getattr(conn, "_transport", None)
    ours = transport.get_extra_info("sockname") if transport is not None else None
    address, port = ours[:2] if isinstance(ours, tuple) else (None, None)  # a Unix socket: a str
    try_lock = f"CASE WHEN direct AND NOT standby AND NOT read_only THEN {_lock.TRY_SQL} END"
    row = await conn.fetchrow(
        f"SELECT pid, standby, read_only, direct, {try_lock if lock else 'NULL'} AS locked "
        "FROM (SELECT pg_backend_pid() AS pid, pg_is_in_recovery() AS standby, "
        "current_setting('transaction_read_only') = 'on' AS read_only, "
        "pg_backend_pid() = $1 AND CASE WHEN $2::text IS NULL THEN inet_client_addr() IS NULL "
        "ELSE host(inet_client_addr()) = $2 AND inet_client_port() = $3 END AS direct"
        + "".join(f", set_config('{name}', '{value}', false)" for name, value in session.items())
        + ") AS session",
        conn.get_server_pid(),
        address,
        port,
    )
    if row is None:  # a SELECT without FROM returns one row; this only narrows the type
        raise RuntimeError("the server returned no row")
    where = describe_engine(engine)
    # Read-only first: a standby also refuses the pooler check's LISTEN.
    if write and (row["standby"] or row["read_only"]):
        what = (
            "a read-only standby (it is in recovery)"
            if row["standby"]
            else "read-only (default_transaction_read_only is on)"
        )
        raise ReadOnlyRefused(
            f"the database at {where} is {what}: nothing can be migrated, previewed or checked "
            "there (`orgschema status` works). Point MIGRATION_DATABASE_URL at the primary"
        )
    proxied = not row["direct"]
    if lock and proxied and not await _one_session(engine, settings, conn):
        raise PoolerRefused(
            f"the migrator's connection to {where} goes through a transaction-mode pooler "
            "(PgBouncer in pool_mode=transaction, Supabase's port 6543, ...): each transaction "
            "may run on another server session, so the migration lock would protect nothing. "
            "Nothing was locked or applied. Set MIGRATION_DATABASE_URL to a direct or "
            "session-mode URL of the same database (see docs/deploy.md)"
        )
    return Run(conn, int(row["pid"]), proxied, locked=bool(row["locked"]))


async def _one_session(
    engine: PostgresEngine, settings: Settings, conn: asyncpg.Connection
) -> bool:
    """Prove that ``conn`` keeps one server session while idle, by reaching it from outside.

    ``conn`` listens on a channel of its own and a second client notifies it:
    the server delivers the notification to the listening session at once, and
    it reaches ``conn`` only if ``conn`` is still linked to that session while
    it sits idle between transactions. A session pooler keeps it linked; a
    transaction-mode pooler has handed the session back to its pool, so the
    notification never arrives, however busy or quiet the pooler is.
    """
    channel = f"orgschema_session_check_{secrets.token_hex(8)}"
    arrived = asyncio.Event()

    def notified(*_: object) -> None:
        arrived.set()

    await conn.add_listener(channel, notified)
    try:
        async with asyncio.timeout(_PROBE_WAIT):
            other = await side_connection(engine, settings, "session check")
            try:
                await other.execute(f'NOTIFY "{channel}"')
            finally:
                await close_connection(other)
            await arrived.wait()
        return True
    except (TimeoutError, OrgschemaError, asyncpg.PostgresError):
        # No notification in time, or no second connection to send it (a pool
        # with room for one client only cannot prove anything either).
        return False
    finally:
        with contextlib.suppress(*LOST, asyncpg.PostgresError):
            await conn.remove_listener(channel, notified)


def is_lost(exc: BaseException, conn: asyncpg.Connection | None = None) -> bool:
    """Whether ``exc`` means the connection (``conn``, when given) is gone.

    A failover, a restart or a terminated session; asyncpg reports one that
    it noticed earlier as a plain "connection is closed".
    """
    return isinstance(exc, LOST) or (conn is not None and conn.is_closed())


def lost(exc: BaseException, doing: str, after: str) -> MigrationConnectionLost:
    """The error for a connection lost while ``doing``; ``after`` says what stands now."""
    return MigrationConnectionLost(
        f"the connection to the database was lost while {doing} ({type(exc).__name__}: "
        f"{str(exc) or 'closed'}): the server restarted or failed over, or the session was "
        f"terminated. {after}"
    )


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
