"""Throwaway Piccolo projects for migrator tests, run in-process or as the real CLI.

Each project is a folder with its own ``piccolo_conf.py`` (the database from
``DATABASE_URL``) registering orgschema and/or small example apps whose
migrations run raw SQL, so tests can make migrations slow, failing or edited.
In-process runs pass the same apps to the migrator with ``app_configs=``;
subprocess runs use the installed ``orgschema`` command, for what is about
processes (races, kills) or what the command prints and exits with.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from piccolo.conf.apps import AppConfig
from piccolo.table import Table

from orgschema.migrator import (
    LEDGER_TABLE,
    LOCK_KEY,
    CheckReport,
    MigrationReport,
    StatusReport,
    check_migrations,
    migrate,
    migration_status,
)
from tests.databases import fetch

if TYPE_CHECKING:
    from asyncpg import Record

ROOT = Path(__file__).resolve().parents[2]
ORGSCHEMA = Path(sys.executable).with_name("orgschema")
T = TypeVar("T")

MIGRATION = """\
from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = {migration_id!r}
VERSION = "1.38.0"
DESCRIPTION = {description!r}
STATEMENTS = {statements!r}


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name={app!r}, description=DESCRIPTION, wrap_in_transaction={wrap!r}
    )

    async def run():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(run)
    return manager
"""

APP = """\
from pathlib import Path

from piccolo.conf.apps import AppConfig

APP_CONFIG = AppConfig(
    app_name={app!r},
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[],
)
"""

CONF = """\
import os

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

DB = PostgresEngine(config={{"dsn": os.environ["DATABASE_URL"]}})
APP_REGISTRY = AppRegistry(apps={apps!r})
"""


def with_user(url: str, user: str) -> str:
    """``url`` signing in as ``user`` (no password: the test servers trust local logins)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}@{host}").geturl()


def orgschema_migrations() -> int:
    """How many migrations orgschema's own app ships."""
    from orgschema.piccolo_app import APP_CONFIG

    return len(list(Path(APP_CONFIG.resolved_migrations_folder_path).glob("orgschema_*.py")))


def migration_id(number: int) -> str:
    """The id :meth:`Project.add_migration` gives migration ``number``."""
    return f"2030-01-{number:02d}T00:00:00:000000"


