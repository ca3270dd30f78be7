"""Running a command with its stderr on a pseudo-terminal, as a person at a terminal sees it."""

from __future__ import annotations

import os
import pty
import select
import subprocess
from collections.abc import Mapping, Sequence


def run_on_terminal(
    command: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str], timeout: float = 60
) -> tuple[int, str]:
    """Run ``command`` with stderr on a terminal; return its exit code and everything drawn there."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        list(command),
        env={**env, "COLUMNS": "100"},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        stdin=subprocess.DEVNULL,
    )
    os.close(terminal)
    drawn = b""
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], timeout)
            if not ready:
                break
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        code = process.wait(timeout=timeout)
    finally:
        os.close(controller)
    return code, drawn.decode(errors="replace")
