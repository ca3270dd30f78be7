"""What a step does: run one migration, in its transaction, with its ledger rows.

Every migration runs with PostgreSQL's ``lock_timeout`` (``--ddl-lock-timeout``)
and, when set, ``statement_timeout``, both ``SET LOCAL`` to its transaction. A
statement that waits longer than that for a table lock (behind a long read,
say) is cancelled, the whole transaction rolls back, and the migration is
tried again after a backoff with jitter, so application queries that queued
behind it wait at most one lock timeout. While a statement waits, a second
connection notes which sessions block it (``pg_blocking_pids``), so that the
error after the last attempt can name them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.postgres import PostgresEngine

from orgschema.errors import (
    MigrationBlocked,
    MigrationConnectionLost,
    MigrationFailed,
    OrgschemaError,
)
from orgschema.migrator import _ledger, _session
from orgschema.migrator._scripts import ShippedMigration
from orgschema.migrator._session import capturing, piccolo_output
from orgschema.migrator.reports import AppliedMigration
from orgschema.settings import Settings, milliseconds

logger = logging.getLogger(__name__)

#: Backoff between attempts: the first pause, doubling up to the last, each
#: jittered down to half so that racing deploys do not retry in step.
_FIRST_BACKOFF = 0.5
_LAST_BACKOFF = 10.0

_JITTER = secrets.SystemRandom()


@dataclass(frozen=True)
class Policy:
    """How migrations treat locks and slow statements (from :class:`~orgschema.Settings`)."""

    #: Seconds a statement may wait for a lock; 0 waits without limit.
    lock_timeout: float
    #: Attempts after the first, for a migration that timed out on a lock.
    retries: int
    #: Seconds a statement may run; ``None`` leaves the server's setting.
    statement_timeout: float | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(settings.ddl_lock_timeout, settings.ddl_retries, settings.statement_timeout)

    def statements(self, scope: str) -> str:
        """``SET`` (``scope`` ``LOCAL`` or ``SESSION``) of the timeouts, as one string."""
        sql = f"SET {scope} lock_timeout = {milliseconds(self.lock_timeout)}"
        if self.statement_timeout is not None:
            sql += f"; SET {scope} statement_timeout = {milliseconds(self.statement_timeout)}"
        return sql


@dataclass(frozen=True)
class Blocker:
    """A session that held a lock a migration statement waited for."""

    pid: int
    application_name: str
    state: str
    #: Seconds since its transaction (else its connection) began.
    seconds: int
    query: str

    def describe(self) -> str:
        return (
            f"pid {self.pid} ({self.application_name or 'no application_name'}, {self.state} "
            f"for {self.seconds} s, last query: {self.query!r})"
        )


#: When the watcher saw no blocker: the lock timeout ended before it looked.
_UNNAMED = (
    "sessions the migrator could not name in time (a lock timeout that short ends before it looks)"
)


class _LockTimedOut(Exception):
    """A statement of the migration gave up waiting for a lock; its transaction rolled back."""


async def apply(
    engine: PostgresEngine,
    run: _session.Run,
    pending: Sequence[ShippedMigration],
    settings: Settings,
    *,
    prelude: str = "",
) -> list[AppliedMigration]:
    """Apply ``pending`` in order, each atomic with its ledger rows.

    ``prelude``, SQL to run in the first migration's transaction before it
    (creating a missing ledger), spares a transaction of its own.

    :raises MigrationBlocked: a migration timed out on a lock on every attempt.
    :raises MigrationFailed: a migration raised (or its rows could not be
        written); it was rolled back, and those after it did not run.
    :raises MigrationConnectionLost: the connection was lost meanwhile.
    """
    if not pending:
        logger.info("no migrations pending")
        return []
    logger.info("%d migration(s) pending", len(pending))
    policy = Policy.from_settings(settings)
    applied: list[AppliedMigration] = []
    async with _Watcher.for_run(engine, settings, run.pid, policy) as watcher:
        for index, m in enumerate(pending):
            last = index == len(pending) - 1
            applied.append(
                await _apply_with_retries(
                    engine, run.conn, m, policy, watcher, last, len(applied), prelude
                )
            )
            prelude = ""
    return applied


async def _apply_with_retries(
    engine: PostgresEngine,
    conn: asyncpg.Connection,
    m: ShippedMigration,
    policy: Policy,
    watcher: _Watcher,
    last: bool,
    applied_before: int,
    prelude: str,
) -> AppliedMigration:
    started = time.monotonic()
    attempt = 1
    watcher.forget()
    while True:
        prepared = await step(m)
        outside = not prepared.wrap_in_transaction
        try:
            async with watcher.watching():
                return await _apply_once(engine, conn, m, prepared, policy, outside, last, prelude)
        except _LockTimedOut as exc:
            blockers = watcher.blockers
            if outside or attempt > policy.retries:
                raise _blocked(
                    m, policy, attempt, started, blockers, applied_before, outside
                ) from exc.__cause__
            pause = min(_LAST_BACKOFF, _FIRST_BACKOFF * 2 ** (attempt - 1))
            pause *= _JITTER.uniform(0.5, 1)
            logger.warning(
                "%s waited more than %g s for a lock (attempt %d of %d) and was rolled back; "
                "blocked by %s; trying again in %.1f s",
                m.key,
                policy.lock_timeout,
                attempt,
                policy.retries + 1,
                "; ".join(b.describe() for b in blockers) or _UNNAMED,
                pause,
            )
            await asyncio.sleep(pause)
            attempt += 1


async def _apply_once(
    engine: PostgresEngine,
    conn: asyncpg.Connection,
    m: ShippedMigration,
    prepared: Step,
    policy: Policy,
    outside: bool,
    last: bool,
    prelude: str,
) -> AppliedMigration:
    started = time.perf_counter()
    setup = policy.statements("LOCAL")
    if not last:
        # The last commit flushes the WAL up to itself, and with it every
        # earlier one, so waiting for each flush buys nothing: a server crash
        # mid-run can only lose a suffix of whole migrations (each still
        # atomic with its rows).
        setup += "; SET LOCAL synchronous_commit = off"
    if prelude:
        setup += f";\n{prelude}"
    duration = _ledger.SINCE_BEGIN
    try:
        if outside:
            # Its author opted out of the transaction (CREATE INDEX CONCURRENTLY
            # and the like): run as Piccolo would, then record.
            logger.warning(
                "%s runs outside a transaction: it is not atomic with its ledger rows", m.key
            )
            await conn.execute(policy.statements("SESSION"))
            try:
                sql = await run_one(engine, m, prepared, conn=conn)
            finally:
                with contextlib.suppress(*_session.LOST):
                    await conn.execute("RESET lock_timeout; RESET statement_timeout")
            duration = repr((time.perf_counter() - started) * 1000)
        async with _session.Transaction.begin(
            engine, conn, setup, batch=prepared.batchable
        ) as transaction:
            if not outside:
                sql = await run_one(engine, m, prepared, conn=conn)
            rows = _ledger.rows_sql(
                [m], how="applied", sql=sql, duration_ms=duration, piccolo_row=True
            )
            await transaction.commit(rows)
    except (MigrationFailed, _LockTimedOut, MigrationConnectionLost):
        raise
    except _session.DRIVER_ERRORS as exc:
        raise _failure(exc, m, conn) from exc
    seconds = time.perf_counter() - started
    logger.info("applied %s in %.3f s", m.key, seconds)
    return AppliedMigration(m.app_name, m.migration_id, m.description, seconds, sql)


def _failure(exc: BaseException, m: ShippedMigration, conn: asyncpg.Connection | None) -> Exception:
    """What a migration's error means: a lock timeout, a lost connection, or a failure."""
    if isinstance(exc, asyncpg.LockNotAvailableError):
        return _LockTimedOut()
    if _session.is_lost(exc, conn):
        return _session.lost(
            exc,
            f"applying {m.key}",
            "Each migration commits together with its ledger rows, so it is wholly applied "
            "or not at all: run `orgschema status` to see which, then `orgschema migrate` again",
        )
    hint = ""
    if isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in str(exc):
        hint = " (a statement ran longer than --statement-timeout allows)"
    return MigrationFailed(
        f"migration {m.key} ({m.description}) failed and was rolled back; nothing was "
        f"recorded: {type(exc).__name__}: {exc}{hint}. Fix the cause and run again"
    )


