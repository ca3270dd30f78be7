"""Talking to test databases from tests: one short-lived connection per call.

Tests read what a database holds (or change it behind orgschema's back)
through these, so the connect-run-close dance is written once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

#: What the ``empty_database`` and ``migrated_database`` fixtures give: a
#: coroutine making one more database and returning its URI.
MakeDatabase = Callable[[], Awaitable[str]]


async def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    """The rows of one query."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def fetchval(url: str, query: str, *args: object) -> Any:
    """The first value of the first row of one query."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def execute(url: str, script: str, *args: object) -> str:
    """Run one statement (or, without arguments, a script of several)."""
    conn = await asyncpg.connect(url)
    try:
        return await conn.execute(script, *args)
    finally:
        await conn.close()
