"""Seeding: the environment gate, idempotent fixtures, bulk users, one transaction, the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from orgschema import (
    DEVELOPMENT_PASSWORD,
    ConfigurationError,
    EnvironmentRefused,
    InvalidInputError,
    MembershipRole,
    Role,
    Settings,
    bootstrap_first_admin,
    seed,
)
from orgschema._postgres import SETUP_LOCK_KEY
from orgschema.passwords import verify_password
from orgschema.seeding import (
    FIXTURE_ORGANIZATIONS,
    FIXTURE_USERS,
    ensure_development_admin,
    fixture_user_id,
)
from tests.locks import wait_for_advisory_lock_waiter
from tests.rows import row_counts, snapshot
from tests.terminal import run_on_terminal

pytestmark = pytest.mark.usefixtures("clean_tables")

ROOT = Path(__file__).resolve().parent.parent
NO_ENV = Settings()  # neither APP_ENV nor NODE_ENV


def cli(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the installed ``orgschema`` console script as a shell would."""
    clean = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "NODE_ENV")}
    return subprocess.run(
        [str(Path(sys.executable).with_name("orgschema")), *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


async def test_development_seeds_every_fixture(database_url: str) -> None:
    report = await seed("development", database_url=database_url)

    memberships = sum(len(user.memberships) for user in FIXTURE_USERS)
    assert (report.organizations, report.users, report.accounts, report.profiles) == (3, 5, 5, 5)
    assert report.memberships == memberships == 5
    assert report.synthetic_users == 0
    assert await row_counts(database_url) == {
        "user": 5,
        "session": 0,
        "account": 5,
        "verification": 0,
        "organization": 3,
        "organization_user": 5,
        "profile": 5,
        "environment_marker": 0,
    }
    conn = await asyncpg.connect(database_url)
    try:
        roles = await conn.fetch(
            'SELECT u.email, p.role FROM "user" u JOIN profile p ON p.user_id = u.id'
        )
        accounts = await conn.fetch(
            'SELECT "userId", "accountId", "providerId", password FROM account'
        )
        slugs = {row["slug"] for row in await conn.fetch("SELECT slug FROM organization")}
    finally:
        await conn.close()
    assert {row["role"] for row in roles} == {role.value for role in Role}
    assert slugs == {org.slug for org in FIXTURE_ORGANIZATIONS}
    for account in accounts:
        assert account["providerId"] == "credential"
        assert account["accountId"] == account["userId"]
        assert await verify_password(DEVELOPMENT_PASSWORD, account["password"])


async def test_fixture_ids_are_fixed_and_better_auth_shaped(database_url: str) -> None:
    await seed("test", database_url=database_url)
    conn = await asyncpg.connect(database_url)
    try:
        ids = {row["email"]: row["id"] for row in await conn.fetch('SELECT id, email FROM "user"')}
    finally:
        await conn.close()
    assert ids == {user.email: fixture_user_id(user.email) for user in FIXTURE_USERS}
    assert all(len(value) == 32 and value.isalnum() and value.isascii() for value in ids.values())


async def test_second_run_adds_nothing_changes_nothing_and_succeeds(database_url: str) -> None:
    await seed("development", users=12, database_url=database_url)
    before = await snapshot(database_url)

    again = await seed("development", users=12, database_url=database_url)

    assert not again.added_anything
    assert (again.organizations, again.users, again.memberships, again.synthetic_users) == (
        0,
        0,
        0,
        0,
    )
    assert await snapshot(database_url) == before


async def test_rows_edited_since_are_left_alone(database_url: str) -> None:
    await seed("development", database_url=database_url)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE organization SET name = 'Renamed' WHERE slug = 'hillcrest-college'"
        )
        await conn.execute("DELETE FROM organization_user WHERE role = 'coach'")
    finally:
        await conn.close()

    report = await seed("development", database_url=database_url)

    # The deleted membership comes back; the renamed organization stays renamed.
    assert (report.memberships, report.organizations, report.users) == (1, 0, 0)
    conn = await asyncpg.connect(database_url)
    try:
        name = await conn.fetchval("SELECT name FROM organization WHERE slug = 'hillcrest-college'")
    finally:
        await conn.close()
    assert name == "Renamed"


async def test_a_fixture_email_signed_up_elsewhere_is_completed_not_duplicated(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            'INSERT INTO "user" (id, name, email, "emailVerified") '
            "VALUES ('signed-up-elsewhere', 'Ada', 'admin@example.com', true)"
        )
    finally:
        await conn.close()

    report = await seed("development", database_url=database_url)

    assert report.users == 4
    conn = await asyncpg.connect(database_url)
    try:
        role = await conn.fetchval("SELECT role FROM profile WHERE user_id = 'signed-up-elsewhere'")
        accounts = await conn.fetchval(
            """SELECT count(*) FROM account WHERE "userId" = 'signed-up-elsewhere'"""
        )
    finally:
        await conn.close()
    assert (role, accounts) == (Role.PLATFORM_ADMIN.value, 1)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (Settings.from_env({"APP_ENV": "development"}), "development"),
        (Settings.from_env({"NODE_ENV": "test"}), "test"),
        (Settings.from_env({"APP_ENV": "test", "NODE_ENV": "production"}), "test"),
    ],
)
async def test_environment_comes_from_app_env_then_node_env(
    database_url: str, settings: Settings, expected: str
) -> None:
    report = await seed(database_url=database_url, settings=settings)
    assert report.environment.value == expected
    assert report.users == 5