def _blocked(
    m: ShippedMigration,
    policy: Policy,
    attempts: int,
    started: float,
    blockers: tuple[Blocker, ...],
    applied_before: int,
    outside: bool,
) -> MigrationBlocked:
    named = "; ".join(b.describe() for b in blockers) or _UNNAMED
    if outside:
        what = (
            "it runs outside a transaction, so it was not retried, and what its statements did "
            "before the timeout stays (a CREATE INDEX CONCURRENTLY leaves an INVALID index: "
            "drop it)"
        )
    else:
        what = (
            f"each of its {attempts} attempt(s) over {time.monotonic() - started:.0f} s was "
            "rolled back, so nothing of it is applied"
        )
    earlier = (
        f"; the {applied_before} migration(s) before it were applied" if applied_before else ""
    )
    return MigrationBlocked(
        f"migration {m.key} ({m.description}) waited more than {policy.lock_timeout:g} s for a "
        f"table lock: {what}{earlier}. Blocked by: {named}. Let those finish (or end them with "
        "SELECT pg_terminate_backend(pid)), or allow longer with --ddl-lock-timeout and "
        "--ddl-retries, then run `orgschema migrate` again",
        blocking_pids=tuple(b.pid for b in blockers),
    )


@dataclass(frozen=True)
class Step:
    """A migration ready to run: its Piccolo manager, or the DDL that manager generated.

    A manager of Piccolo operations alone (``add_table``, ``alter_column``...,
    no ``add_raw``) that sent only DDL generates the same statements from the
    same file every time; those are kept, per process, by file and checksum,
    and later runs send them again instead of building the manager anew (the
    Python of that costs about as much as a fresh database's DDL itself).
    """

    manager: MigrationManager | None
    generated: tuple[str, ...] | None
    wrap_in_transaction: bool

    @property
    def batchable(self) -> bool:
        """No Python of the migration's own, which might reach the connection by other paths."""
        return self.manager is None or not self.manager.raw


