"""One migrator at a time: the session-level advisory lock every run holds."""

from __future__ import annotations

import logging
import math
import time

import asyncpg

from orgschema.errors import MigrationLockTimeout

logger = logging.getLogger(__name__)

#: The advisory lock key ("orgschem" in ASCII): one migrator per database.
LOCK_KEY = 0x6F7267736368656D


async def acquire(conn: asyncpg.Connection, wait_seconds: float) -> float:
    """Take the migration lock, waiting up to ``wait_seconds`` seconds; returns the wait.

    :raises MigrationLockTimeout: another session held it all that time.
    """
    started = time.perf_counter()
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        return 0.0
    who = await holder(conn)
    logger.info("waiting up to %.0f s for the migration lock, held by %s", wait_seconds, who)
    if wait_seconds <= 0:
        raise MigrationLockTimeout(
            f"the migration lock is held by {who}; try again when it finishes"
        )
    # Block server-side, so waiters are queued fairly and wake the moment the
    # holder's session ends (including when it is killed).
    # lock_timeout = 0 would mean "wait forever": never round down to it.
    await conn.execute(f"SET lock_timeout = {max(1, math.ceil(wait_seconds * 1000))}")
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    except asyncpg.LockNotAvailableError as exc:
        raise MigrationLockTimeout(
            f"gave up after {wait_seconds:.0f} s waiting for the migration lock, held by "
            f"{await holder(conn)}; if that migrator is stuck, stop it "
            "(its lock goes with its connection) and run again"
        ) from exc
    finally:
        await conn.execute("RESET lock_timeout")
    waited = time.perf_counter() - started
    logger.info("got the migration lock after %.1f s", waited)
    return waited


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