@pytest.mark.parametrize(
    ("env", "settings", "message"),
    [
        ("production", NO_ENV, "orgschema bootstrap"),
        ("staging", NO_ENV, "/api/setup/first-run"),
        ("Production", NO_ENV, "in production"),
        ("dev", NO_ENV, "unknown environment 'dev'"),
        ("", NO_ENV, "unknown environment ''"),
        (None, NO_ENV, "no environment given"),
        (
            None,
            Settings.from_env({"APP_ENV": "production", "NODE_ENV": "development"}),
            "production",
        ),
        (None, Settings.from_env({"NODE_ENV": "staging"}), "staging"),
    ],
)
async def test_refusals_write_nothing(
    database_url: str, env: str | None, settings: Settings, message: str
) -> None:
    await seed("development", users=3, database_url=database_url)
    before = await snapshot(database_url)

    with pytest.raises(EnvironmentRefused, match=message) as refused:
        await seed(env, users=10, database_url=database_url, settings=settings)

    assert refused.value.exit_code == 7
    assert await snapshot(database_url) == before


async def test_a_database_bootstrapped_as_production_refuses_fixtures_even_in_development(
    database_url: str,
) -> None:
    await bootstrap_first_admin(
        email="root@example.org",
        password="a long production password",
        name="Root",
        database_url=database_url,
        settings=Settings(environment="production"),
    )
    before = await row_counts(database_url)

    with pytest.raises(EnvironmentRefused, match="bootstrapped under production"):
        await seed("development", users=5, database_url=database_url)

    assert await row_counts(database_url) == before


