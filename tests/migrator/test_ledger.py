"""What the database remembers: checksums of applied files, adoption of Piccolo's runs."""

from __future__ import annotations

import sys
import uuid

import pytest

from orgschema import __version__
from orgschema.errors import AppliedMigrationModified, UnknownAppliedMigration
from orgschema.migrator import LEDGER_TABLE, migrate, migration_status
from tests.databases import execute, fetch
from tests.migrator.kit import (
    Project,
    ledger,
    migration_id,
    tables,
    with_user,
)


async def test_edited_applied_migration_is_refused_with_a_diff_before_anything_runs(
    project: Project,
) -> None:
    project.add_app("shop", [("create", ['CREATE TABLE "item" (id int)'])])
    project.register("shop")
    await project.migrate()
    applied = project.migration_path("shop", 1)
    applied.write_text(applied.read_text().replace('"item" (id int)', '"item" (id bigint)'))
    project.add_migration("shop", 2, "next", ['CREATE TABLE "next_one" (id int)'])

    with pytest.raises(AppliedMigrationModified) as refused:
        await project.migrate()
    message = str(refused.value)
    assert f"shop:{migration_id(1)}" in message
    assert "-STATEMENTS = ['CREATE TABLE \"item\" (id int)']" in message
    assert "+STATEMENTS = ['CREATE TABLE \"item\" (id bigint)']" in message
    assert "next_one" not in await tables(project.database_url)

    states = {m.migration_id: (m.state, m.checksum) for m in (await project.status()).migrations}
    assert states == {migration_id(1): ("applied", "edited"), migration_id(2): ("pending", "-")}


async def test_restoring_an_edited_file_is_accepted_again_in_the_same_process(
    project: Project,
) -> None:
    project.add_app("shop", [("create", ['CREATE TABLE "item" (id int)'])])
    project.register("shop")
    await project.migrate()
    path = project.migration_path("shop", 1)
    original = path.read_text()
    path.write_text(original + "\n# edited\n")
    with pytest.raises(AppliedMigrationModified):
        await project.migrate()
    path.write_text(original)
    assert (await project.migrate()).applied == ()


async def test_migrations_applied_by_plain_piccolo_are_adopted(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    forwards = project.piccolo("migrations", "forwards", "all")
    assert forwards.returncode == 0, forwards.stderr
    report = await project.migrate()
    assert report.applied == ()
    assert len([key for key in report.adopted if key.startswith("orgschema:")]) == len(
        [m for m in (await project.status()).migrations if m.app_name == "orgschema"]
    )
    rows = await fetch(project.database_url, f"SELECT how, sha256, source FROM {LEDGER_TABLE}")
    assert {row["how"] for row in rows} == {"adopted"}
    assert all(len(row["sha256"]) == 64 and "async def forwards" in row["source"] for row in rows)
    assert {m.checksum for m in (await project.status()).migrations} == {"ok"}


async def test_ledger_records_source_sql_duration_and_version(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    await project.migrate()
    rows = await fetch(
        project.database_url,
        f"SELECT migration_id, sql, duration_ms, orgschema_version, how FROM {LEDGER_TABLE} "
        "WHERE app_name = 'orgschema' ORDER BY migration_id",
    )
    assert {row["how"] for row in rows} == {"applied"}
    assert {row["orgschema_version"] for row in rows} == {__version__}
    assert all(row["duration_ms"] >= 0 for row in rows)
    assert 'CREATE TABLE "user"' in rows[0]["sql"]
    assert 'CREATE INDEX "session_userId_idx"' in rows[1]["sql"]
    # Piccolo agrees with what orgschema recorded.
    check = project.piccolo("migrations", "check")
    assert check.returncode == 0 and "| False" not in check.stdout


async def test_unknown_applied_migration_is_refused_and_fails_check(project: Project) -> None:
    project.add_app("shop", [("create", ['CREATE TABLE "item" (id int)'])])
    project.register("shop")
    await project.migrate()
    project.migration_path("shop", 1).unlink()
    with pytest.raises(UnknownAppliedMigration, match=f"shop:{migration_id(1)}"):
        await project.migrate()
    report = await project.check()
    assert not report.ok
    assert report.unknown_applied == (f"shop:{migration_id(1)}",)


async def test_piccolo_backwards_then_migrate_reapplies(project: Project) -> None:
    project.add_app(
        "shop", [("one", ['CREATE TABLE "one" (id int)']), ("two", ['CREATE TABLE "two" (id int)'])]
    )
    project.register("shop")
    await project.migrate()
    second = project.migration_path("shop", 2)
    second.write_text(
        second.read_text()
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
    assert len((await project.migrate()).adopted) == 2
    back = project.piccolo("migrations", "backwards", "shop", "--auto_agree")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "two" not in await tables(project.database_url)
    report = await project.migrate()
    assert [step.migration_id for step in report.applied] == [migration_id(2)]
    assert "two" in await tables(project.database_url)
    assert (await project.status()).problems == ()
    assert await ledger(project.database_url) == [
        ("shop", migration_id(1)),
        ("shop", migration_id(2)),
    ]


async def test_migrate_leaves_sys_path_alone(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    before = list(sys.path)
    for _ in range(3):
        await project.migrate()
        await project.status()
    assert sys.path == before


async def test_a_run_reads_no_applied_source_unless_a_file_was_edited(project: Project) -> None:
    """A role that may read every ledger column but ``source`` migrates, checks and reports."""
    project.register("orgschema.piccolo_app")
    await project.migrate()
    role = f"orgschema_test_{uuid.uuid4().hex[:8]}"
    await execute(
        project.database_url,
        f"""
        CREATE ROLE {role} LOGIN;
        GRANT SELECT ON migration TO {role};
        GRANT SELECT (app_name, migration_id, sha256) ON {LEDGER_TABLE} TO {role};
        """,
    )
    try:
        url = with_user(project.database_url, role)
        configs = project.app_configs()
        assert (await migrate(url, app_configs=configs)).applied == ()
        assert (await migration_status(url, app_configs=configs)).problems == ()
    finally:
        await execute(project.database_url, f"DROP OWNED BY {role}; DROP ROLE {role}")
