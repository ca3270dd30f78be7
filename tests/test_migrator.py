"""The deploy-time migrator, as a deploy step sees it: real processes, real PostgreSQL.

Each test builds a throwaway project (``tests/migrator_kit.py``) whose
``piccolo_conf.py`` registers orgschema and/or small example apps, and runs the
installed ``orgschema`` command on an empty throwaway database.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from orgschema.migrator import LEDGER_TABLE, LOCK_KEY
from orgschema.piccolo_app import APP_CONFIG
from tests.catalog import read_schema
from tests.migrator_kit import ORGSCHEMA, ROOT, Project
from tests.test_schema_contract import assert_matches_contract

MakeDatabase = Callable[[], Awaitable[str]]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
async def project(empty_database: MakeDatabase, tmp_path: Path) -> Project:
    return Project(path=tmp_path, database_url=await empty_database())


async def fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def execute(url: str, script: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(script)
    finally:
        await conn.close()


async def tables(url: str) -> set[str]:
    rows = await fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def ledger(url: str) -> list[tuple[str, str]]:
    rows = await fetch(url, "SELECT app_name, name FROM migration ORDER BY id")
    return [(row["app_name"], row["name"]) for row in rows]


def shipped_count() -> int:
    return len(list(Path(APP_CONFIG.resolved_migrations_folder_path).glob("orgschema_*.py")))


###############################################################################
# Lock


async def test_sixteen_racing_migrators_apply_each_migration_once(
    project: Project, empty_database
) -> None:
    project.register("orgschema.piccolo_app")
    for round_number in range(3):
        if round_number:
            project.database_url = await empty_database()
        processes = [project.start("migrate", "--lock-timeout", "120") for _ in range(16)]
        results = [(p.wait(timeout=300), p.stdout.read(), p.stderr.read()) for p in processes]
        for p in processes:
            p.stdout.close()
            p.stderr.close()
        assert [code for code, _, _ in results] == [0] * 16, [err for _, _, err in results if err][
            :2
        ]
        rows = await ledger(project.database_url)
        assert len(rows) == len(set(rows)), "a migration was recorded twice"
        ours = await fetch(
            project.database_url, f"SELECT app_name, migration_id FROM {LEDGER_TABLE}"
        )
        assert sorted((r["app_name"], r["migration_id"]) for r in ours) == sorted(rows)
        applied_counts = [
            int(re.search(r"applied (\d+) migration", out).group(1)) for _, out, _ in results
        ]
        assert sum(applied_counts) == len(rows)
        assert sorted(applied_counts)[:-1] == [0] * 15  # one migrator did all the work
        assert sum("waiting up to" in err for _, _, err in results) >= 1
        assert_matches_contract(await read_schema(project.database_url))


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
        await asyncio.sleep(3)
        assert waiter.poll() is None  # still waiting
        await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        assert waiter.wait(timeout=60) == 0
        assert "got the migration lock" in waiter.stderr.read()
        waiter.stdout.close()
        waiter.stderr.close()
    finally:
        await holder.close()
    assert len(await ledger(project.database_url)) >= shipped_count()


###############################################################################
# Atomicity


SLOW = [
    (
        f"step {n}",
        [
            f'CREATE TABLE "slow_{n}_a" (id int)',
            "SELECT pg_sleep(0.15)",
            f'CREATE TABLE "slow_{n}_b" (id int)',
        ],
    )
    for n in range(1, 7)
]


async def assert_at_a_migration_boundary(url: str) -> int:
    present = await tables(url)
    recorded = (
        {name for app, name in await ledger(url) if app == "slow"}
        if "migration" in present
        else set()
    )
    ours = set()
    if LEDGER_TABLE in present:
        ours = {
            r["migration_id"] for r in await fetch(url, f"SELECT migration_id FROM {LEDGER_TABLE}")
        }
    for n in range(1, 7):
        migration_id = f"2030-01-{n:02d}T00:00:00:000000"
        halves = {f"slow_{n}_a" in present, f"slow_{n}_b" in present}
        assert len(halves) == 1, f"migration {n} is half applied"
        assert (migration_id in recorded) == (f"slow_{n}_a" in present), f"ledger disagrees on {n}"
        assert (migration_id in ours) == (migration_id in recorded)
    return len(recorded)


async def test_sigkill_at_random_points_leaves_a_migration_boundary(project: Project) -> None:
    project.add_app("slow", SLOW)
    project.register("slow")
    rng = random.Random(20261125)
    for _ in range(6):
        process = project.start("migrate")
        await asyncio.sleep(rng.uniform(0.3, 2.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
        await assert_at_a_migration_boundary(project.database_url)
    result = project.run("migrate")
    assert result.returncode == 0, result.stderr
    assert await assert_at_a_migration_boundary(project.database_url) == 6


async def test_failing_migration_is_rolled_back_not_recorded_exit_6(project: Project) -> None:
    project.add_app(
        "shop",
        [
            ("good", ['CREATE TABLE "good" (id int)']),
            ("bad", ['CREATE TABLE "half" (id int)', "SELECT no_such_function()"]),
        ],
    )
    project.register("shop")
    result = project.run("migrate")
    assert result.returncode == 6
    assert "shop:2030-01-02T00:00:00:000000 (bad) failed and was rolled back" in result.stderr
    assert "no_such_function" in result.stderr
    assert "Traceback" not in result.stderr
    assert {"good", "half"} & await tables(project.database_url) == {"good"}
    assert await ledger(project.database_url) == [("shop", "2030-01-01T00:00:00:000000")]


###############################################################################
# Checksums and adoption


async def test_edited_applied_migration_is_refused_with_a_diff_before_anything_runs(
    project: Project,
) -> None:
    project.add_app("shop", [("create", ['CREATE TABLE "item" (id int)'])])
    project.register("shop")
    assert project.run("migrate").returncode == 0
    applied = project.path / "shop" / "piccolo_migrations" / "shop_2030_01_01t00_00_00_000000.py"
    applied.write_text(applied.read_text().replace('"item" (id int)', '"item" (id bigint)'))
    project.add_migration("shop", 2, "next", ['CREATE TABLE "next_one" (id int)'])

    result = project.run("migrate")
    assert result.returncode == 5
    assert "shop:2030-01-01T00:00:00:000000" in result.stderr
    assert "-STATEMENTS = ['CREATE TABLE \"item\" (id int)']" in result.stderr
    assert "+STATEMENTS = ['CREATE TABLE \"item\" (id bigint)']" in result.stderr
    assert "next_one" not in await tables(project.database_url)

    status = project.run("status", "--json")
    assert status.returncode == 5
    states = {m["id"]: (m["state"], m["checksum"]) for m in json.loads(status.stdout)["migrations"]}
    assert states == {
        "2030-01-01T00:00:00:000000": ("applied", "edited"),
        "2030-01-02T00:00:00:000000": ("pending", "-"),
    }


async def test_migrations_applied_by_plain_piccolo_are_adopted(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    forwards = project.piccolo("migrations", "forwards", "all")
    assert forwards.returncode == 0, forwards.stderr
    result = project.run("migrate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("adopted orgschema:") == shipped_count()
    rows = await fetch(project.database_url, f"SELECT how, sha256, source FROM {LEDGER_TABLE}")
    assert {row["how"] for row in rows} == {"adopted"}
    assert all(len(row["sha256"]) == 64 and "async def forwards" in row["source"] for row in rows)
    status = project.run("status", "--json")
    assert {m["checksum"] for m in json.loads(status.stdout)["migrations"]} == {"ok"}


async def test_ledger_records_source_sql_duration_and_version(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    assert project.run("migrate").returncode == 0
    rows = await fetch(
        project.database_url,
        f"SELECT migration_id, sql, duration_ms, orgschema_version, how FROM {LEDGER_TABLE} "
        "WHERE app_name = 'orgschema' ORDER BY migration_id",
    )
    from orgschema import __version__

    assert {row["how"] for row in rows} == {"applied"}
    assert {row["orgschema_version"] for row in rows} == {__version__}
    assert all(row["duration_ms"] >= 0 for row in rows)
    assert 'CREATE TABLE "user"' in rows[0]["sql"]
    assert 'CREATE INDEX "session_userId_idx"' in rows[1]["sql"]
    # Piccolo agrees with what orgschema recorded.
    check = project.piccolo("migrations", "check")
    assert check.returncode == 0 and "| False" not in check.stdout


async def test_unknown_applied_migration_is_refused(project: Project) -> None:
    project.add_app("shop", [("create", ['CREATE TABLE "item" (id int)'])])
    project.register("shop")
    assert project.run("migrate").returncode == 0
    (project.path / "shop" / "piccolo_migrations" / "shop_2030_01_01t00_00_00_000000.py").unlink()
    result = project.run("migrate")
    assert result.returncode == 5
    assert "shop:2030-01-01T00:00:00:000000" in result.stderr


###############################################################################
# Review: sql, dry run, status


async def test_sql_prints_the_pending_sql_and_changes_nothing(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    result = project.run("sql")
    assert result.returncode == 0, result.stderr
    assert 'CREATE TABLE "user" (' in result.stdout
    assert (
        'CREATE INDEX "verification_identifier_idx" ON "verification" ("identifier");'
        in result.stdout
    )
    assert "ADD CONSTRAINT user_email_lower_check CHECK (email = lower(email));" in result.stdout
    assert await tables(project.database_url) == set()
    dry = project.run("migrate", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.split("would apply")[0] == result.stdout
    assert await tables(project.database_url) == set()


async def test_status_lists_applied_and_pending(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    before = project.run("status", "--json")
    ids = [m["id"] for m in json.loads(before.stdout)["migrations"] if m["app"] == "orgschema"]
    assert project.run("migrate", "--target", f"orgschema:{ids[1]}").returncode == 0
    status = project.run("status", "--json")
    assert status.returncode == 0
    states = [
        (m["state"], m["checksum"])
        for m in json.loads(status.stdout)["migrations"]
        if m["app"] == "orgschema"
    ]
    assert states[:2] == [("applied", "ok"), ("applied", "ok")]
    assert set(states[2:]) == {("pending", "-")}
    text = project.run("status")
    assert f"{len(states) - 2} pending, 0 problem(s)" in text.stdout


###############################################################################
# check


async def test_check_passes_on_a_migrated_database_and_ignores_other_tables(
    project: Project,
) -> None:
    project.register("orgschema.piccolo_app")
    assert project.run("migrate").returncode == 0
    await fetch(project.database_url, 'CREATE TABLE "someone_elses" (id int)')
    result = project.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok:" in result.stdout


async def test_check_finds_hand_made_schema_changes(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    assert project.run("migrate").returncode == 0
    for statement in (
        'ALTER TABLE "profile" ADD COLUMN "nickname" text',
        'DROP INDEX "session_userId_idx"',
        'ALTER TABLE "organization_user" ALTER COLUMN "role" SET DEFAULT \'coach\'',
        'ALTER TABLE "user" DROP CONSTRAINT "user_email_lower_check"',
    ):
        await fetch(project.database_url, statement)
    result = project.run("check")
    assert result.returncode == 5
    assert "column profile.nickname: in the database, not in the migrations" in result.stdout
    assert "index session_userId_idx on session: missing from the database" in result.stdout
    assert (
        "column organization_user.role: default is 'coach'::text, migrations say 'teacher'::text"
        in result.stdout
    )
    assert "constraint user_email_lower_check on user: missing from the database" in result.stdout


async def test_check_finds_table_classes_without_a_migration(project: Project) -> None:
    package = project.add_app(
        "shop", [("create", ['CREATE TABLE "item" ("id" serial PRIMARY KEY)'])]
    )
    (package / "tables.py").write_text(
        "from piccolo.columns import Varchar\nfrom piccolo.table import Table\n\n\n"
        "class Item(Table, tablename='item'):\n    name = Varchar()\n"
    )
    app = (package / "piccolo_app.py").read_text()
    (package / "piccolo_app.py").write_text(
        app.replace("table_classes=[]", "table_classes=[Item]").replace(
            "from piccolo.conf.apps import AppConfig",
            "from piccolo.conf.apps import AppConfig\n\nfrom shop.tables import Item",
        )
    )
    project.register("shop")
    assert project.run("migrate").returncode == 0
    result = project.run("check")
    assert result.returncode == 5
    assert "not in any migration: shop:" in result.stdout


###############################################################################
# Baseline


async def test_baseline_adopts_a_database_the_original_system_created(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    await execute(project.database_url, (FIXTURES / "drizzle_original.sql").read_text())
    await fetch(
        project.database_url,
        "INSERT INTO \"user\" (id, name, email, \"emailVerified\") VALUES ('u1', 'Ada', 'ada@example.com', true)",
    )

    refused = project.run("migrate", "--baseline")
    assert refused.returncode == 5
    assert 'RENAME CONSTRAINT "user_email_unique" TO "user_email_key"' in refused.stderr
    assert await ledger(project.database_url) == []

    adopted = project.run("migrate", "--baseline", "--adopt-names")
    assert adopted.returncode == 0, adopted.stderr
    assert adopted.stdout.count("baselined orgschema:") == 2  # initial + better_auth_indexes
    assert "applied orgschema:" in adopted.stderr  # the later ones ran normally
    assert_matches_contract(await read_schema(project.database_url))
    assert [
        row["email"] for row in await fetch(project.database_url, 'SELECT email FROM "user"')
    ] == ["ada@example.com"]
    assert project.run("check").returncode == 0


async def test_baseline_refuses_a_database_that_differs_and_records_nothing(
    project: Project,
) -> None:
    project.register("orgschema.piccolo_app")
    await execute(project.database_url, (FIXTURES / "drizzle_original.sql").read_text())
    await fetch(project.database_url, 'ALTER TABLE "profile" DROP COLUMN "updated_at"')
    result = project.run("migrate", "--baseline", "--adopt-names")
    assert result.returncode == 5
    assert "column profile.updated_at: missing from the database" in result.stderr
    assert await ledger(project.database_url) == []


###############################################################################
# In-process API and errors


async def test_migrate_in_process_on_an_explicit_url(empty_database: MakeDatabase) -> None:
    from orgschema import migrate

    url = await empty_database()
    report = await migrate(url)
    assert len(report.applied) >= shipped_count()
    assert all(step.seconds >= 0 and step.sql for step in report.applied)
    again = await migrate(url)
    assert again.applied == () and again.lock_wait_seconds == 0
    assert_matches_contract(await read_schema(url))


async def test_concurrent_in_process_runs_take_turns_and_restore_the_engine(
    empty_database: MakeDatabase,
) -> None:
    from piccolo.engine.finder import engine_finder

    from orgschema import migrate

    configured = engine_finder()
    url = await empty_database()
    first, second = await asyncio.gather(migrate(url), migrate(url))
    assert sorted([len(first.applied), len(second.applied)])[0] == 0
    assert len(first.applied) + len(second.applied) >= shipped_count()
    assert engine_finder() is configured


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung server or firewall)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.mark.parametrize(
    ("where", "own_conf"),
    [
        ("refused", True),
        ("refused", False),
        ("bad-parameter", True),
        ("bad-parameter", False),
        # A service's own engine probes the server on import with asyncpg's
        # 60 s default unless its config sets a timeout (docs/deploy.md);
        # orgschema's own configuration never probes.
        ("silent", False),
    ],
)
def test_unreachable_database_is_one_line_exit_3_within_ten_seconds(
    tmp_path: Path, silent_server: int, where: str, own_conf: bool
) -> None:
    url = {
        "refused": "postgresql://postgres:hunter2@127.0.0.1:1/nope",
        "silent": f"postgresql://postgres:hunter2@127.0.0.1:{silent_server}/nope",
        "bad-parameter": "postgresql://postgres:hunter2@127.0.0.1:1/nope?sslmode=bogus",
    }[where]
    project = Project(path=tmp_path, database_url=url)
    if own_conf:
        project.register("orgschema.piccolo_app")
    env = project.env()
    if not own_conf:  # orgschema's own configuration, as on a bare machine
        env.pop("PICCOLO_CONF")
    started = time.monotonic()
    result = subprocess.run(
        [str(ORGSCHEMA), "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 15  # the 10 s connect timeout plus start-up
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert ("TimeoutError" in lines[0]) == (where == "silent")
    assert "hunter2" not in result.stderr


async def test_piccolo_backwards_then_migrate_reapplies(project: Project) -> None:
    project.add_app(
        "shop", [("one", ['CREATE TABLE "one" (id int)']), ("two", ['CREATE TABLE "two" (id int)'])]
    )
    project.register("shop")
    assert project.run("migrate").returncode == 0
    (
        project.path / "shop" / "piccolo_migrations" / "shop_2030_01_02t00_00_00_000000.py"
    ).write_text(
        (project.path / "shop" / "piccolo_migrations" / "shop_2030_01_02t00_00_00_000000.py")
        .read_text()
        .replace(
            "    manager.add_raw(run)",
            "    manager.add_raw(run)\n    manager.add_raw_backwards(drop)",
        )
        .replace(
            "    async def run():",
            "    async def drop():\n        await engine_finder().run_ddl('DROP TABLE \"two\"')\n\n    async def run():",
        )
    )
    # The edit above changes an applied file: record the new checksum the honest way.
    await execute(project.database_url, f"DELETE FROM {LEDGER_TABLE}")
    assert project.run("migrate").returncode == 0  # adopts both again
    back = project.piccolo("migrations", "backwards", "shop", "--auto_agree")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "two" not in await tables(project.database_url)
    result = project.run("migrate")
    assert result.returncode == 0, result.stderr
    assert "two" in await tables(project.database_url)
    assert project.run("status").returncode == 0


async def test_migration_outside_a_transaction_runs_and_replays(project: Project) -> None:
    project.add_app("shop", [("table", ['CREATE TABLE "item" (id int)'])])
    project.add_migration(
        "shop", 2, "index", ['CREATE INDEX CONCURRENTLY "item_id_idx" ON "item" ("id")'], False
    )
    project.register("shop")
    preview = project.run("sql")
    assert preview.returncode == 0, preview.stderr
    assert 'CREATE INDEX CONCURRENTLY "item_id_idx"' in preview.stdout
    result = project.run("migrate")
    assert result.returncode == 0, result.stderr
    assert "runs outside a transaction" in result.stderr
    indexes = await fetch(
        project.database_url, "SELECT indexname FROM pg_indexes WHERE tablename = 'item'"
    )
    assert [row["indexname"] for row in indexes] == ["item_id_idx"]
    assert project.run("check").returncode == 0


async def test_sql_never_touches_the_live_tables(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    statuses = json.loads(project.run("status", "--json").stdout)["migrations"]
    ids = [m["id"] for m in statuses if m["app"] == "orgschema"]
    assert project.run("migrate", "--target", f"orgschema:{ids[1]}").returncode == 0
    holder = await asyncpg.connect(project.database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE')
        result = project.run("sql", timeout=60)  # would wait forever on the lock
        await transaction.rollback()
    finally:
        await holder.close()
    assert result.returncode == 0, result.stderr
    assert "ADD CONSTRAINT user_email_lower_check" in result.stdout


def test_bench_migrate_prints_each_figure_beside_its_floor() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_migrate.py"), "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for label in (
        "migrate to head",
        "no-op migrate, in-process",
        "no-op `orgschema migrate` process",
    ):
        (line,) = [line for line in result.stdout.splitlines() if line.startswith(label)]
        assert " ms " in line and "target" in line


def test_migrate_script_is_the_same_command() -> None:
    script = ROOT / "scripts" / "migrate.py"
    assert script.is_file()
    assert os.access(script, os.X_OK)
