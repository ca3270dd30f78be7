"""Applying migrations: each atomic with its ledger rows, whatever kills the migrator."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time

import asyncpg
import pytest
from piccolo.engine.finder import engine_finder

from orgschema.errors import MigrationBlocked, MigrationFailed
from orgschema.migrator import LEDGER_TABLE, migrate
from orgschema.piccolo_app import APP_CONFIG
from tests.catalog import assert_matches_contract, read_schema
from tests.databases import fetch
from tests.migrator.kit import (
    Project,
    eventually,
    finish,
    ledger,
    migration_id,
    migrator_backends,
    orgschema_migrations,
    tables,
)

SLEEP = "SELECT pg_sleep(0.3)"
SLOW = [
    (
        f"step {n}",
        [f'CREATE TABLE "slow_{n}_a" (id int)', SLEEP, f'CREATE TABLE "slow_{n}_b" (id int)'],
    )
    for n in range(1, 7)
]


async def assert_at_a_migration_boundary(url: str) -> int:
    """Every slow migration is wholly applied and recorded, or not at all; returns how many are."""
    present = await tables(url)
    recorded = {name for app, name in await ledger(url) if app == "slow"}
    ours = set()
    if LEDGER_TABLE in present:
        ours = {
            r["migration_id"] for r in await fetch(url, f"SELECT migration_id FROM {LEDGER_TABLE}")
        }
    for n in range(1, 7):
        halves = {f"slow_{n}_a" in present, f"slow_{n}_b" in present}
        assert len(halves) == 1, f"migration {n} is half applied"
        assert (migration_id(n) in recorded) == (f"slow_{n}_a" in present), (
            f"ledger disagrees on {n}"
        )
        assert (migration_id(n) in ours) == (migration_id(n) in recorded)
    return len(recorded)


@pytest.mark.concurrency
async def test_sigkill_at_random_points_leaves_a_migration_boundary(project: Project) -> None:
    project.add_app("slow", SLOW)
    project.register("slow")
    url = project.database_url
    rng = random.Random(20261125)
    for _ in range(6):
        done = await assert_at_a_migration_boundary(url)
        process = project.start("migrate")
        if done < 5 and rng.random() < 0.5:
            # Right after some migrations committed: wherever the next one is.
            target = done + rng.randint(1, 5 - done)

            async def committed(target: int = target) -> bool:
                return len([1 for app, _ in await ledger(url) if app == "slow"]) >= target

            await eventually(committed, f"{target} slow migrations", processes=[process])
        else:
            # In the middle of a migration, between its two tables.
            async def sleeping() -> bool:
                return any(
                    row["query"] == SLEEP and row["state"] == "active"
                    for row in await migrator_backends(url)
                )

            await eventually(sleeping, "a migration in the middle", processes=[process])
        process.send_signal(signal.SIGKILL)
        finish(process, timeout=30)
        await assert_at_a_migration_boundary(url)
    await project.migrate()
    assert await assert_at_a_migration_boundary(url) == 6


async def test_failing_migration_is_rolled_back_and_not_recorded(project: Project) -> None:
    project.add_app(
        "shop",
        [
            ("good", ['CREATE TABLE "good" (id int)']),
            ("bad", ['CREATE TABLE "half" (id int)', "SELECT no_such_function()"]),
        ],
    )
    project.register("shop")
    with pytest.raises(MigrationFailed) as failed:
        await project.migrate()
    assert f"shop:{migration_id(2)} (bad) failed and was rolled back" in str(failed.value)
    assert "no_such_function" in str(failed.value)
    assert {"good", "half"} & await tables(project.database_url) == {"good"}
    assert await ledger(project.database_url) == [("shop", migration_id(1))]


async def test_migration_outside_a_transaction_runs_and_replays(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    project.add_app("shop", [("table", ['CREATE TABLE "item" (id int)'])])
    project.add_migration(
        "shop", 2, "index", ['CREATE INDEX CONCURRENTLY "item_id_idx" ON "item" ("id")'], False
    )
    project.register("shop")
    preview = await project.migrate(dry_run=True)
    assert 'CREATE INDEX CONCURRENTLY "item_id_idx"' in preview.applied[1].sql
    with caplog.at_level(logging.WARNING, logger="orgschema"):
        await project.migrate()
    assert f"shop:{migration_id(2)} runs outside a transaction" in caplog.text
    indexes = await fetch(
        project.database_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'item'"
    )
    assert [row["indexname"] for row in indexes] == ["item_id_idx"]
    assert (await project.check()).ok


async def test_migrate_in_process_on_an_explicit_url(project: Project) -> None:
    report = await migrate(project.database_url)  # the registry of the active piccolo_conf
    ours = [step for step in report.applied if step.app_name == "orgschema"]
    assert len(ours) == orgschema_migrations()
    assert all(step.seconds >= 0 and step.sql for step in report.applied)
    again = await migrate(project.database_url)
    assert again.applied == () and again.lock_wait_seconds == 0
    assert_matches_contract(await read_schema(project.database_url))


@pytest.mark.concurrency
async def test_concurrent_in_process_runs_take_turns_and_restore_the_engine(
    project: Project,
) -> None:
    configured = engine_finder()
    project.register("orgschema.piccolo_app")
    first, second = await asyncio.gather(project.migrate(), project.migrate())
    assert sorted([len(first.applied), len(second.applied)])[0] == 0
    assert len(first.applied) + len(second.applied) == len(await ledger(project.database_url))
    assert engine_finder() is configured
    assert APP_CONFIG.app_name in {step.app_name for step in first.applied + second.applied}


###############################################################################
# Locks held by the application


async def _profile_alter_queued(url: str) -> bool:
    """Whether a migrator's statement waits for a lock on ``profile``."""
    rows = await fetch(
        url,
        "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE c.relname = 'profile' AND NOT l.granted AND a.application_name = 'orgschema migrate'",
    )
    return bool(rows)


