"""A quick look at what a database holds: each orgschema table and its row count."""

from __future__ import annotations

from dataclasses import dataclass

from orgschema.tables import ALL_TABLES


@dataclass(frozen=True)
class TableCount:
    """One table and how many rows it holds."""

    table: str
    rows: int


async def table_counts() -> list[TableCount]:
    """Count the rows of every orgschema table, in foreign-key order."""
    return [
        TableCount(table=table._meta.tablename, rows=await table.count().run())
        for table in ALL_TABLES
    ]
