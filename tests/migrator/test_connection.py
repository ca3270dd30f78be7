"""Which connections the migrator accepts: none through a transaction pooler or to a standby.

Bad or unreachable databases and bad timeouts give one line and exit 3; a
transaction-mode PgBouncer is refused (exit 10) before any lock, a
session-mode one works; a read-only standby answers ``status`` and refuses
the rest (exit 11).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orgschema.cli import main
from orgschema.database import database_name
from orgschema.errors import ReadOnlyRefused
from orgschema.migrator import migrate
from orgschema.piccolo_app import APP_CONFIG
from tests.catalog import assert_matches_contract, read_schema
from tests.databases import execute, fetch
from tests.migrator.kit import (
    ORGSCHEMA,
    Project,
    finish,
    ledger,
    lock_holders,
    orgschema_migrations,
    tables,
)
from tests.standby import Standby, start_standby


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
def test_unreachable_database_is_one_line_exit_3(
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
    env = project.env(ORGSCHEMA_CONNECT_TIMEOUT="1")
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
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert ("TimeoutError" in lines[0]) == (where == "silent")
    assert "hunter2" not in result.stderr
    # ORGSCHEMA_CONNECT_TIMEOUT=1 is honoured (the default would wait 10 s).
    assert (time.monotonic() - started < 10) or where != "silent"


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "3000000", "-inf"])
@pytest.mark.parametrize("option", ["--lock-timeout", "--ddl-lock-timeout", "--statement-timeout"])
def test_a_bad_timeout_option_is_refused_with_exit_3(option: str, value: str) -> None:
    result = CliRunner().invoke(main, ["migrate", option, value])
    assert result.exit_code == 3, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and option in line


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORGSCHEMA_LOCK_TIMEOUT", "inf"),
        ("ORGSCHEMA_LOCK_TIMEOUT", "nan"),
        ("ORGSCHEMA_LOCK_TIMEOUT", "3000000"),
        ("ORGSCHEMA_DDL_LOCK_TIMEOUT", "-5"),
        ("ORGSCHEMA_DDL_RETRIES", "-1"),
        ("ORGSCHEMA_DDL_RETRIES", "2.5"),
        ("ORGSCHEMA_STATEMENT_TIMEOUT", "nan"),
        ("ORGSCHEMA_CONNECT_TIMEOUT", "0"),
    ],
)
def test_a_bad_timeout_variable_is_refused_with_exit_3(variable: str, value: str) -> None:
    result = CliRunner().invoke(main, ["migrate"], env={variable: value})
    assert result.exit_code == 3, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and variable in line


###############################################################################
# Poolers


@pytest.mark.concurrency
async def test_a_transaction_pooler_is_refused_before_the_lock_and_leaks_nothing(
    project: Project, pgbouncer
) -> None:
    project.register("orgschema.piccolo_app")
    bouncer = await pgbouncer(pool_mode="transaction", pool_size=3)
    through = {"MIGRATION_DATABASE_URL": bouncer.url(project.database_url)}
    migrators = [project.start("migrate", "--lock-timeout", "5", env=through) for _ in range(8)]
    results = [finish(process, timeout=120) for process in migrators]
    for code, _, err in results:
        assert code == 10, err
        (line,) = err.strip().splitlines()
        assert "transaction-mode pooler" in line and "MIGRATION_DATABASE_URL" in line
    assert await tables(project.database_url) == set()
    assert await lock_holders(project.database_url) == []
    # The refusals left no lock on the pooled server connections: a direct run goes ahead.
    direct = project.run("migrate", "--lock-timeout", "1")
    assert direct.returncode == 0, direct.stderr
    assert len(await ledger(project.database_url)) > orgschema_migrations()


async def test_a_session_pooler_works_and_the_lock_is_released_before_the_connection_returns(
    project: Project, pgbouncer
) -> None:
    # No reset query: nothing but the migrator itself would release the lock.
    bouncer = await pgbouncer(pool_mode="session", pool_size=2, server_reset_query="")
    url = bouncer.url(project.database_url)
    report = await migrate(url, app_configs=[APP_CONFIG])
    assert len([s for s in report.applied if s.app_name == "orgschema"]) == orgschema_migrations()
    pooled = await fetch(
        project.database_url,
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    assert pooled, "PgBouncer keeps the server connection for the next client"
    assert await lock_holders(project.database_url) == []
    assert (await migrate(url, app_configs=[APP_CONFIG])).applied == ()
    assert_matches_contract(await read_schema(project.database_url))


###############################################################################
# Read-only databases


@pytest.fixture(scope="module")
async def standby(server_url: str) -> AsyncIterator[Standby]:
    """A migrated primary and its hot standby, shared by this module's tests."""

    async def prepare(primary_url: str) -> None:
        await migrate(primary_url, app_configs=[APP_CONFIG])

    async with start_standby(server_url, prepare) as pair:
        yield pair


async def test_a_standby_answers_status_and_refuses_the_rest_in_one_line(
    standby: Standby, tmp_path: Path
) -> None:
    project = Project(path=tmp_path, database_url=standby.standby_url)
    project.register("orgschema.piccolo_app")
    status = project.run("status")
    assert status.returncode == 0, status.stderr
    assert "0 pending, 0 problem(s)" in status.stdout
    for command in (["migrate"], ["migrate", "--dry-run"], ["sql"], ["check"]):
        result = project.run(*command)
        assert result.returncode == 11, (command, result.stderr)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: ") and "read-only" in line and "primary" in line, line
    with pytest.raises(ReadOnlyRefused):
        await migrate(standby.standby_url, app_configs=[APP_CONFIG])


async def test_a_read_only_database_is_refused_before_anything_is_written(
    project: Project, server_url: str
) -> None:
    name = database_name(project.database_url)
    await execute(server_url, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    project.register("orgschema.piccolo_app")
    with pytest.raises(ReadOnlyRefused, match="read-only"):
        await project.migrate()
    with pytest.raises(ReadOnlyRefused):
        await project.check()
    assert (await project.status()).pending
    assert await tables(project.database_url) == set()
