"""A consumer project: install the built wheel in a fresh virtualenv and migrate with Piccolo.

This is how services use orgschema: ``pip install``, list ``orgschema.piccolo_app``
in their own ``piccolo_conf.py``, run ``piccolo migrations forwards all``. The
result is checked from the catalog against the same contract as the in-repo
migration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
import zipfile
from pathlib import Path

import pytest

from orgschema.piccolo_app import APP_CONFIG
from tests.catalog import read_schema
from tests.test_schema_contract import assert_matches_contract

pytestmark = pytest.mark.consumer

ROOT = Path(__file__).resolve().parent.parent

CONSUMER_CONF = """\
import os

from piccolo.conf.apps import AppRegistry
from piccolo.engine.postgres import PostgresEngine

DB = PostgresEngine(config={"dsn": os.environ["DATABASE_URL"]})
APP_REGISTRY = AppRegistry(apps=["orgschema.piccolo_app"])
"""


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--wheel", "--outdir", out, ROOT, cwd=ROOT)
    (built,) = out.glob("orgschema-*.whl")
    return built


def test_wheel_ships_every_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = Path(APP_CONFIG.resolved_migrations_folder_path)
    shipped = {f"orgschema/piccolo_migrations/{path.name}" for path in folder.glob("*.py")}
    assert len(shipped) >= 3  # __init__.py and at least two migrations
    assert shipped <= names
    assert "orgschema/py.typed" in names


async def test_consumer_project_migrates_with_piccolo_to_the_contract(
    wheel: Path, empty_database, tmp_path: Path
) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        wheel,
        cwd=tmp_path,
    )

    project = tmp_path / "service"
    project.mkdir()
    (project / "piccolo_conf.py").write_text(CONSUMER_CONF)
    url = await empty_database()
    env = {"DATABASE_URL": url, "PICCOLO_CONF": "piccolo_conf", "PYTHONPATH": ""}
    run(environment / "bin" / "piccolo", "migrations", "forwards", "all", cwd=project, env=env)

    assert_matches_contract(await read_schema(url))
    check = run(environment / "bin" / "piccolo", "migrations", "check", cwd=project, env=env)
    ran = [line for line in check.splitlines() if line.startswith("orgschema ")]
    assert len(ran) == len(
        list(Path(APP_CONFIG.resolved_migrations_folder_path).glob("orgschema_*.py"))
    )
    assert all(line.rstrip().endswith("| True") for line in ran)

    example = textwrap.dedent(
        """
        import asyncio
        from orgschema import Organization, Role

        async def main():
            await Organization(name="Acme", slug="acme").save().run()
            print(await Organization.count().run(), Role.PLATFORM_ADMIN.value)

        asyncio.run(main())
        """
    )
    assert run(python, "-c", example, cwd=project, env=env).split() == ["1", "platform_admin"]
