"""Adopting a database the original (Drizzle) stack created: ``--baseline``, and no trap without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orgschema.errors import BaselineRequired, SchemaDriftError
from tests.catalog import assert_matches_contract, read_schema
from tests.databases import execute, fetch
from tests.migrator.kit import (
    Project,
    ledger,
    tables,
)

DRIZZLE = (Path(__file__).resolve().parents[1] / "fixtures" / "drizzle_original.sql").read_text()


async def test_baseline_adopts_a_database_the_original_system_created(project: Project) -> None:
    project.register("orgschema.piccolo_app")
    await execute(project.database_url, DRIZZLE)
    await fetch(
        project.database_url,
        'INSERT INTO "user" (id, name, email, "emailVerified") '
        "VALUES ('u1', 'Ada', 'ada@example.com', true)",
    )

    with pytest.raises(SchemaDriftError) as refused:
        await project.migrate(baseline=True)
    assert 'RENAME CONSTRAINT "user_email_unique" TO "user_email_key"' in str(refused.value)
    assert await ledger(project.database_url) == []

    adopted = await project.migrate(baseline=True, adopt_names=True)
    assert [key.split(":")[0] for key in adopted.baselined] == [
        "orgschema"
    ] * 2  # initial + indexes
    assert {step.app_name for step in adopted.applied} == {"user", "session_auth", "orgschema"}
    assert_matches_contract(await read_schema(project.database_url))
    emails = await fetch(project.database_url, 'SELECT email FROM "user"')
    assert [row["email"] for row in emails] == ["ada@example.com"]
    assert (await project.check()).ok


async def test_baseline_refuses_a_database_that_differs_and_records_nothing(
    project: Project,
) -> None:
    project.register("orgschema.piccolo_app")
    await execute(project.database_url, DRIZZLE)
    await fetch(project.database_url, 'ALTER TABLE "profile" DROP COLUMN "updated_at"')
    with pytest.raises(
        SchemaDriftError, match=r"column profile\.updated_at: missing from the database"
    ):
        await project.migrate(baseline=True, adopt_names=True)
    assert await ledger(project.database_url) == []


async def test_plain_migrate_of_a_drizzle_database_refuses_before_applying_anything(
    project: Project,
) -> None:
    project.register("orgschema.piccolo_app")
    await execute(project.database_url, DRIZZLE)
    before = await tables(project.database_url)

    with pytest.raises(BaselineRequired) as refused:
        await project.migrate()
    message = str(refused.value)
    assert "orgschema: " in message and '"user"' in message and "--baseline" in message
    # Not even Piccolo's own apps, nor a ledger: the database is as it was.
    assert await tables(project.database_url) == before

    status = await project.status()
    assert [(u.app_name, "user" in u.tables) for u in status.untracked] == [("orgschema", True)]
    text = project.run("status")
    assert text.returncode == 5, text.stdout + text.stderr
    assert "orgschema: tables present without migration history:" in text.stdout
    assert "run `orgschema migrate --baseline`" in text.stdout

    # And --baseline still adopts it afterwards.
    adopted = await project.migrate(baseline=True, adopt_names=True)
    assert len(adopted.baselined) == 2
    assert (await project.check()).ok
