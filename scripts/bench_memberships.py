#!/usr/bin/env python3
"""How fast ``list_memberships(user_id)`` is, beside the same query in raw asyncpg.

    .venv/bin/python scripts/bench_memberships.py [--memberships 1000000] [--calls 2000] [--keep]

Builds a throwaway database (on DATABASE_URL's server, else the embedded one)
holding M memberships (4 per user, over 1,000 organizations) with COPY, then
times list_memberships for random users through Piccolo's engine with its
connection pool started, as a service runs it, and the same SQL through an
asyncpg pool: the floor. The target is a ratio of 1.5x or less. Prints
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid

import asyncpg
from _bench import bench_database, summary

PER_USER = 4
ORGANIZATIONS = 1_000
BATCH = 50_000

# The query list_memberships runs, in asyncpg's own placeholders.
FLOOR_SQL = (
    "SELECT m.organization_id, o.name AS organization_name, o.slug AS organization_slug, "
    "m.user_id, m.role, m.created_at FROM organization_user m "
    "JOIN organization o ON o.id = m.organization_id "
    "WHERE m.user_id = $1 ORDER BY o.name, o.id"
)


async def build(url: str, memberships: int) -> list[str]:
    from orgschema.ids import generate_id

    users = [generate_id() for _ in range(memberships // PER_USER)]
    organizations = [uuid.uuid4() for _ in range(ORGANIZATIONS)]
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "organization",
            records=[
                (org, f"Organization {n}", f"organization-{n}")
                for n, org in enumerate(organizations)
            ],
            columns=("id", "name", "slug"),
        )
        for start in range(0, len(users), BATCH):
            batch = users[start : start + BATCH]
            await conn.copy_records_to_table(
                "user",
                records=[
                    (u, "Bench User", f"bench-{start + n}@example.com", True)
                    for n, u in enumerate(batch)
                ],
                columns=("id", "name", "email", "emailVerified"),
            )
            rows = []
            for n, user in enumerate(batch):
                first = (start + n) * 7 % ORGANIZATIONS
                rows.extend(
                    (organizations[(first + k) % ORGANIZATIONS], user, "teacher")
                    for k in range(PER_USER)
                )
            await conn.copy_records_to_table(
                "organization_user", records=rows, columns=("organization_id", "user_id", "role")
            )
        await conn.execute("VACUUM ANALYZE organization_user")
        await conn.execute("ANALYZE organization")
        print(f"memberships:     {await conn.fetchval('SELECT count(*) FROM organization_user'):,}")
    finally:
        await conn.close()
    return users


async def main(memberships: int, calls: int, keep: bool) -> None:
    from orgschema import Organization, list_memberships

    async with bench_database(keep) as url:
        started = time.perf_counter()
        users = await build(url, memberships)
        print(f"built in:        {time.perf_counter() - started:8.1f} s")
        sample = random.Random(7).choices(users, k=calls)

        engine = Organization._meta.db
        await engine.start_connection_pool(min_size=1, max_size=1)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
        try:
            assert len(await list_memberships(sample[0])) == PER_USER
            assert len(await pool.fetch(FLOOR_SQL, sample[0])) == PER_USER
            ours: list[float] = []
            floor: list[float] = []
            # Interleaved, so both see the same caches and the same noise.
            for user in sample:
                started = time.perf_counter()
                await list_memberships(user)
                ours.append(time.perf_counter() - started)
                started = time.perf_counter()
                await pool.fetch(FLOOR_SQL, user)
                floor.append(time.perf_counter() - started)
        finally:
            await pool.close()
            await engine.close_connection_pool()

    print(
        f"calls:           {calls:,} per side, {PER_USER} memberships each, pools of one connection"
    )
    print(f"list_memberships {summary(ours)}")
    print(f"raw asyncpg      {summary(floor)}  (floor)")
    print(
        f"ratio (median):  {sorted(ours)[calls // 2] / sorted(floor)[calls // 2]:8.2f}x  (target: 1.5x or less)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memberships", type=int, default=1_000_000, help="memberships [1000000]")
    parser.add_argument("--calls", type=int, default=2_000, help="timed calls per side [2000]")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.memberships, arguments.calls, arguments.keep))
