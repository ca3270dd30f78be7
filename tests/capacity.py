"""How much concurrency the test server can take right now.

The server is shared (other test runs, other databases), so a test that opens
many sessions at once asks first how many are free, instead of assuming the
whole ``max_connections`` is its own and failing with "too many clients".
"""

from __future__ import annotations

from tests.databases import fetchval

#: Connections always left free for everybody else (other tests' pools, psql).
RESERVE = 20


async def free_connections(url: str) -> int:
    """Connections a non-superuser could still open on the server of ``url``."""
    free = await fetchval(
        url,
        """
        SELECT current_setting('max_connections')::int
               - current_setting('superuser_reserved_connections')::int
               - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
        """,
    )
    return int(free)


async def concurrency(url: str, wanted: int, *, least: int = 8) -> int:
    """``wanted`` sessions, or as many as leave :data:`RESERVE` free (never under ``least``).

    Under ``least`` the race would prove little; the test then still runs with
    ``least`` callers, which a server with any room left can take.
    """
    return max(least, min(wanted, await free_connections(url) - RESERVE))
