"""The benchmark scripts of seeding, membership lookups, studio sign-ins and authentication still run (tiny sizes; timings unchecked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("bench_seed.py", ["--users", "300"], "synthetic users: 300 (1,220 rows in 4 tables)"),
        ("bench_memberships.py", ["--memberships", "400", "--calls", "20"], "memberships:     400"),
        (
            "bench_studio_login.py",
            ["--rounds", "2"],
            "rounds: 2; the floor is the wrong-password median",
        ),
        (
            "bench_auth.py",
            ["--users", "50", "--calls", "20", "--requests", "64"],
            "users:           50 (a session, a profile and 3 memberships each)",
        ),
    ],
)
def test_benchmark_runs_and_prints_its_floor_and_ratio(
    server_url: str, script: str, args: list[str], expected: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PICCOLO_CONF",)}
    if "DATABASE_URL" in os.environ:
        env["DATABASE_URL"] = server_url
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "floor" in result.stdout and "ratio" in result.stdout
