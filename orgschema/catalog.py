"""What PostgreSQL's catalog says about a set of tables, and how two such views differ.

The migrator compares the live database with the schema its migrations
produce (replayed in a scratch schema); the tests compare a migrated database
with the written contract. Both read the catalog here, never Piccolo's own
idea of the schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

Column = tuple[str, str, bool, "str | None"]  # name, type, nullable, default


@dataclass(frozen=True)
class SchemaSnapshot:
    """The catalog's view of some tables of one PostgreSQL schema.

    Definitions are normalised so snapshots of different schemas compare:
    the schema name is stripped, and ``now()`` is spelled ``CURRENT_TIMESTAMP``
    (PostgreSQL stores either for the same function).
    """

    tables: frozenset[str]
    #: table -> columns in column order
    columns: dict[str, tuple[Column, ...]]
    #: (table, name, contype, definition) for p/u/f/c constraints
    constraints: frozenset[tuple[str, str, str, str]]
    #: (table, name, definition) for indexes that back no constraint
    indexes: frozenset[tuple[str, str, str]]
    #: (table, constraint name, columns) of each foreign key
    foreign_keys: tuple[tuple[str, str, tuple[str, ...]], ...]
    #: table -> the column lists of every index on it
    indexed_columns: dict[str, tuple[tuple[str, ...], ...]]


async def read_snapshot(
    conn: asyncpg.Connection, tables: Iterable[str], schema: str = "public"
) -> SchemaSnapshot:
    """Read ``tables`` (those that exist) of ``schema`` from the catalog."""
    names = sorted(set(tables))
    present = frozenset(
        row["relname"]
        for row in await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($2::text[])",
            schema,
            names,
        )
    )
    columns: dict[str, list[Column]] = {}
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
        WHERE n.nspname = $1 AND c.relname = ANY($2::text[])
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum
        """,
        schema,
        names,
    ):
        default = _normalise(row["default"], schema) if row["default"] is not None else None
        columns.setdefault(row["table"], []).append(
            (row["column"], row["type"], row["nullable"], default)
        )
    constraint_rows = await conn.fetch(
        """
        SELECT c.relname AS table, con.conname AS name, con.contype::text AS contype,
               pg_get_constraintdef(con.oid) AS definition,
               array(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                     ORDER BY k.ord) AS columns
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = ANY($2::text[])
          AND con.contype IN ('p', 'u', 'f', 'c')
        """,
        schema,
        names,
    )
    index_rows = await conn.fetch(
        """
        SELECT t.relname AS table, i.relname AS name, pg_get_indexdef(i.oid) AS definition,
               EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid)
                   AS backs_constraint,
               array(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                     JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                     ORDER BY k.ord) AS columns
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE n.nspname = $1 AND t.relname = ANY($2::text[])
        """,
        schema,
        names,
    )
    indexed: dict[str, list[tuple[str, ...]]] = {}
    for row in index_rows:
        indexed.setdefault(row["table"], []).append(tuple(row["columns"]))
    return SchemaSnapshot(
        tables=present,
        columns={table: tuple(cols) for table, cols in columns.items()},
        constraints=frozenset(
            (row["table"], row["name"], row["contype"], _normalise(row["definition"], schema))
            for row in constraint_rows
        ),
        indexes=frozenset(
            (row["table"], row["name"], _normalise(row["definition"], schema))
            for row in index_rows
            if not row["backs_constraint"]
        ),
        foreign_keys=tuple(
            sorted(
                (row["table"], row["name"], tuple(row["columns"]))
                for row in constraint_rows
                if row["contype"] == "f"
            )
        ),
        indexed_columns={table: tuple(lists) for table, lists in indexed.items()},
    )


