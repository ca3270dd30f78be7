"""Read a database's schema from the PostgreSQL catalog, not from Piccolo's view of it.

A thin test helper over :mod:`orgschema.catalog`, used by the contract test,
the consumer test and the migrator tests so that all compare a real database
against the same expectations.
"""

from __future__ import annotations

import asyncpg

from orgschema.catalog import SchemaSnapshot, read_snapshot
from tests import contract

#: Every table orgschema's own migrations create.
ORGSCHEMA_TABLES = (
    "user",
    "session",
    "account",
    "verification",
    "organization",
    "organization_user",
    "profile",
    "environment_marker",
)


async def read_schema(url: str, tables: tuple[str, ...] = ORGSCHEMA_TABLES) -> SchemaSnapshot:
    conn = await asyncpg.connect(url)
    try:
        return await read_snapshot(conn, tables)
    finally:
        await conn.close()


def assert_matches_contract(schema: SchemaSnapshot) -> None:
    """``schema`` holds exactly the contract (``tests/contract.py``), and every foreign key is indexed."""
    assert schema.tables == set(ORGSCHEMA_TABLES)
    assert schema.columns == {table: tuple(cols) for table, cols in contract.COLUMNS.items()}
    assert schema.constraints == contract.CONSTRAINTS
    assert schema.indexes == contract.INDEXES
    unindexed = [
        (table, name)
        for table, name, columns in schema.foreign_keys
        if not any(index[: len(columns)] == columns for index in schema.indexed_columns[table])
    ]
    assert unindexed == [], "every foreign-key column must lead some index"
