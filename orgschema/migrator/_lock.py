"""One migrator at a time: the session-level advisory lock every run holds.

Waiters poll ``pg_try_advisory_lock`` between short sleeps instead of blocking
in ``pg_advisory_lock``: between polls a waiter's session is idle, outside any
transaction, so a killed waiter leaves nothing behind at once (an idle backend
sees its client go), and a ``CREATE INDEX CONCURRENTLY`` in the holder's run
never waits for a waiter's snapshot. The price is that waiters are not served
in arrival order, which no caller relies on: they all find nothing pending.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

import asyncpg

from orgschema.errors import MigrationLockTimeout

logger = logging.getLogger(__name__)

#: The advisory lock key ("orgschem" in ASCII): one migrator per database.
LOCK_KEY = 0x6F7267736368656D

#: Taking the lock if it is free, as a SQL expression (true when taken).
TRY_SQL = f"pg_try_advisory_lock({LOCK_KEY:d})"

#: Sleeps between polls grow from the first to the last, with jitter so that
#: many waiters do not poll in step; a released lock is seen within the last.
_FIRST_POLL = 0.02
_LAST_POLL = 0.5

_JITTER = secrets.SystemRandom()


async def acquire(conn: asyncpg.Connection, wait_seconds: float, *, held: bool = False) -> float:
    """Take the migration lock, waiting up to ``wait_seconds`` seconds; returns the wait.

    :param held: It was taken already (with the connection's checks).
    :raises MigrationLockTimeout: another session held it all that time.
    """
    started = time.monotonic()
    if held or await _try(conn):
        return 0.0
    who = await holder(conn)
    logger.info("waiting up to %.0f s for the migration lock, held by %s", wait_seconds, who)
    deadline = started + wait_seconds
    pause = _FIRST_POLL
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise MigrationLockTimeout(
                f"gave up after {wait_seconds:g} s waiting for the migration lock, held by "
                f"{await holder(conn)}. Another migrator is running: let it finish, or wait "
                "longer with --lock-timeout. A killed migrator's lock goes within seconds, so "
                "a holder that stays is a live session; if it is stuck, end it with "
                "SELECT pg_terminate_backend(pid) and run again"
            )
        await asyncio.sleep(min(left, pause * _JITTER.uniform(0.5, 1.0)))
        if await _try(conn):
            waited = time.monotonic() - started
            logger.info("got the migration lock after %.1f s", waited)
            return waited
        pause = min(_LAST_POLL, pause * 2)


async def release(conn: asyncpg.Connection) -> None:
    """Release the lock, so that a pooled session goes back to its pool without it."""
    # The simple protocol: one round trip, where a parameter would take two.
    await conn.execute(f"SELECT pg_advisory_unlock({LOCK_KEY:d})")


async def _try(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(f"SELECT {TRY_SQL}"))


async def holder(conn: asyncpg.Connection) -> str:
    """Who holds the migration lock, for messages."""
    row = await conn.fetchrow(
        """
        SELECT a.pid, a.application_name, a.backend_start
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ($1::bigint >> 32)::oid
          AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
        """,
        LOCK_KEY,
    )
    if row is None:
        return "a session that has just released it"
    return (
        f"pid {row['pid']} ({row['application_name'] or 'no application_name'}, "
        f"connected since {row['backend_start']:%Y-%m-%d %H:%M:%S %Z})"
    )