def differences(actual: SchemaSnapshot, expected: SchemaSnapshot) -> list[str]:
    """Readable differences of ``actual`` (the live database) from ``expected``.

    Empty when they agree, names included.
    """
    found: list[str] = []
    for table in sorted(expected.tables - actual.tables):
        found.append(f"table {table}: missing from the database")
    for table in sorted(actual.tables - expected.tables):
        found.append(f"table {table}: in the database, not in the migrations")
    for table in sorted(actual.tables & expected.tables):
        live = {col[0]: col for col in actual.columns.get(table, ())}
        wanted = {col[0]: col for col in expected.columns.get(table, ())}
        for name in sorted(wanted.keys() - live.keys()):
            found.append(f"column {table}.{name}: missing from the database")
        for name in sorted(live.keys() - wanted.keys()):
            found.append(f"column {table}.{name}: in the database, not in the migrations")
        for name in sorted(live.keys() & wanted.keys()):
            _, live_type, live_null, live_default = live[name]
            _, want_type, want_null, want_default = wanted[name]
            if live_type != want_type:
                found.append(
                    f"column {table}.{name}: type is {live_type}, migrations say {want_type}"
                )
            if live_null != want_null:
                found.append(
                    f"column {table}.{name}: {'nullable' if live_null else 'NOT NULL'} "
                    f"in the database, {'nullable' if want_null else 'NOT NULL'} in the migrations"
                )
            if live_default != want_default:
                found.append(
                    f"column {table}.{name}: default is {live_default or 'none'}, "
                    f"migrations say {want_default or 'none'}"
                )
    found += _set_differences("constraint", actual.constraints, expected.constraints)
    found += _set_differences("index", actual.indexes, expected.indexes)
    return found


def name_changes(actual: SchemaSnapshot, expected: SchemaSnapshot) -> list[str] | None:
    """SQL renaming ``actual``'s constraints and indexes to ``expected``'s names.

    Returns ``None`` when the two differ in more than names (each constraint and
    index must then pair up one to one by table, kind and definition).
    """
    renames: list[str] = []
    pairs = _pair_by_definition(
        {(t, k, d): n for t, n, k, d in actual.constraints},
        {(t, k, d): n for t, n, k, d in expected.constraints},
    )
    index_pairs = _pair_by_definition(
        {(t, _unnamed(d, n)): n for t, n, d in actual.indexes},
        {(t, _unnamed(d, n)): n for t, n, d in expected.indexes},
    )
    if pairs is None or index_pairs is None:
        return None
    for (table, *_), (old, new) in sorted(pairs.items()):
        if old != new:
            renames.append(f'ALTER TABLE "{table}" RENAME CONSTRAINT "{old}" TO "{new}"')
    for _key, (old, new) in sorted(index_pairs.items()):
        if old != new:
            renames.append(f'ALTER INDEX "{old}" RENAME TO "{new}"')
    return renames


def _pair_by_definition(
    actual: dict[tuple[str, ...], str], expected: dict[tuple[str, ...], str]
) -> dict[tuple[str, ...], tuple[str, str]] | None:
    if actual.keys() != expected.keys():
        return None
    return {key: (actual[key], expected[key]) for key in actual}


def _unnamed(definition: str, name: str) -> str:
    return definition.replace(f'"{name}"', "<name>", 1).replace(f" {name} ", " <name> ", 1)


def _set_differences(
    kind: str, actual: frozenset[tuple[str, ...]], expected: frozenset[tuple[str, ...]]
) -> list[str]:
    found = []
    for item in sorted(expected - actual):
        found.append(f"{kind} {item[1]} on {item[0]}: missing from the database ({item[-1]})")
    for item in sorted(actual - expected):
        found.append(
            f"{kind} {item[1]} on {item[0]}: in the database, not in the migrations ({item[-1]})"
        )
    return found


def _normalise(definition: str, schema: str) -> str:
    text = re.sub(rf'(?<![\w"])"?{re.escape(schema)}"?\.', "", definition)
    return re.sub(r"\bnow\(\)", "CURRENT_TIMESTAMP", text)