@pytest.mark.concurrency
async def test_ddl_queues_reads_for_at_most_one_lock_timeout_then_names_the_blockers(
    project: Project,
) -> None:
    url = project.database_url
    project.register("orgschema.piccolo_app")
    await project.migrate()
    project.add_app(
        "shop",
        [
            (
                "nickname",
                [
                    'CREATE TABLE "half" (id int)',
                    'ALTER TABLE "profile" ADD COLUMN "nickname" text',
                ],
            )
        ],
    )
    project.register("orgschema.piccolo_app", "shop")
    reader = await asyncpg.connect(url, server_settings={"application_name": "report-reader"})
    probe = await asyncpg.connect(url, server_settings={"statement_timeout": "20s"})
    try:
        read = reader.transaction()
        await read.start()
        await reader.fetchval('SELECT count(*) FROM "profile"')  # holds ACCESS SHARE until the end
        migrator = project.start("migrate", "--ddl-lock-timeout", "0.5", "--ddl-retries", "2")
        await eventually(
            lambda: _profile_alter_queued(url), "the ALTER to queue", processes=[migrator]
        )
        # A plain read queues behind the waiting ALTER, and only until its lock timeout.
        started = time.monotonic()
        await probe.fetchval('SELECT count(*) FROM "profile"')
        waited = time.monotonic() - started
        code, _, err = finish(migrator)
        await read.rollback()
    finally:
        await reader.close()
        await probe.close()
    assert waited < 0.5 + 2.5, f"a read waited {waited:.1f} s behind the migration"
    assert code == 9, err
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert f"shop:{migration_id(1)} (nickname) waited more than 0.5 s for a table lock" in line
    assert "each of its 3 attempt(s)" in line and "nothing of it is applied" in line
    assert f"pid {reader.get_server_pid()} (report-reader, idle in transaction" in line
    assert "last query: 'SELECT count(*) FROM \"profile\"'" in line
    assert "Traceback" not in err
    assert "half" not in await tables(url)
    columns = await fetch(
        url,
        "SELECT 1 FROM pg_attribute WHERE attrelid = 'profile'::regclass AND attname = 'nickname'",
    )
    assert columns == []
    assert ("shop", migration_id(1)) not in await ledger(url)
    # With the reader gone, the same migration goes through.
    assert project.run("migrate").returncode == 0
    assert ("shop", migration_id(1)) in await ledger(url)


@pytest.mark.concurrency
async def test_a_migration_blocked_for_a_while_is_retried_and_applied(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    url = project.database_url
    project.add_app("shop", [("table", ['CREATE TABLE "item" (id int)'])])
    project.register("shop")
    await project.migrate()
    project.add_migration("shop", 2, "column", ['ALTER TABLE "item" ADD COLUMN "x" int'])
    reader = await asyncpg.connect(url)
    try:
        read = reader.transaction()
        await read.start()
        await reader.fetchval('SELECT count(*) FROM "item"')
        with caplog.at_level(logging.WARNING, logger="orgschema"):
            run = asyncio.create_task(project.migrate(ddl_lock_timeout=0.3, ddl_retries=50))

            # A retry that names the reader: how soon the first names it
            # depends on how fast the watcher connects, which a loaded
            # machine may not do within half of 0.3 s.
            async def retried_naming_the_reader() -> bool:
                return f"blocked by pid {reader.get_server_pid()} (" in caplog.text

            await eventually(retried_naming_the_reader, "a retry that names the reader")
            await read.rollback()
            report = await asyncio.wait_for(run, timeout=60)
    finally:
        await reader.close()
    assert [step.migration_id for step in report.applied] == [migration_id(2)]
    assert "trying again in" in caplog.text
    assert ("shop", migration_id(2)) in await ledger(url)


async def test_a_statement_over_the_statement_timeout_fails_the_migration(
    project: Project,
) -> None:
    project.add_app("shop", [("slow", ['CREATE TABLE "item" (id int)', "SELECT pg_sleep(30)"])])
    project.register("shop")
    with pytest.raises(MigrationFailed, match="statement timeout") as failed:
        await project.migrate(statement_timeout=0.2)
    assert "--statement-timeout" in str(failed.value)
    assert "item" not in await tables(project.database_url)
    assert await ledger(project.database_url) == []


@pytest.mark.concurrency
async def test_a_migration_outside_a_transaction_is_not_retried_after_a_lock_timeout(
    project: Project,
) -> None:
    url = project.database_url
    project.add_app("shop", [("table", ['CREATE TABLE "item" (id int)'])])
    project.register("shop")
    await project.migrate()
    project.add_migration(
        "shop", 2, "index", ['CREATE INDEX CONCURRENTLY "item_id_idx" ON "item" ("id")'], False
    )
    reader = await asyncpg.connect(url)
    try:
        # A snapshot older than the index build, which CONCURRENTLY waits out.
        read = reader.transaction(isolation="repeatable_read")
        await read.start()
        await reader.fetchval('SELECT count(*) FROM "item"')
        # One attempt only: time enough for the watcher to connect and look.
        with pytest.raises(MigrationBlocked) as blocked:
            await project.migrate(ddl_lock_timeout=2, ddl_retries=3)
        await read.rollback()
    finally:
        await reader.close()
    message = str(blocked.value)
    assert "runs outside a transaction, so it was not retried" in message
    assert blocked.value.blocking_pids == (reader.get_server_pid(),)
    assert ("shop", migration_id(2)) not in await ledger(url)
