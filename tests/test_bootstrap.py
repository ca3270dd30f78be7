"""The first platform admin: once only, atomic, race-safe, marking deployed databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from orgschema import (
    AlreadyBootstrapped,
    ConfigurationError,
    EmailTaken,
    InvalidInputError,
    Role,
    Settings,
    bootstrap_first_admin,
    setup_required,
)
from orgschema.cli import main
from orgschema.passwords import verify_password
from tests.better_auth_kit import harness
from tests.capacity import concurrency
from tests.databases import MakeDatabase
from tests.rows import admin_rows, row_counts

pytestmark = pytest.mark.usefixtures("clean_tables")

PRODUCTION = Settings(environment="production")
DEVELOPMENT = Settings(environment="development")


async def test_creates_user_credential_and_platform_admin_profile(database_url: str) -> None:
    assert await setup_required(database_url=database_url)

    report = await bootstrap_first_admin(
        email="  Founder@Example.COM ",
        password="correct horse battery",
        name=" Grace Founder ",
        database_url=database_url,
        settings=PRODUCTION,
    )

    (row,) = await admin_rows(database_url)
    assert (report.user_id, report.email, report.name) == (
        row["id"],
        "founder@example.com",
        "Grace Founder",
    )
    assert (row["email"], row["name"], row["role"]) == (
        report.email,
        "Grace Founder",
        Role.PLATFORM_ADMIN,
    )
    assert row["organization_id"] is None and row["emailVerified"] is False
    assert (row["providerId"], row["accountId"]) == ("credential", row["id"])
    assert len(row["id"]) == 32 and row["id"].isalnum()
    assert await verify_password("correct horse battery", row["password"])
    assert not await setup_required(database_url=database_url)


def test_the_new_admin_signs_in_through_better_auth(node: str, database_url: str) -> None:
    asyncio.run(
        bootstrap_first_admin(
            email="founder@example.com",
            password="correct horse battery",
            name="Founder",
            database_url=database_url,
            settings=PRODUCTION,
        )
    )
    code, lines, stderr = harness(
        node, database_url, "sign-in", "founder@example.com", "correct horse battery"
    )
    assert code == 0, stderr
    assert lines[-1]["ok"] is True


async def test_a_second_admin_is_refused_and_nothing_is_written(database_url: str) -> None:
    await bootstrap_first_admin(
        email="a@example.com",
        password="password-one",
        name="A",
        database_url=database_url,
        settings=PRODUCTION,
    )
    before = await row_counts(database_url)

    with pytest.raises(AlreadyBootstrapped, match="sign in as that admin") as refused:
        await bootstrap_first_admin(
            email="b@example.com",
            password="password-two",
            name="B",
            database_url=database_url,
            settings=PRODUCTION,
        )

    assert refused.value.exit_code == 8 and refused.value.status_code == 409
    assert await row_counts(database_url) == before


@pytest.mark.concurrency
async def test_concurrent_calls_make_exactly_one_admin(migrated_database: MakeDatabase) -> None:
    # A private database: whatever this race leaves, no other test sees it.
    url = await migrated_database()
    callers = await concurrency(url, 50)

    async def attempt(n: int) -> str:
        try:
            await bootstrap_first_admin(
                email=f"racer{n}@example.com",
                password="racing password",
                name=f"Racer {n}",
                database_url=url,
                settings=PRODUCTION,
            )
        except AlreadyBootstrapped:
            return "refused"
        return "created"

    # Each call opens its own connection: real concurrent sessions, as many as
    # the shared server has room for (up to 50).
    outcomes = await asyncio.gather(*(attempt(n) for n in range(callers)))

    assert sorted(outcomes).count("created") == 1
    assert outcomes.count("refused") == callers - 1
    assert len(await admin_rows(url)) == 1
    counts = await row_counts(url)
    assert (counts["user"], counts["account"], counts["profile"], counts["environment_marker"]) == (
        1,
        1,
        1,
        1,
    )


@pytest.mark.parametrize(
    ("email", "password", "name", "field"),
    [
        ("not-an-email", "long enough", "N", "email"),
        ("a@b", "long enough", "N", "email"),
        ("a@example.com", "short", "N", "password"),
        ("a@example.com", "x" * 129, "N", "password"),
        ("a@example.com", "🔑🔑🔑", "N", "password"),  # 6 UTF-16 units, as Better-auth counts
        ("a@example.com", "long enough", "   ", "name"),
        ("a@example.com", "long enough", "x" * 201, "name"),
        ("a@example.com", "long\x00enough", "N", "password"),
        ("a@example.com", "long enough", "N\ud800", "name"),
        (None, "long enough", "N", "email"),
        ("a@example.com", 12345678, "N", "password"),
    ],
)
async def test_invalid_input_names_the_field_and_writes_nothing(
    database_url: str, email: object, password: object, name: object, field: str
) -> None:
    with pytest.raises(InvalidInputError) as invalid:
        await bootstrap_first_admin(
            email=email,
            password=password,
            name=name,
            database_url=database_url,
            settings=PRODUCTION,  # type: ignore[arg-type]
        )
    assert invalid.value.field == field
    assert invalid.value.exit_code == 2
    assert sum((await row_counts(database_url)).values()) == 0


async def test_password_length_is_counted_as_better_auth_counts_it(database_url: str) -> None:
    # Four emoji are 8 UTF-16 code units: Better-auth accepts them, so must we.
    report = await bootstrap_first_admin(
        email="emoji@example.com",
        password="🔑🔑🔑🔑",
        name="E",
        database_url=database_url,
        settings=PRODUCTION,
    )
    (row,) = await admin_rows(database_url)
    assert row["id"] == report.user_id
    assert await verify_password("🔑🔑🔑🔑", row["password"])


async def test_an_email_already_signed_up_is_refused(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO "user" (id, name, email, "emailVerified") VALUES ('u1', 'U', 'taken@example.com', false)"""
        )
    finally:
        await conn.close()

    with pytest.raises(EmailTaken) as taken:
        await bootstrap_first_admin(
            email="Taken@example.com",
            password="long enough",
            name="T",
            database_url=database_url,
            settings=PRODUCTION,
        )

    assert taken.value.field == "email"
    assert await row_counts(database_url) == {
        **dict.fromkeys(await row_counts(database_url), 0),
        "user": 1,
    }


