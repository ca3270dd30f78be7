"""What the security suite shares: running the Better-auth harness scripts.

They need Node (the root conftest's ``node`` fixture: skipped loudly without
it, a failure under ``ORGSCHEMA_REQUIRE_NODE=1`` as in CI).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from tests.better_auth_kit import HARNESS

#: ``(script, *args)`` -> (exit code, the summary line); see password_reset.mjs.
RunNode = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def better_auth(node: str, database_url: str) -> RunNode:
    """Run one of the Better-auth harness scripts against the session's database."""

    def run(script: str, *args: str) -> tuple[int, dict[str, Any]]:
        result = subprocess.run(
            [node, script, *args],
            cwd=HARNESS,
            env={**os.environ, "DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert lines, f"{script} printed nothing\nstderr: {result.stderr}"
        return result.returncode, lines[-1]

    return run
