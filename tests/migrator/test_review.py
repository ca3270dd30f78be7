"""Reviewing before applying: ``sql``/``--dry-run``, ``status`` and ``check``."""

from __future__ import annotations

import asyncio

import asyncpg
from piccolo.columns import Varchar
from piccolo.table import Table

from tests.databases import fetch
from tests.migrator.kit import (
    Project,
    orgschema_migrations,
    tables,
)


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
    # Nothing was applied, and neither command may say otherwise.
    for said in (result.stdout, result.stderr, dry.stdout, dry.stderr):
        assert "applied" not in said and "applying" not in said, said
    assert "previewing orgschema:" in result.stderr


async def test_dry_run_never_touches_the_live_tables(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    second = [m for m in (await project.status()).migrations if m.app_name == "orgschema"][1]
    await project.migrate(target=f"orgschema:{second.migration_id}")
    holder = await asyncpg.connect(project.database_url)
    try:
        async with holder.transaction():
            await holder.execute('LOCK TABLE "user" IN ACCESS EXCLUSIVE MODE')
            # It would wait for that lock forever if it touched "user".
            report = await asyncio.wait_for(project.migrate(dry_run=True), timeout=60)
    finally:
        await holder.close()
    assert any("ADD CONSTRAINT user_email_lower_check" in step.sql for step in report.applied)
    assert report.dry_run


async def test_status_lists_applied_and_pending(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    ids = [m.migration_id for m in (await project.status()).migrations if m.app_name == "orgschema"]
    assert len(ids) == orgschema_migrations()
    await project.migrate(target=f"orgschema:{ids[1]}")
    report = await project.status()
    states = [(m.state, m.checksum) for m in report.migrations if m.app_name == "orgschema"]
    assert states[:2] == [("applied", "ok"), ("applied", "ok")]
    assert set(states[2:]) == {("pending", "-")}
    assert len(report.pending) == len(states) - 2 and report.problems == ()
    text = project.run("status")
    assert text.returncode == 0
    assert f"{len(states) - 2} pending, 0 problem(s)" in text.stdout


async def test_check_passes_on_a_migrated_database_and_ignores_other_tables(
    project: Project,
) -> None:
    project.register("orgschema.piccolo_app")
    await project.migrate()
    await fetch(project.database_url, 'CREATE TABLE "someone_elses" (id int)')
    report = await project.check()
    assert report.ok, report


async def test_check_finds_hand_made_schema_changes(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    await project.migrate()
    for statement in (
        'ALTER TABLE "profile" ADD COLUMN "nickname" text',
        'DROP INDEX "session_userId_idx"',
        'ALTER TABLE "organization_user" ALTER COLUMN "role" SET DEFAULT \'coach\'',
        'ALTER TABLE "user" DROP CONSTRAINT "user_email_lower_check"',
    ):
        await fetch(project.database_url, statement)
    drift = (await project.check()).drift
    assert "column profile.nickname: in the database, not in the migrations" in drift
    assert any(
        line.startswith("index session_userId_idx on session: missing from the database")
        for line in drift
    )
    assert (
        "column organization_user.role: default is 'coach'::text, migrations say 'teacher'::text"
        in drift
    )
    assert any(
        line.startswith("constraint user_email_lower_check on user: missing from the database")
        for line in drift
    )
    result = project.run("check")
    assert result.returncode == 5
    assert "database differs: column profile.nickname" in result.stdout


async def test_check_finds_table_classes_without_a_migration(project: Project) -> None:
    project.add_app("shop", [("create", ['CREATE TABLE "item" ("id" serial PRIMARY KEY)'])])

    class Item(Table, tablename="item"):
        name = Varchar()

    project.tables["shop"] = [Item]
    project.register("shop")
    await project.migrate()
    report = await project.check()
    assert not report.ok
    assert any(line.startswith("shop: ") for line in report.unmigrated_changes)
