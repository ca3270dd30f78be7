"""The ``orgschema`` command as a user runs it: output, exit codes, one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import asyncpg
import click
import pytest

from orgschema.cli import main
from orgschema.passwords import verify_password
from orgschema.piccolo_app import APP_CONFIG
from orgschema.seeding import DEVELOPMENT_PASSWORD, FIXTURE_ORGANIZATIONS, FIXTURE_USERS
from orgschema.tables import ALL_TABLES

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script the way a shell would."""
    script = Path(sys.executable).with_name("orgschema")
    return subprocess.run(
        [str(script), *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_dev_migrates_an_empty_database_and_lists_tables(
    empty_database, tmp_path: Path
) -> None:
    url = await empty_database()
    # From a directory with no piccolo_conf.py, orgschema uses its own.
    # --no-serve: everything `dev` does but serving the studio (tests/test_studio_cli.py).
    env = {"DATABASE_URL": url, "PICCOLO_CONF": "", "APP_ENV": ""}
    result = run_cli("dev", "--no-serve", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["table", "rows"]
    seeded = {
        "user": len(FIXTURE_USERS),
        "account": len(FIXTURE_USERS),
        "profile": len(FIXTURE_USERS),
        "organization": len(FIXTURE_ORGANIZATIONS),
        "organization_user": sum(len(user.memberships) for user in FIXTURE_USERS),
    }
    assert [line.split() for line in lines[1 : len(ALL_TABLES) + 1]] == [
        [table._meta.tablename, str(seeded.get(table._meta.tablename, 0))] for table in ALL_TABLES
    ]
    assert (
        lines[len(ALL_TABLES) + 1]
        == f"development login: admin@example.com / {DEVELOPMENT_PASSWORD}"
    )
    shipped = list(Path(APP_CONFIG.resolved_migrations_folder_path).glob("orgschema_*.py"))
    applied = re.search(r"applied (\d+) migration\(s\)", result.stderr)
    assert applied and int(applied.group(1)) >= len(shipped)
    again = run_cli("dev", "--no-serve", env=env, cwd=tmp_path)
    assert again.returncode == 0 and "migrations: up to date" in again.stderr
    assert "fixtures: all there already" in again.stderr
    assert again.stdout == result.stdout


async def test_dev_restores_the_development_admin_when_no_platform_admin_is_left(
    empty_database, tmp_path: Path
) -> None:
    url = await empty_database()
    env = {"DATABASE_URL": url, "PICCOLO_CONF": "", "APP_ENV": ""}
    assert run_cli("dev", "--no-serve", env=env, cwd=tmp_path).returncode == 0
    conn = await asyncpg.connect(url)
    try:
        demoted = await conn.execute(
            "UPDATE profile SET role = 'teacher' FROM \"user\" u "
            "WHERE profile.user_id = u.id AND u.email = 'admin@example.com'"
        )
        assert demoted == "UPDATE 1"

        result = run_cli("dev", "--no-serve", env=env, cwd=tmp_path)

        admins = await conn.fetch(
            'SELECT u.email, a.password FROM profile p JOIN "user" u ON u.id = p.user_id '
            'JOIN account a ON a."userId" = u.id AND a."providerId" = \'credential\' '
            "WHERE p.role = 'platform_admin'"
        )
    finally:
        await conn.close()
    assert result.returncode == 0, result.stderr
    assert "no platform admin was left: admin@example.com is one again" in result.stderr
    assert f"development login: admin@example.com / {DEVELOPMENT_PASSWORD}" in result.stdout
    assert [row["email"] for row in admins] == ["admin@example.com"]
    assert await verify_password(DEVELOPMENT_PASSWORD, admins[0]["password"])


@pytest.mark.parametrize("environment", ["staging", "production"])
async def test_dev_refuses_staging_and_production_before_writing_anything(
    empty_database, tmp_path: Path, environment: str
) -> None:
    url = await empty_database()
    env = {"DATABASE_URL": url, "PICCOLO_CONF": "", "APP_ENV": environment}
    result = run_cli("dev", "--no-serve", env=env, cwd=tmp_path)
    assert result.returncode == 7, result.stderr
    assert f"refusing to seed fixtures in {environment}" in result.stderr
    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    assert tables == []  # not even the migrations ran


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orgschema", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: orgschema [OPTIONS] COMMAND [ARGS]...")
    listed = re.findall(r"^  ([a-z-]+)  ", result.stdout.split("Commands:")[1], re.MULTILINE)
    assert listed == sorted(main.commands)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root:hunter2@127.0.0.1/db", "is not a PostgreSQL URI"),
        ("postgresql://postgres:hunter2@127.0.0.1:1/orgschema", "cannot connect to"),
        ("postgresql://postgres:hunter2@127.0.0.1:notaport/db", "is not a valid URI"),
    ],
)
def test_bad_database_url_gives_one_masked_line_and_exit_3(
    url: str, expected: str, tmp_path: Path
) -> None:
    result = run_cli("dev", env={"DATABASE_URL": url, "PICCOLO_CONF": ""}, cwd=tmp_path)
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def _doc_sections() -> dict[str, str]:
    """docs/cli.md cut into its ``## `orgschema COMMAND` `` sections, by command."""
    text = (ROOT / "docs" / "cli.md").read_text()
    parts = re.split(r"^## `orgschema ([a-z-]+)`.*$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_command_and_option_is_documented_and_has_help() -> None:
    sections = _doc_sections()
    assert set(main.commands) <= set(sections), "commands without a section in docs/cli.md"
    for name, command in main.commands.items():
        assert command.help, f"orgschema {name} has no help text"
        for parameter in command.params:
            if not isinstance(parameter, click.Option) or parameter.hidden:
                continue
            assert parameter.help, f"orgschema {name} {parameter.opts[0]} has no help"
            flag = max(parameter.opts, key=len)
            assert f"`{flag}" in sections[name], f"docs/cli.md does not describe {name} {flag}"


def test_a_no_op_migrate_never_imports_black(database_url: str, tmp_path: Path) -> None:
    # Piccolo's app registry imports black, for writing migration files; no
    # orgschema command writes one, so the CLI defers it (see _defer_black).
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "orgschema", "migrate"],
        env={**os.environ, "DATABASE_URL": database_url, "PICCOLO_CONF": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s)" in result.stdout
    imported = re.findall(r"^import time:.*\| +(\S+)$", result.stderr, re.MULTILINE)
    assert "piccolo.conf.apps" in imported
    assert [name for name in imported if name.split(".")[0] == "black"] == []
