"""Reading what a database holds, to prove that an operation wrote (or did not write) rows."""

from __future__ import annotations

import asyncpg

from orgschema.tables import ALL_TABLES
from tests.databases import fetch

TABLES = tuple(table._meta.tablename for table in ALL_TABLES)


async def row_counts(url: str) -> dict[str, int]:
    """Rows in every orgschema table."""
    conn = await asyncpg.connect(url)
    try:
        return {name: await conn.fetchval(f'SELECT count(*) FROM "{name}"') for name in TABLES}
    finally:
        await conn.close()


async def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every orgschema table, sorted, so two snapshots compare equal only if nothing changed."""
    conn = await asyncpg.connect(url)
    try:
        return {
            name: sorted(
                (tuple(row.values()) for row in await conn.fetch(f'SELECT * FROM "{name}"')),
                key=repr,
            )
            for name in TABLES
        }
    finally:
        await conn.close()


async def admin_rows(url: str) -> list[asyncpg.Record]:
    """Every platform admin, with their credential account and profile."""
    return await fetch(
        url,
        """
        SELECT u.id, u.email, u.name, u."emailVerified", p.role, p.organization_id,
               a."providerId", a."accountId", a.password
        FROM "user" u JOIN profile p ON p.user_id = u.id JOIN account a ON a."userId" = u.id
        WHERE p.role = 'platform_admin'
        """,
    )
