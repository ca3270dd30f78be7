"""Throwaway Piccolo projects for migrator tests: apps written to disk, the CLI run on them.

Each project is a folder with its own ``piccolo_conf.py`` (the database from
``DATABASE_URL``) registering orgschema and/or small example apps whose
migrations run raw SQL, so tests can make migrations slow, failing or edited.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORGSCHEMA = Path(sys.executable).with_name("orgschema")

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


@dataclass
class Project:
    path: Path
    database_url: str

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

    def add_migration(
        self,
        app: str,
        number: int,
        description: str,
        statements: list[str],
        wrap_in_transaction: bool = True,
    ) -> Path:
        migration_id = f"2030-01-{number:02d}T00:00:00:000000"
        path = (
            self.path
            / app
            / "piccolo_migrations"
            / f"{app}_2030_01_{number:02d}t00_00_00_000000.py"
        )
        path.write_text(
            MIGRATION.format(
                migration_id=migration_id,
                description=description,
                statements=statements,
                app=app,
                wrap=wrap_in_transaction,
            )
        )
        return path

    def register(self, *apps: str) -> None:
        modules = [app if "." in app else f"{app}.piccolo_app" for app in apps]
        (self.path / "piccolo_conf.py").write_text(CONF.format(apps=modules))

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "PICCOLO_CONF": "piccolo_conf",
            "PYTHONPATH": os.pathsep.join([str(self.path), str(ROOT)]),
        }

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(ORGSCHEMA), *args],
            cwd=self.path,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ORGSCHEMA), *args],
            cwd=self.path,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
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


def dedent(text: str) -> str:
    return textwrap.dedent(text).strip()