@pytest.mark.parametrize(
    ("environment", "marked"),
    [
        ("production", True),
        ("staging", True),
        (None, True),
        ("qa", True),
        ("development", False),
        ("test", False),
    ],
)
async def test_only_development_and_test_leave_the_database_unmarked(
    database_url: str, environment: str | None, marked: bool
) -> None:
    report = await bootstrap_first_admin(
        email="a@example.com",
        password="long enough",
        name="A",
        database_url=database_url,
        settings=Settings(environment=environment),
    )
    assert report.marked is marked
    conn = await asyncpg.connect(database_url)
    try:
        markers = await conn.fetch("SELECT environment FROM environment_marker")
    finally:
        await conn.close()
    assert [row["environment"] for row in markers] == ([environment] if marked else [])


async def test_an_unmigrated_database_says_to_migrate(empty_database) -> None:
    url = await empty_database()
    with pytest.raises(ConfigurationError, match="piccolo migrations forwards all"):
        await bootstrap_first_admin(
            email="a@example.com",
            password="long enough",
            name="A",
            database_url=url,
            settings=PRODUCTION,
        )


def run_bootstrap(
    *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("APP_ENV", "NODE_ENV", "ORGSCHEMA_ADMIN_PASSWORD")
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("orgschema")), "bootstrap", *args],
        env={**clean, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_reads_the_password_from_the_environment_and_refuses_a_second_time(
    database_url: str,
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "APP_ENV": "production",
        "ORGSCHEMA_ADMIN_PASSWORD": "from the env var",
    }

    first = run_bootstrap("--email", "ops@example.com", "--name", "Ops", env=env)
    second = run_bootstrap("--email", "other@example.com", "--name", "Other", env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created platform admin ops@example.com (user id ")
    assert "from the env var" not in first.stdout + first.stderr
    assert "marked the database as bootstrapped under production" in first.stderr
    assert second.returncode == 8
    assert "a platform admin exists already" in second.stderr
    (row,) = asyncio.run(admin_rows(database_url))
    assert asyncio.run(verify_password("from the env var", row["password"]))


def test_cli_prompts_for_the_password_twice(database_url: str) -> None:
    result = CliRunner().invoke(
        main,
        ["bootstrap", "--email", "prompted@example.com", "--name", "Prompted"],
        input="typed at the prompt\ntyped at the prompt\n",
        env={
            "DATABASE_URL": database_url,
            "APP_ENV": "development",
            "ORGSCHEMA_ADMIN_PASSWORD": None,
        },
    )
    assert result.exit_code == 0, result.output
    assert "typed at the prompt" not in result.output
    (row,) = asyncio.run(admin_rows(database_url))
    assert asyncio.run(verify_password("typed at the prompt", row["password"]))


def test_cli_has_no_password_option_and_rejects_a_bad_email(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "ORGSCHEMA_ADMIN_PASSWORD": "long enough"}
    on_argv = run_bootstrap(
        "--email", "a@example.com", "--name", "A", "--password", "long enough", env=env
    )
    bad = run_bootstrap("--email", "nope", "--name", "A", env=env)
    assert on_argv.returncode == 2 and "No such option '--password'" in on_argv.stderr
    assert bad.returncode == 2 and "not a valid e-mail address" in bad.stderr
    assert sum(asyncio.run(row_counts(database_url)).values()) == 0
