"""Every test runs against real PostgreSQL, in databases it creates and drops.

The server is the one ``DATABASE_URL`` names (its database is left alone) or,
when that is unset, the embedded server. The session gets one throwaway
database ``orgschema_test_<random>``, built by running the shipped migrations;
``DATABASE_URL`` and ``PICCOLO_CONF`` are pointed at it before anything asks
Piccolo for its engine. Tests that need an empty database of their own use
``empty_database``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest

from orgschema.database import (
    connect,
    database_name,
    drop_database,
    ensure_database,
    with_database,
)
from orgschema.settings import Settings
from tests.better_auth_kit import HARNESS
from tests.databases import MakeDatabase

# The studio's fixtures (make_client, seeded, clean_studio_logins).
pytest_plugins = ["tests.studio_kit"]

if TYPE_CHECKING:
    from tests.pooler import PgBouncer

StartPgBouncer = Callable[..., Awaitable["PgBouncer"]]


def _server_url() -> str:
    settings = Settings.from_env()
    if settings.database_url is not None:
        return settings.database_url
    from orgschema.embedded import start_embedded_server

    return start_embedded_server(settings.embedded_dir, "postgres")


SERVER_URL = _server_url()


def _throwaway_url() -> str:
    return with_database(SERVER_URL, f"orgschema_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URI of the test server (its maintenance database, never written to)."""
    return SERVER_URL


@pytest.fixture(scope="session", autouse=True)
async def database_url() -> AsyncIterator[str]:
    """The session's migrated throwaway database; Piccolo's engine points at it."""
    url = _throwaway_url()
    await ensure_database(url)
    previous = {key: os.environ.get(key) for key in ("DATABASE_URL", "PICCOLO_CONF")}
    os.environ["DATABASE_URL"] = url
    os.environ["PICCOLO_CONF"] = "piccolo_conf"
    from orgschema.migrator import migrate

    try:
        await migrate()
        yield url
    finally:
        await drop_database(url)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
async def empty_database() -> AsyncIterator[MakeDatabase]:
    """Create empty throwaway databases on the test server; all are dropped afterwards."""
    created: list[str] = []

    async def make() -> str:
        url = _throwaway_url()
        await ensure_database(url)
        created.append(url)
        return url

    yield make
    for url in created:
        await drop_database(url)


@pytest.fixture(scope="session")
async def _migrated_template(database_url: str) -> AsyncIterator[str]:
    """A database migrated once and never connected to again: the template of private copies."""
    url = _throwaway_url()
    await ensure_database(url)
    from orgschema.migrator import migrate

    try:
        await migrate(url)
        yield url
    finally:
        await drop_database(url)


@pytest.fixture
async def migrated_database(_migrated_template: str) -> AsyncIterator[MakeDatabase]:
    """Make private, migrated databases (copies of a template); all dropped afterwards.

    For tests that open many sessions or may leave rows behind: whatever
    happens in them, no other test sees it.
    """
    created: list[str] = []

    async def make() -> str:
        url = _throwaway_url()
        conn = await connect(with_database(SERVER_URL, "postgres"))
        try:
            await conn.execute(
                f'CREATE DATABASE "{database_name(url)}" TEMPLATE "{database_name(_migrated_template)}"'
            )
        finally:
            await conn.close()
        created.append(url)
        return url

    yield make
    for url in created:
        await drop_database(url)


@pytest.fixture
async def clean_tables(database_url: str) -> None:
    """Empty every orgschema table before the test, so no test sees another's rows.

    Before, not after: a test that failed (or was killed) halfway, or one that
    wrote without asking for this fixture, cannot leak rows into the next.
    """
    from orgschema.tables import ALL_TABLES

    names = ", ".join(f'"{table._meta.tablename}"' for table in ALL_TABLES)
    await ALL_TABLES[0].raw(f"TRUNCATE {names} CASCADE").run()


#: The Better-auth 1.7.25 harness (``harness.mjs``, ``server.mjs``) and its npm packages.
@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with the harness's npm packages installed.

    Skips (loudly) without Node.js and npm, or fails under ``ORGSCHEMA_REQUIRE_NODE=1``.
    """
    found = shutil.which("node")
    npm = shutil.which("npm")
    if not found or not npm:
        message = "Node.js and npm are needed for the Better-auth interop tests"
        if os.environ.get("ORGSCHEMA_REQUIRE_NODE") == "1":
            pytest.fail(message + " (ORGSCHEMA_REQUIRE_NODE=1)")
        pytest.skip("SKIPPED LOUDLY: " + message + "; install Node 20+ to run them")
    if not (HARNESS / "node_modules" / "better-auth").is_dir():
        subprocess.run(
            [npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=HARNESS, check=True, timeout=300
        )
    return found


@pytest.fixture
async def pgbouncer(server_url: str) -> AsyncIterator[StartPgBouncer]:
    """Start real PgBouncers in front of the test server: ``await pgbouncer(pool_mode=...)``.

    Takes the options of :func:`tests.pooler.start_pgbouncer` and returns a
    :class:`tests.pooler.PgBouncer` (``.url(database_url)`` goes through it);
    all are stopped after the test. Skips when Debian's ``pgbouncer`` is not
    installed, unless ``ORGSCHEMA_REQUIRE_PGBOUNCER=1`` (``.ci/run`` sets it).
    """
    from tests import pooler

    if not pooler.available():
        message = f"pgbouncer is not installed ({pooler.PGBOUNCER}): apt-get install pgbouncer"
        if os.environ.get("ORGSCHEMA_REQUIRE_PGBOUNCER") == "1":
            pytest.fail(message + " (ORGSCHEMA_REQUIRE_PGBOUNCER=1)")
        pytest.skip("SKIPPED LOUDLY: " + message)
    async with contextlib.AsyncExitStack() as stack:

        async def start(**options: Any) -> pooler.PgBouncer:
            return await stack.enter_async_context(pooler.start_pgbouncer(server_url, **options))

        yield start
