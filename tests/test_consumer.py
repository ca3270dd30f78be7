"""A consumer project, made word for word as the README says: wheel, piccolo_conf, migrate, script.

This is how services use orgschema: install the wheel in a fresh virtualenv,
put the README's ``piccolo_conf.py`` beside their code, run ``piccolo
migrations forwards all``, then the README's ``quickstart.py`` (twice, as the
README promises). The schema is checked from the catalog against the same
contract as the in-repo migration.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from orgschema.piccolo_app import APP_CONFIG
from tests.catalog import assert_matches_contract, read_schema

pytestmark = pytest.mark.consumer

ROOT = Path(__file__).resolve().parent.parent


def readme_block(language: str, containing: str) -> str:
    """The one README code block in ``language`` that contains ``containing``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    (block,) = [block for block in blocks if containing in block]
    return block


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
    (project / "piccolo_conf.py").write_text(readme_block("python", "APP_REGISTRY"))
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

    (project / "quickstart.py").write_text(readme_block("python", "asyncio.run(main())"))
    first = run(environment / "bin" / "python", "quickstart.py", cwd=project, env=env)
    assert first == readme_block("text", "platform admin(s)")
    second = run(environment / "bin" / "python", "quickstart.py", cwd=project, env=env)
    assert second == "Acme School exists already\n0 platform admin(s)\n"
