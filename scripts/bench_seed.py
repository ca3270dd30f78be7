#!/usr/bin/env python3
"""How fast ``orgschema seed --users N`` writes, beside the floor of COPYing the same rows.

    .venv/bin/python scripts/bench_seed.py [--users 100000] [--keep]

Seeds a throwaway database (on DATABASE_URL's server, else the embedded one)
with N synthetic users, reads back exactly the rows it wrote, empties the
tables, and times plain asyncpg ``copy_records_to_table`` of those rows in one
transaction: the floor. The target is a ratio of 2x or less. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import asyncpg
from _bench import bench_database

COPIED = {
    "user": ("id", "name", "email", "emailVerified", "createdAt", "updatedAt"),
    "account": ("id", "accountId", "providerId", "userId", "password", "createdAt", "updatedAt"),
    "profile": ("user_id", "role", "organization_id"),
    "organization_user": ("organization_id", "user_id", "role"),
}


async def main(users: int, keep: bool) -> None:
    from orgschema import seed

    async with bench_database(keep) as url:
        started = time.perf_counter()
        report = await seed("development", users=users, database_url=url)
        seeded = time.perf_counter() - started

        conn = await asyncpg.connect(url)
        try:
            rows = {
                table: [
                    tuple(record)
                    for record in await conn.fetch(
                        f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in columns)} FROM "{table}"'
                    )
                ]
                for table, columns in COPIED.items()
            }
            organizations = await conn.fetch("SELECT id, name, slug FROM organization")
            await conn.execute('TRUNCATE "user", organization CASCADE')
            await conn.executemany(
                "INSERT INTO organization (id, name, slug) VALUES ($1, $2, $3)", organizations
            )
            started = time.perf_counter()
            async with conn.transaction():
                for table, columns in COPIED.items():
                    await conn.copy_records_to_table(table, records=rows[table], columns=columns)
            floor = time.perf_counter() - started
        finally:
            await conn.close()

    copied = sum(len(table_rows) for table_rows in rows.values())
    print(f"synthetic users: {report.synthetic_users:,} ({copied:,} rows in 4 tables)")
    print(
        f"orgschema seed:  {seeded:8.2f} s  (fixtures, one scrypt hash, ids, COPY, one transaction)"
    )
    print(f"asyncpg COPY:    {floor:8.2f} s  (floor: the same rows, prebuilt, one transaction)")
    print(f"ratio:           {seeded / floor:8.2f}x  (target: 2x or less)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="synthetic users [100000]")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.users, arguments.keep))
