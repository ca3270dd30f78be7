"""The release-step entry points: ``scripts/migrate.py`` and the migration benchmark."""

from __future__ import annotations

import subprocess
import sys

from tests.migrator.kit import (
    ROOT,
    Project,
    ledger,
    orgschema_migrations,
)

SCRIPT = ROOT / "scripts" / "migrate.py"


async def test_migrate_script_is_the_same_command(project: Project) -> None:
    project.register("orgschema.piccolo_app")

    def script(*args: str) -> subprocess.CompletedProcess[str]:
        return project.python(str(SCRIPT), *args)

    ours = project.run("migrate", "--help")
    theirs = script("--help")
    assert theirs.returncode == 0 == ours.returncode
    assert theirs.stdout.replace("migrate.py migrate", "orgschema migrate") == ours.stdout

    bad = script("--lock-timeout", "nan")
    assert bad.returncode == 3 and bad.stderr.startswith("error: --lock-timeout"), bad.stderr
    assert await ledger(project.database_url) == []

    first = script()
    assert first.returncode == 0, first.stderr
    count = len(await ledger(project.database_url))
    assert count > orgschema_migrations()
    assert f"applied {count} migration(s)" in first.stdout
    again = script()
    assert again.returncode == 0 and "applied 0 migration(s)" in again.stdout


def test_bench_migrate_prints_each_figure_beside_its_floor() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench_migrate.py"), "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for label in (
        "migrate to head",
        "no-op migrate, in-process",
        "no-op migrate behind a live lock holder",
        "no-op `orgschema migrate` process vs piccolo",
        "no-op `orgschema migrate` process vs import asyncpg",
        "`import orgschema` process vs import asyncpg",
        "`orgschema --help` process vs import asyncpg",
    ):
        (line,) = [line for line in result.stdout.splitlines() if line.startswith(label)]
        assert " ms " in line and "target" in line
