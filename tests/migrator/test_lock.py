"""One migrator at a time, as deploys see it: real processes racing, waiting and dying.

``ORGSCHEMA_RACE_ROUNDS`` (default 1; ``.ci/run`` sets 3) repeats the race on
fresh databases.
"""

from __future__ import annotations

import os
import re
import signal
import time

import asyncpg
import pytest

from orgschema.migrator import LOCK_KEY
from tests.capacity import concurrency
from tests.catalog import assert_matches_contract, read_schema
from tests.databases import fetch
from tests.migrator.kit import (
    Project,
    checksum_rows,
    eventually,
    finish,
    ledger,
    lock_holders,
    migrator_backends,
    orgschema_migrations,
    tables,
    waiting_migrator,
)

RACE_ROUNDS = int(os.environ.get("ORGSCHEMA_RACE_ROUNDS") or "1")


@pytest.mark.concurrency
async def test_sixteen_racing_migrators_apply_each_migration_once(
    project: Project, empty_database
) -> None:
    project.register("orgschema.piccolo_app")
    for round_number in range(RACE_ROUNDS):
        if round_number:
            project.database_url = await empty_database()
        # One connection each, as many as the shared server has room for (up to 16).
        racers = await concurrency(project.database_url, 16, least=4)
        processes = [project.start("migrate", "--lock-timeout", "120") for _ in range(racers)]
        results = [finish(p, timeout=300) for p in processes]
        failures = [(code, err) for code, _, err in results if code != 0]
        assert failures == [], failures[:2]
        rows = await ledger(project.database_url)
        assert len(rows) == len(set(rows)), "a migration was recorded twice"
        assert len([app for app, _ in rows if app == "orgschema"]) == orgschema_migrations()
        assert await checksum_rows(project.database_url) == sorted(rows)
        applied = [
            int(re.search(r"applied (\d+) migration", out).group(1)) for _, out, _ in results
        ]
        # Whoever took the lock first applied everything; the others found nothing to do.
        assert sorted(applied) == [0] * (racers - 1) + [len(rows)]
        assert_matches_contract(await read_schema(project.database_url))


@pytest.mark.concurrency
async def test_waiter_names_the_holder_and_times_out_with_exit_4(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    holder = await asyncpg.connect(
        project.database_url, server_settings={"application_name": "deploy-42"}
    )
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        started = time.monotonic()
        result = project.run("migrate", "--lock-timeout", "1")
        assert result.returncode == 4
        assert time.monotonic() - started < 30
        assert f"pid {holder.get_server_pid()}" in result.stderr
        assert "deploy-42" in result.stderr
        assert await tables(project.database_url) == set()

        waiter = project.start("migrate", "--lock-timeout", "60")
        await eventually(
            lambda: waiting_migrator(project.database_url), "a waiting migrator", processes=[waiter]
        )
        assert waiter.poll() is None
        await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        code, _, err = finish(waiter)
        assert code == 0, err
        assert "got the migration lock" in err
    finally:
        await holder.close()
    assert len(await ledger(project.database_url)) > orgschema_migrations()


@pytest.mark.concurrency
async def test_a_killed_waiter_leaves_no_session_behind(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    holder = await asyncpg.connect(project.database_url)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        waiter = project.start("migrate", "--lock-timeout", "600")
        pid = await eventually(
            lambda: waiting_migrator(project.database_url), "a waiting migrator", processes=[waiter]
        )
        waiter.send_signal(signal.SIGKILL)
        finish(waiter)

        async def gone() -> bool:
            rows = await fetch(
                project.database_url, "SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid
            )
            return not rows

        await eventually(gone, f"the killed waiter's backend {pid} to go", within=10)
        # Nothing queues behind it: the next migrator just waits for the live holder.
        assert await lock_holders(project.database_url) == [holder.get_server_pid()]
    finally:
        await holder.close()


@pytest.mark.concurrency
async def test_a_killed_holder_frees_the_lock_within_seconds(project: Project) -> None:
    project.add_app("slow", [("sleep", ["SELECT pg_sleep(120)"])])
    project.register("slow")
    migrator = project.start("migrate")

    async def sleeping() -> bool:
        return any(
            row["query"] == "SELECT pg_sleep(120)" and row["state"] == "active"
            for row in await migrator_backends(project.database_url)
        )

    await eventually(sleeping, "the migration's statement", processes=[migrator])
    migrator.send_signal(signal.SIGKILL)
    finish(migrator)

    async def free() -> bool:
        return not await lock_holders(project.database_url)

    # The statement would run for two minutes; the server notices the dead client first.
    await eventually(free, "the killed holder's lock to go", within=15)
    assert await ledger(project.database_url) == []


@pytest.mark.concurrency
async def test_concurrent_index_in_the_holders_run_does_not_wait_for_a_waiter(
    project: Project,
) -> None:
    """A waiter holds no snapshot that ``CREATE INDEX CONCURRENTLY`` would wait for."""
    url = project.database_url
    project.add_app(
        "shop",
        [
            ("table", ['CREATE TABLE "item" (id int)']),
            ("gate", ['SELECT count(*) FROM "gate"']),
        ],
    )
    project.add_migration(
        "shop", 3, "index", ['CREATE INDEX CONCURRENTLY "item_id_idx" ON "item" ("id")'], False
    )
    project.register("shop")
    await fetch(url, 'CREATE TABLE "gate" (id int)')
    gate = await asyncpg.connect(url)
    try:
        closed = gate.transaction()
        await closed.start()
        await gate.execute('LOCK TABLE "gate" IN ACCESS EXCLUSIVE MODE')
        holder = project.start("migrate", "--ddl-lock-timeout", "120")

        async def holder_at_the_gate() -> bool:
            rows = await fetch(
                url,
                "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'gate' AND NOT l.granted",
            )
            return bool(rows)

        await eventually(holder_at_the_gate, "the holder to wait at the gate", processes=[holder])
        waiter = project.start("migrate", "--lock-timeout", "30")
        await eventually(lambda: waiting_migrator(url), "a waiting migrator", processes=[waiter])
        await closed.commit()
        holder_result = finish(holder, timeout=60)
        waiter_result = finish(waiter, timeout=60)
    finally:
        await gate.close()
    assert holder_result[0] == 0, holder_result[2]
    assert waiter_result[0] == 0, waiter_result[2]
    assert "applied 3 migration(s)" in holder_result[1]
    indexes = await fetch(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'item'")
    assert [row["indexname"] for row in indexes] == ["item_id_idx"]


@pytest.mark.concurrency
async def test_a_waiter_whose_connection_is_terminated_says_so_in_one_line(
    project: Project,
) -> None:
    project.register("orgschema.piccolo_app")
    holder = await asyncpg.connect(project.database_url)
    try:
        assert await holder.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
        waiter = project.start("migrate", "--lock-timeout", "600")
        pid = await eventually(
            lambda: waiting_migrator(project.database_url), "a waiting migrator", processes=[waiter]
        )
        await holder.execute("SELECT pg_terminate_backend($1)", pid)
        code, _, err = finish(waiter, timeout=60)
    finally:
        await holder.close()
    assert code == 12, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("error: the connection to the database was lost"), err
    assert "while waiting for the migration lock" in lines[-1]
    assert "Nothing was applied by this run" in lines[-1]
    assert "Traceback" not in err
    assert len([line for line in lines if line.startswith("error: ")]) == 1
    assert await tables(project.database_url) == set()