@dataclass
class Project:
    path: Path
    database_url: str
    #: The registered apps: module paths (``orgschema.piccolo_app``) or kit app names.
    apps: list[str] = field(default_factory=list)
    #: Table classes of kit apps, for in-process runs.
    tables: dict[str, list[type[Table]]] = field(default_factory=dict)

    def add_app(
        self, app: str, migrations: list[tuple[str, list[str]]], *, wrap_in_transaction: bool = True
    ) -> Path:
        """Write an app whose migrations each run the given SQL statements."""
        package = self.path / app
        folder = package / "piccolo_migrations"
        folder.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")
        (folder / "__init__.py").write_text("")
        (package / "piccolo_app.py").write_text(APP.format(app=app))
        for number, (description, statements) in enumerate(migrations, start=1):
            self.add_migration(app, number, description, statements, wrap_in_transaction)
        return package

    def migration_path(self, app: str, number: int) -> Path:
        return (
            self.path
            / app
            / "piccolo_migrations"
            / f"{app}_2030_01_{number:02d}t00_00_00_000000.py"
        )

    def add_migration(
        self,
        app: str,
        number: int,
        description: str,
        statements: list[str],
        wrap_in_transaction: bool = True,
    ) -> Path:
        path = self.migration_path(app, number)
        path.write_text(
            MIGRATION.format(
                migration_id=migration_id(number),
                description=description,
                statements=statements,
                app=app,
                wrap=wrap_in_transaction,
            )
        )
        return path

    def register(self, *apps: str) -> None:
        self.apps = list(apps)
        modules = [app if "." in app else f"{app}.piccolo_app" for app in apps]
        (self.path / "piccolo_conf.py").write_text(CONF.format(apps=modules))

    ###########################################################################
    # In-process

    def app_configs(self) -> list[AppConfig]:
        """The registered apps, as the migrator's ``app_configs=`` takes them."""
        configs = []
        for app in self.apps:
            if "." in app:
                configs.append(importlib.import_module(app).APP_CONFIG)
            else:
                configs.append(
                    AppConfig(
                        app_name=app,
                        migrations_folder_path=str(self.path / app / "piccolo_migrations"),
                        table_classes=list(self.tables.get(app, [])),
                    )
                )
        return configs

    async def migrate(self, **options: Any) -> MigrationReport:
        return await migrate(self.database_url, app_configs=self.app_configs(), **options)

    async def status(self, **options: Any) -> StatusReport:
        return await migration_status(self.database_url, app_configs=self.app_configs(), **options)

    async def check(self, **options: Any) -> CheckReport:
        return await check_migrations(self.database_url, app_configs=self.app_configs(), **options)

    ###########################################################################
    # The real command

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "PICCOLO_CONF": "piccolo_conf",
            "PYTHONPATH": os.pathsep.join([str(self.path), str(ROOT)]),
            **extra,
        }

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(ORGSCHEMA), *args],
            cwd=self.path,
            env=self.env(**(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, *args: str, timeout: float = 120, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ORGSCHEMA), *args],
            cwd=self.path,
            env=self.env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def python(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` (this interpreter) in the project, as a release script runs."""
        return subprocess.run(
            [sys.executable, *args],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def piccolo(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).with_name("piccolo")), *args],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    """Wait for ``process``; its exit code, stdout and stderr."""
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


###############################################################################
# Reading the database


async def tables(url: str) -> set[str]:
    rows = await fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def ledger(url: str) -> list[tuple[str, str]]:
    """Piccolo's ledger, in order (empty when it does not exist)."""
    if "migration" not in await tables(url):
        return []
    rows = await fetch(url, "SELECT app_name, name FROM migration ORDER BY id")
    return [(row["app_name"], row["name"]) for row in rows]


async def checksum_rows(url: str) -> list[tuple[str, str]]:
    """orgschema's ledger, sorted (empty when it does not exist)."""
    if LEDGER_TABLE not in await tables(url):
        return []
    rows = await fetch(url, f"SELECT app_name, migration_id FROM {LEDGER_TABLE}")
    return sorted((row["app_name"], row["migration_id"]) for row in rows)


async def lock_holders(url: str) -> list[int]:
    """Backends holding the migration lock in ``url``'s database."""
    rows = await fetch(
        url,
        """
        SELECT l.pid FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ($1::bigint >> 32)::oid
          AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1
        """,
        LOCK_KEY,
    )
    return [row["pid"] for row in rows]


async def migrator_backends(url: str) -> list[Record]:
    """Sessions of ``orgschema migrate`` in ``url``'s database: pid, state, last query."""
    return await fetch(
        url,
        "SELECT pid, state, query, wait_event_type FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = 'orgschema migrate' "
        "AND pid <> pg_backend_pid()",
    )


async def waiting_migrator(url: str) -> int | None:
    """The pid of a migrator that asked for the lock and does not hold it, if any."""
    holders = set(await lock_holders(url))
    for row in await migrator_backends(url):
        if row["pid"] not in holders and "advisory_lock" in row["query"]:
            return int(row["pid"])
    return None


###############################################################################
# Waiting for a state


async def eventually(
    check: Callable[[], Awaitable[T | None]],
    what: str,
    *,
    within: float = 60,
    processes: Sequence[subprocess.Popen[str]] = (),
) -> T:
    """Poll ``check`` until it returns something truthy, and return that.

    Fails after ``within`` seconds naming ``what``, or as soon as one of
    ``processes`` exits (the state waited for can then never come).
    """
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        for process in processes:
            if process.poll() is not None:
                code, out, err = finish(process)
                raise AssertionError(f"waiting for {what}: the process exited {code}\n{out}\n{err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within} s waiting for {what}")
        await asyncio.sleep(0.02)
