#!/usr/bin/env python3
"""Migration speed, each figure beside its floor, from one run on one server.

    python scripts/bench_migrate.py [--runs N]

Uses DATABASE_URL's server (or the embedded one) and creates, then drops, its
own databases. Prints (medians of N runs; the machine may be shared, so run
it a few times):

1. migrate-to-head of an empty database in-process, beside the floor: the same
   SQL (as recorded in orgschema's ledger) sent as one script in one
   transaction over a new asyncpg connection (both sides start unconnected;
   they alternate, so load hits both alike). Target: within 1.5x. For scale,
   the floor of the design itself: that SQL with what the guarantees add
   (the ledgers created, each migration in its own transaction with its two
   ledger rows), sent raw, one round trip per migration.
2. a no-op migrate in-process (nothing pending), with every check a run makes
   (session and standby check, lock, ledgers, checksums). Target: under 20 ms.
3. the same no-op run queued behind a live holder of the migration lock: the
   time from the holder's release to the run's end, beside the plain no-op.
   Target: within the waiters' longest poll (0.5 s) of the plain no-op.
4. ``orgschema migrate`` as a whole process with nothing pending, beside
   ``piccolo migrations forwards all`` doing the same. Target: no slower.
5. whole processes beside ``python -c 'import asyncpg'`` (the floor of any
   Python tool on asyncpg; the original stack's Drizzle runtime migrator
   measures about 1.9x it on this machine class): ``orgschema migrate`` with
   nothing pending (target 1.8x), ``python -c 'import orgschema'`` (1.7x) and
   ``orgschema --help`` (1.5x). The commands take turns, run after run, so
   load drifting during the benchmark hits each alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orgschema.database import (  # noqa: E402
    drop_database,
    ensure_database,
    resolve_database_url,
    with_database,
)
from orgschema.migrator import LOCK_KEY, MigrationReport  # noqa: E402


async def fresh(server: str) -> str:
    url = with_database(server, f"orgschema_bench_{uuid.uuid4().hex[:10]}")
    await ensure_database(url)
    return url


def line(
    label: str,
    value: float,
    floor: float | None,
    target: str,
    *,
    added: bool = False,
    paired: float | None = None,
) -> None:
    if not floor:
        ratio = "      "
    elif added:  # what it adds to the floor, rather than how many times the floor it is
        ratio = f"+{(value - floor) * 1000:.0f} ms"
    else:
        # The median of each run's own ratio, when runs came in pairs: load
        # that drifts during the benchmark then slows both sides of a pair.
        ratio = f"{paired if paired is not None else value / floor:5.2f}x"
    floor_text = f"{floor * 1000:9.1f} ms" if floor is not None else " " * 12
    print(f"{label:<52} {value * 1000:9.1f} ms  {floor_text}  {ratio}  target {target}")


async def behind_a_holder(url: str) -> float:
    """Seconds from a live holder's release of the lock to the end of a queued no-op migrate."""
    from orgschema.migrator import migrate

    holder = await asyncpg.connect(url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        run = asyncio.create_task(migrate(url))
        # Polling the catalog, in another process's view: no event to wait on.
        while not await holder.fetchval(  # noqa: ASYNC110
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'orgschema migrate' AND query LIKE '%pg_try_advisory_lock%'"
        ):
            await asyncio.sleep(0.005)
        # A deploy's waiter has usually waited a while: measure it in its slower polls.
        await asyncio.sleep(0.5)
        released = time.perf_counter()
        await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        await run
        return time.perf_counter() - released
    finally:
        await holder.close()


def design_scripts(report: MigrationReport) -> list[str]:
    """One script per migration: its SQL and ledger rows in its own transaction."""
    # The migrator's own ledger SQL, so that this floor writes exactly its rows.
    from orgschema.migrator import _ledger, _scripts

    shipped = {m.key: m for m in _scripts.shipped_migrations(_scripts.app_configs())}
    scripts = []
    for index, step in enumerate(report.applied):
        m = shipped[f"{step.app_name}:{step.migration_id}"]
        parts = ["BEGIN", "SET LOCAL synchronous_commit = off"]
        if index == 0:
            parts.append(_ledger.create_sql((False, False)))
        if not step.sql.startswith("--"):
            parts.append(step.sql.rstrip(";"))
        parts.append(
            _ledger.rows_sql(
                [m], how="applied", sql=step.sql, duration_ms=_ledger.SINCE_BEGIN, piccolo_row=True
            )
        )
        scripts.append(";\n".join([*parts, "COMMIT"]))
    return scripts


async def timed_raw(server: str, created: list[str], scripts: list[str]) -> float:
    """Seconds to send ``scripts`` to a fresh database over a new connection."""
    url = await fresh(server)
    created.append(url)
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        for script in scripts:
            await conn.execute(script)
    finally:
        await conn.close()
    return time.perf_counter() - started


async def main(runs: int) -> None:
    server = resolve_database_url()
    os.environ["DATABASE_URL"] = with_database(server, "postgres")
    os.environ.setdefault("PICCOLO_CONF", "orgschema.conf")
    from orgschema.migrator import migrate

    created: list[str] = []
    try:
        to_head, floors, designs = [], [], []
        for _ in range(runs):
            url = await fresh(server)
            created.append(url)
            started = time.perf_counter()
            report = await migrate(url)
            to_head.append(time.perf_counter() - started)
            sql = "\n".join(step.sql for step in report.applied if not step.sql.startswith("--"))
            floors.append(await timed_raw(server, created, [f"BEGIN;\n{sql}\nCOMMIT"]))
            designs.append(await timed_raw(server, created, design_scripts(report)))

        noop = []
        for _ in range(max(runs, 20)):
            started = time.perf_counter()
            await migrate(created[0])
            noop.append(time.perf_counter() - started)
        behind = [await behind_a_holder(created[0]) for _ in range(max(3, runs // 2))]

        env = {**os.environ, "DATABASE_URL": created[0], "PICCOLO_CONF": "orgschema.conf"}
        bin_dir = Path(sys.executable).parent

        def timed(*commands: list[str]) -> list[float]:
            """Median wall time of each command as a process, the commands taking turns."""
            samples: list[list[float]] = [[] for _ in commands]
            for _ in range(max(runs, 7)):
                for command, kept in zip(commands, samples, strict=True):
                    started = time.perf_counter()
                    subprocess.run(command, env=env, check=True, capture_output=True, cwd="/")
                    kept.append(time.perf_counter() - started)
            return [statistics.median(kept) for kept in samples]

        orgschema_cli = str(bin_dir / "orgschema")
        ours, piccolo, asyncpg_floor, imported, helped = timed(
            [orgschema_cli, "migrate"],
            [str(bin_dir / "piccolo"), "migrations", "forwards", "all"],
            [sys.executable, "-c", "import asyncpg"],
            [sys.executable, "-c", "import orgschema"],
            [orgschema_cli, "--help"],
        )

        print(f"server: {with_database(server, '')}   runs: {runs} (medians; ratios of pairs)")
        print(f"{'':<52} {'orgschema':>12}  {'floor':>12}  ratio")
        line(
            "migrate to head, empty database",
            statistics.median(to_head),
            statistics.median(floors),
            "<= 1.5x",
            paired=statistics.median(
                ours / floor for ours, floor in zip(to_head, floors, strict=True)
            ),
        )
        line(
            "  the design's floor (raw, with its ledgers)",
            statistics.median(designs),
            statistics.median(floors),
            "(for scale)",
            paired=statistics.median(d / floor for d, floor in zip(designs, floors, strict=True)),
        )
        line("no-op migrate, in-process", statistics.median(noop), None, "< 20 ms")
        line(
            "no-op migrate behind a live lock holder",
            statistics.median(behind),
            statistics.median(noop),
            "<= floor + 500 ms",
            added=True,
        )
        line("no-op `orgschema migrate` process vs piccolo", ours, piccolo, "<= 1.0x")
        line("no-op `orgschema migrate` process vs import asyncpg", ours, asyncpg_floor, "<= 1.8x")
        line("`import orgschema` process vs import asyncpg", imported, asyncpg_floor, "<= 1.7x")
        line("`orgschema --help` process vs import asyncpg", helped, asyncpg_floor, "<= 1.5x")
    finally:
        for url in created:
            await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
