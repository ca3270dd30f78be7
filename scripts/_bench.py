"""Shared by the benchmark scripts: a throwaway, migrated database on the configured server."""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def bench_database(keep: bool = False) -> AsyncIterator[str]:
    """Create ``orgschema_bench_<random>`` beside DATABASE_URL's database (or on the
    embedded server), migrate it, point Piccolo's engine at it, and drop it afterwards."""
    from orgschema.database import (
        drop_database,
        ensure_database,
        resolve_database_url,
        with_database,
    )

    url = with_database(resolve_database_url(), f"orgschema_bench_{uuid.uuid4().hex[:10]}")
    await ensure_database(url)
    # Before anything asks Piccolo for its engine, so that the tables use this database.
    os.environ["DATABASE_URL"] = url
    os.environ["PICCOLO_CONF"] = "orgschema.conf"
    try:
        from orgschema.migrator import migrate

        await migrate(url)
        yield url
    finally:
        if keep:
            print(f"kept {url}")
        else:
            await drop_database(url)


def summary(seconds: list[float]) -> str:
    """Median and mean of per-call timings, in microseconds."""
    return (
        f"median {statistics.median(seconds) * 1e6:8.1f} us, "
        f"mean {statistics.fmean(seconds) * 1e6:8.1f} us"
    )
