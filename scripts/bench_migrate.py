#!/usr/bin/env python3
"""Migration speed, each figure beside its floor, from one run on one server.

    python scripts/bench_migrate.py [--runs N]

Uses DATABASE_URL's server (or the embedded one) and creates, then drops, its
own databases. Prints:

1. migrate-to-head of an empty database in-process, beside the floor: the same
   SQL (as recorded in orgschema's ledger) sent as one script in one
   transaction over a new asyncpg connection (both sides start unconnected).
   Target: within 1.5x.
2. a no-op migrate in-process (nothing pending). Target: under 20 ms.
3. ``orgschema migrate`` as a whole process with nothing pending, beside
   ``piccolo migrations forwards all`` doing the same. Target: no slower.
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


async def fresh(server: str) -> str:
    url = with_database(server, f"orgschema_bench_{uuid.uuid4().hex[:10]}")
    await ensure_database(url)
    return url


def line(label: str, value: float, floor: float | None, target: str) -> None:
    ratio = f"{value / floor:5.2f}x" if floor else "      "
    floor_text = f"{floor * 1000:9.1f} ms" if floor is not None else " " * 12
    print(f"{label:<44} {value * 1000:9.1f} ms  {floor_text}  {ratio}  target {target}")


async def main(runs: int) -> None:
    server = resolve_database_url()
    os.environ["DATABASE_URL"] = with_database(server, "postgres")
    os.environ.setdefault("PICCOLO_CONF", "orgschema.conf")
    from orgschema.migrator import migrate

    created: list[str] = []
    try:
        to_head, floors, sql = [], [], ""
        for _ in range(runs):
            url = await fresh(server)
            created.append(url)
            started = time.perf_counter()
            report = await migrate(url)
            to_head.append(time.perf_counter() - started)
            sql = "\n".join(step.sql for step in report.applied)

            floor_url = await fresh(server)
            created.append(floor_url)
            started = time.perf_counter()
            conn = await asyncpg.connect(floor_url)
            try:
                async with conn.transaction():
                    await conn.execute(sql)
            finally:
                await conn.close()
            floors.append(time.perf_counter() - started)

        noop = []
        for _ in range(max(runs, 20)):
            started = time.perf_counter()
            await migrate(created[0])
            noop.append(time.perf_counter() - started)

        env = {**os.environ, "DATABASE_URL": created[0], "PICCOLO_CONF": "orgschema.conf"}
        bin_dir = Path(sys.executable).parent

        def timed(command: list[str]) -> float:
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                subprocess.run(command, env=env, check=True, capture_output=True, cwd="/")
                samples.append(time.perf_counter() - started)
            return statistics.median(samples)

        ours = timed([str(bin_dir / "orgschema"), "migrate"])
        piccolo = timed([str(bin_dir / "piccolo"), "migrations", "forwards", "all"])

        print(f"server: {with_database(server, '')}   runs: {runs} (medians)")
        print(f"{'':<44} {'orgschema':>12}  {'floor':>12}  ratio")
        line(
            "migrate to head, empty database",
            statistics.median(to_head),
            statistics.median(floors),
            "<= 1.5x",
        )
        line("no-op migrate, in-process", statistics.median(noop), None, "< 20 ms")
        line("no-op `orgschema migrate` process vs piccolo", ours, piccolo, "<= 1.0x")
    finally:
        for url in created:
            await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