async def platform_admins(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(
            'SELECT u.email, a.password FROM profile p JOIN "user" u ON u.id = p.user_id '
            'LEFT JOIN account a ON a."userId" = u.id AND a."providerId" = \'credential\' '
            "WHERE p.role = 'platform_admin' ORDER BY u.email"
        )
    finally:
        await conn.close()


async def run_sql(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


DEMOTE_FIXTURE_ADMIN = (
    "UPDATE profile SET role = 'teacher' FROM \"user\" u "
    "WHERE profile.user_id = u.id AND u.email = 'admin@example.com'"
)


async def test_ensure_development_admin_restores_the_fixture_admin_only_when_none_is_left(
    database_url: str,
) -> None:
    await seed("development", database_url=database_url)
    assert await ensure_development_admin("development", database_url=database_url) is None

    await run_sql(database_url, DEMOTE_FIXTURE_ADMIN)
    await run_sql(
        database_url,
        "UPDATE profile SET role = 'platform_admin' FROM \"user\" u "
        "WHERE profile.user_id = u.id AND u.email = 'teacher@example.com'",
    )
    # Another platform admin exists: nobody is promoted.
    assert await ensure_development_admin("development", database_url=database_url) is None
    assert [row["email"] for row in await platform_admins(database_url)] == ["teacher@example.com"]

    await run_sql(database_url, "UPDATE profile SET role = 'teacher' WHERE role = 'platform_admin'")
    restored = await ensure_development_admin("test", database_url=database_url)

    assert restored == "admin@example.com"
    (admin,) = await platform_admins(database_url)
    assert admin["email"] == "admin@example.com"
    assert await verify_password(DEVELOPMENT_PASSWORD, admin["password"])


async def test_ensure_development_admin_recreates_a_renamed_fixture_admin(
    database_url: str,
) -> None:
    await seed("development", database_url=database_url)
    await run_sql(database_url, DEMOTE_FIXTURE_ADMIN)
    await run_sql(
        database_url,
        "UPDATE \"user\" SET email = 'renamed@example.com' WHERE email = 'admin@example.com'",
    )
    # Seeding again cannot bring admin@example.com back: its fixed id is taken.
    await seed("development", database_url=database_url)

    restored = await ensure_development_admin("development", database_url=database_url)

    assert restored == "admin@example.com"
    (admin,) = await platform_admins(database_url)
    assert admin["email"] == "admin@example.com"
    assert await verify_password(DEVELOPMENT_PASSWORD, admin["password"])
    assert (await row_counts(database_url))["environment_marker"] == 0


async def test_ensure_development_admin_refuses_deployed_environments(database_url: str) -> None:
    await seed("development", database_url=database_url)
    await run_sql(database_url, DEMOTE_FIXTURE_ADMIN)
    before = await snapshot(database_url)

    with pytest.raises(EnvironmentRefused, match="production"):
        await ensure_development_admin("production", database_url=database_url)
    with pytest.raises(EnvironmentRefused, match="no environment given"):
        await ensure_development_admin(database_url=database_url, settings=NO_ENV)

    assert await snapshot(database_url) == before


async def test_synthetic_users_have_a_profile_membership_and_credential(database_url: str) -> None:
    calls: list[tuple[int, int]] = []

    report = await seed(
        "development",
        users=25,
        database_url=database_url,
        progress=lambda *a: calls.append(a),
        batch_size=10,
    )

    assert report.synthetic_users == 25
    assert calls == [(0, 25), (10, 25), (20, 25), (25, 25)]
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            """
            SELECT u.email, p.role AS profile_role, p.organization_id, m.role AS member_role,
                   m.organization_id AS member_org, a."providerId", a."accountId" = u.id AS own, a.password
            FROM "user" u
            JOIN profile p ON p.user_id = u.id
            JOIN organization_user m ON m.user_id = u.id
            JOIN account a ON a."userId" = u.id
            WHERE u.email LIKE 'synthetic-%'
            ORDER BY u.email
            """
        )
    finally:
        await conn.close()
    assert [row["email"] for row in rows] == [
        f"synthetic-{n:06d}@example.com" for n in range(1, 26)
    ]
    assert all(row["providerId"] == "credential" and row["own"] for row in rows)
    assert all(row["profile_role"] == row["member_role"] for row in rows)
    assert all(row["organization_id"] == row["member_org"] for row in rows)
    assert {row["member_role"] for row in rows} == {role.value for role in MembershipRole}
    assert await verify_password(DEVELOPMENT_PASSWORD, rows[-1]["password"])


async def test_users_tops_up_to_n(database_url: str) -> None:
    first = await seed("development", users=10, database_url=database_url)
    same = await seed("development", users=10, database_url=database_url)
    more = await seed("development", users=14, database_url=database_url)
    fewer = await seed("development", users=3, database_url=database_url)

    assert [r.synthetic_users for r in (first, same, more, fewer)] == [10, 0, 4, 0]
    assert (await row_counts(database_url))["user"] == 5 + 14


async def test_a_failure_halfway_through_leaves_nothing(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        # Fails the membership COPY of the second batch, long after the
        # fixtures and the first batch were written in the same transaction.
        await conn.execute(
            """
            CREATE FUNCTION test_fail_late() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.user_id IN (SELECT id FROM "user" WHERE email = 'synthetic-000015@example.com')
              THEN RAISE EXCEPTION 'injected failure';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER test_fail_late BEFORE INSERT ON organization_user
              FOR EACH ROW EXECUTE FUNCTION test_fail_late();
            """
        )
        with pytest.raises(asyncpg.RaiseError, match="injected failure"):
            await seed("development", users=20, database_url=database_url, batch_size=10)
        assert await row_counts(database_url) == dict.fromkeys(await row_counts(database_url), 0)
    finally:
        await conn.execute(
            "DROP TRIGGER IF EXISTS test_fail_late ON organization_user; "
            "DROP FUNCTION IF EXISTS test_fail_late()"
        )
        await conn.close()


async def test_bad_arguments_are_refused_before_connecting() -> None:
    with pytest.raises(InvalidInputError) as bad:
        await seed("development", users=-1, database_url="postgresql://nobody@127.0.0.1:1/none")
    assert bad.value.field == "users"


async def test_an_unmigrated_database_says_to_migrate(empty_database) -> None:
    url = await empty_database()
    with pytest.raises(ConfigurationError, match="orgschema dev"):
        await seed("development", database_url=url)


def test_cli_refuses_production_with_exit_7_and_a_pointer(database_url: str) -> None:
    result = cli("seed", env={"DATABASE_URL": database_url, "APP_ENV": "production"})
    assert result.returncode == 7
    assert "orgschema bootstrap" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "command",
    [
        ["orgschema", "seed", "--env", "development", "--users", "3"],
        [sys.executable, "-m", "orgschema", "seed", "--users", "3"],
        [sys.executable, str(ROOT / "scripts" / "seed.py"), "--users", "3"],
    ],
    ids=["console-script", "python-m", "scripts-seed-py"],
)
def test_cli_seeds_and_reports_quietly_off_a_terminal(
    database_url: str, command: list[str]
) -> None:
    if command[0] == "orgschema":
        command[0] = str(Path(sys.executable).with_name("orgschema"))
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "NODE_ENV")}
    env.update(DATABASE_URL=database_url, NODE_ENV="development")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "seeded development: added 3 organization(s), 8 user(s) (3 synthetic)"
    )
    assert "━" not in result.stderr  # no progress bar when stderr is not a terminal
    again = run()
    assert again.returncode == 0
    assert "nothing to add" in again.stdout