@dataclass(frozen=True)
class _Generated:
    statements: tuple[str, ...]
    wrap_in_transaction: bool


_GENERATED: dict[tuple[Path, str], _Generated] = {}


async def step(m: ShippedMigration) -> Step:
    """``m``, ready to run (see :class:`Step`).

    :raises MigrationFailed: its ``forwards()`` raised.
    """
    generated = _GENERATED.get((m.path, m.sha256))
    if generated is not None:
        return Step(None, generated.statements, generated.wrap_in_transaction)
    try:
        with piccolo_output():
            manager = await m.module.forwards()
    except Exception as exc:
        raise MigrationFailed(
            f"migration {m.key} ({m.description}) could not be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(manager, MigrationManager):
        return Step(None, (), True)
    return Step(manager, None, manager.wrap_in_transaction)


async def run_one(
    engine: PostgresEngine,
    m: ShippedMigration,
    prepared: Step,
    *,
    conn: asyncpg.Connection | None = None,
) -> str:
    """Run one migration (in the current transaction, if any); returns the SQL it sent.

    Each statement ends with ``;``, in order, as the ledger records it.
    ``conn``, the connection it runs on, tells a lost connection from a failure.

    :raises MigrationFailed: it raised.
    :raises MigrationConnectionLost: the connection was lost meanwhile.
    """
    if _session.is_replaying():
        # `sql` and `--dry-run`: nothing is applied, so never say it is.
        logger.info("previewing %s (%s) in a scratch schema", m.key, m.description)
    else:
        logger.info("applying %s (%s)", m.key, m.description)
    try:
        with capturing() as capture:
            await _send(engine, prepared)
    except Exception as exc:
        raise _failure(exc, m, conn) from exc
    _remember(m, prepared, capture)
    sql = "\n".join(s.strip().rstrip(";") + ";" for s in capture.statements)
    return sql or "-- (no statements)"


async def replay_one(engine: PostgresEngine, m: ShippedMigration) -> None:
    """Run ``m`` without recording it (inside a replay's scratch schema)."""
    prepared = await step(m)
    with capturing() as capture:
        await _send(engine, prepared)
    _remember(m, prepared, capture)


async def _send(engine: PostgresEngine, prepared: Step) -> None:
    if prepared.generated is not None:
        await _session.send_ddl(engine, prepared.generated)
    elif prepared.manager is not None:
        with piccolo_output():
            await prepared.manager.run()


def _remember(m: ShippedMigration, prepared: Step, capture: _session.Capture) -> None:
    if prepared.manager is not None and not prepared.manager.raw and capture.only_ddl:
        _GENERATED[(m.path, m.sha256)] = _Generated(
            tuple(capture.statements), prepared.wrap_in_transaction
        )


# The watcher only adds detail to a message: what fails it never fails the run.
_WATCH_ERRORS: tuple[type[BaseException], ...] = (*_session.DRIVER_ERRORS, OrgschemaError)


class _Watcher:
    """Notes who blocks the run's session while one of its statements waits for a lock.

    It looks only once a statement has waited half the lock timeout, from a
    connection of its own opened then (the run's is busy waiting).
    """

    def __init__(
        self, engine: PostgresEngine, settings: Settings, pid: int, policy: Policy
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._pid = pid
        self._policy = policy
        self._conn: asyncpg.Connection | None = None
        self.blockers: tuple[Blocker, ...] = ()

    @classmethod
    @contextlib.asynccontextmanager
    async def for_run(
        cls, engine: PostgresEngine, settings: Settings, pid: int, policy: Policy
    ) -> AsyncIterator[_Watcher]:
        watcher = cls(engine, settings, pid, policy)
        try:
            yield watcher
        finally:
            if watcher._conn is not None:
                await _session.close_connection(watcher._conn)

    def forget(self) -> None:
        """Start afresh, for another migration (its attempts share what was seen)."""
        self.blockers = ()

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Watch for blockers during the block (not at all without a lock timeout).

        What an attempt sees stays for the next ones: the session that blocked
        one attempt is most likely the one blocking the next.
        """
        if not self._policy.lock_timeout:
            yield
            return
        # A timer rather than a task: most migrations end long before it fires.
        tasks: list[asyncio.Task[None]] = []
        timer = asyncio.get_running_loop().call_later(
            self._policy.lock_timeout / 2, lambda: tasks.append(asyncio.create_task(self._watch()))
        )
        try:
            yield
        finally:
            timer.cancel()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _watch(self) -> None:
        timeout = self._policy.lock_timeout
        while True:
            try:
                found = await self._look()
            except asyncio.CancelledError:
                # Cancelled mid-query: that connection's state is unknown now.
                if self._conn is not None:
                    self._conn.terminate()
                    self._conn = None
                raise
            except _WATCH_ERRORS:
                found = ()
            if found:
                self.blockers = found
            await asyncio.sleep(min(1.0, max(0.05, timeout / 5)))

    async def _look(self) -> tuple[Blocker, ...]:
        if self._conn is None:
            self._conn = await _session.side_connection(self._engine, self._settings, "lock watch")
        rows = await self._conn.fetch(
            """
            SELECT pid, application_name, coalesce(state, 'unknown') AS state,
                   round(extract(epoch FROM clock_timestamp()
                                 - coalesce(xact_start, backend_start)))::int AS seconds,
                   left(regexp_replace(query, '\\s+', ' ', 'g'), 120) AS query
            FROM pg_stat_activity
            WHERE pid = ANY (pg_blocking_pids($1))
            ORDER BY pid
            """,
            self._pid,
        )
        return tuple(
            Blocker(
                pid=row["pid"],
                application_name=row["application_name"],
                state=row["state"],
                seconds=row["seconds"],
                query=row["query"],
            )
            for row in rows
        )
