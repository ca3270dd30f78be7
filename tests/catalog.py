"""Read a database's schema from the PostgreSQL catalog, not from Piccolo's view of it.

Used by the contract test and by the consumer test, so that both compare a
real database against the same expectations.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

#: Tables a migrated orgschema database holds besides Piccolo's ledger.
ORGSCHEMA_TABLES = (
    "user",
    "session",
    "account",
    "verification",
    "organization",
    "organization_user",
    "profile",
)


@dataclass(frozen=True)
class Schema:
    """What the catalog says about a set of tables."""

    tables: set[str]
    # table -> [(column, type, nullable, default expression or None)] in column order
    columns: dict[str, list[tuple[str, str, bool, str | None]]]
    # {(table, constraint name, contype, pg_get_constraintdef)}
    constraints: set[tuple[str, str, str, str]]
    # {(table, index name, pg_get_indexdef)} for indexes that back no constraint
    indexes: set[tuple[str, str, str]]
    # [(table, fk name, [column, ...])]
    foreign_keys: list[tuple[str, str, list[str]]]
    # table -> [[column, ...] per index, constraint-backed or not]
    indexed_column_lists: dict[str, list[list[str]]]


async def read_schema(url: str, tables: tuple[str, ...] = ORGSCHEMA_TABLES) -> Schema:
    conn = await asyncpg.connect(url)
    try:
        present = {
            row["relname"]
            for row in await conn.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        }
        columns: dict[str, list[tuple[str, str, bool, str | None]]] = {}
        for row in await conn.fetch(
            """
            SELECT c.relname AS table, a.attname AS column,
                   format_type(a.atttypid, a.atttypmod) AS type,
                   NOT a.attnotnull AS nullable,
                   pg_get_expr(d.adbin, d.adrelid) AS default
            FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE n.nspname = 'public' AND c.relname = ANY($1::text[])
              AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY c.relname, a.attnum
            """,
            list(tables),
        ):
            columns.setdefault(row["table"], []).append(
                (row["column"], row["type"], row["nullable"], row["default"])
            )
        constraints = {
            (row["table"], row["name"], row["contype"], row["definition"])
            for row in await conn.fetch(
                """
                SELECT c.relname AS table, con.conname AS name, con.contype::text AS contype,
                       pg_get_constraintdef(con.oid) AS definition
                FROM pg_constraint con
                JOIN pg_class c ON c.oid = con.conrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relname = ANY($1::text[])
                  AND con.contype IN ('p', 'u', 'f', 'c')
                """,
                list(tables),
            )
        }
        indexes = {
            (row["table"], row["name"], row["definition"])
            for row in await conn.fetch(
                """
                SELECT t.relname AS table, i.relname AS name, pg_get_indexdef(i.oid) AS definition
                FROM pg_index x
                JOIN pg_class i ON i.oid = x.indexrelid
                JOIN pg_class t ON t.oid = x.indrelid
                JOIN pg_namespace n ON n.oid = t.relnamespace
                WHERE n.nspname = 'public' AND t.relname = ANY($1::text[])
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)
                """,
                list(tables),
            )
        }
        foreign_keys = [
            (row["table"], row["name"], list(row["columns"]))
            for row in await conn.fetch(
                """
                SELECT c.relname AS table, con.conname AS name,
                       array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                             ORDER BY k.ord) AS columns
                FROM pg_constraint con
                JOIN pg_class c ON c.oid = con.conrelid
                JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relname = ANY($1::text[]) AND con.contype = 'f'
                """,
                list(tables),
            )
        ]
        indexed: dict[str, list[list[str]]] = {}
        for row in await conn.fetch(
            """
            SELECT t.relname AS table,
                   array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                         ORDER BY k.ord) AS columns
            FROM pg_index x
            JOIN pg_class t ON t.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND t.relname = ANY($1::text[])
            """,
            list(tables),
        ):
            indexed.setdefault(row["table"], []).append(list(row["columns"]))
    finally:
        await conn.close()
    return Schema(
        tables=present,
        columns=columns,
        constraints=constraints,
        indexes=indexes,
        foreign_keys=foreign_keys,
        indexed_column_lists=indexed,
    )
