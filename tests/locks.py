"""Waiting, by polling the catalog, until another session is queued on a lock."""

from __future__ import annotations

import asyncio
import time

import asyncpg


async def wait_for_advisory_lock_waiter(
    conn: asyncpg.Connection, key: int, *, within: float = 60
) -> int:
    """Poll ``pg_locks`` (on ``conn``'s database) until a session waits for advisory lock ``key``.

    :returns: The waiting session's pid.
    :raises AssertionError: nobody queued within ``within`` seconds.
    """
    deadline = time.monotonic() + within
    while True:
        pid = await conn.fetchval(
            """
            SELECT pid FROM pg_locks
            WHERE locktype = 'advisory' AND NOT granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND classid = ($1::bigint >> 32)::oid
              AND objid = ($1::bigint & 4294967295)::oid
            LIMIT 1
            """,
            key,
        )
        if pid is not None:
            return int(pid)
        assert time.monotonic() < deadline, f"no session queued for advisory lock {key}"
        await asyncio.sleep(0.02)
