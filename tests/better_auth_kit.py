"""The Better-auth 1.7.25 harness (Node) in tests/interop/better_auth, run from Python tests.

``harness.mjs`` runs one mode per process (a sign-up flow, the schema check,
hashing or verifying a password) against ``DATABASE_URL`` and prints a JSON
line per step; :mod:`tests.auth_kit` serves Better-auth over HTTP instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

#: The harness's folder: its package.json pins Better-auth 1.7.25.
HARNESS = Path(__file__).resolve().parent / "interop" / "better_auth"


def harness(node: str, database_url: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run one harness mode; returns its exit code, its JSON lines and its stderr."""
    result = subprocess.run(
        [node, "harness.mjs", *args],
        cwd=HARNESS,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return result.returncode, lines, result.stderr