def _on_terminal(database_url: str, *args: str, **env: str) -> tuple[int, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "NODE_ENV")}
    return run_on_terminal(
        [str(Path(sys.executable).with_name("orgschema")), "seed", *args],
        env={**base, "DATABASE_URL": database_url, **env},
        cwd=ROOT,
    )


def test_cli_draws_a_progress_bar_on_a_terminal(database_url: str) -> None:
    code, drawn = _on_terminal(database_url, "--env", "test", "--users", "50")
    assert code == 0
    assert "synthetic users" in drawn
    assert "50/50" in drawn


async def test_cli_draws_no_bar_without_synthetic_users(database_url: str) -> None:
    # Hold the setup lock so the seed waits in plain sight: a bar started
    # before there is anything to count would be drawn meanwhile.
    holder = await asyncpg.connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", SETUP_LOCK_KEY)
        running = asyncio.create_task(
            asyncio.to_thread(_on_terminal, database_url, "--env", "test")
        )
        await wait_for_advisory_lock_waiter(holder, SETUP_LOCK_KEY)
        await holder.execute("SELECT pg_advisory_unlock($1)", SETUP_LOCK_KEY)
        code, drawn = await running
    finally:
        await holder.close()
    assert code == 0, drawn
    assert "synthetic users" not in drawn, drawn
    assert "0/?" not in drawn
    assert "━" not in drawn


def test_cli_refusal_on_a_terminal_is_its_own_line_without_a_bar(database_url: str) -> None:
    code, drawn = _on_terminal(database_url, "--users", "50", APP_ENV="production")
    assert code == 7
    assert "━" not in drawn and "synthetic users" not in drawn
    assert drawn.startswith("error: refusing to seed fixtures in production")
