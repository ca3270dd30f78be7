"""Running an ``orgschema`` command that serves (``dev``, ``studio``) as a person does.

The installed console script starts in a subprocess on a free port (``--port
0``); the test waits (bounded) for the URL it prints, talks to it over real
HTTP, then sends SIGINT as Ctrl-C does and expects a clean exit.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("orgschema")
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


class Served:
    """A running ``orgschema`` command and what it printed so far."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            for stream, sink in ((process.stdout, self.stdout), (process.stderr, self.stderr))
        ]
        for pump in self._pumps:
            pump.start()

    def _pump(self, stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            sink.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def wait_for_url(self) -> str:
        """The studio's URL, once it printed it; fails with everything printed otherwise."""
        ended = 0
        while ended < 2:
            try:
                line = self._lines.get(timeout=STARTUP_TIMEOUT)
            except queue.Empty:
                break
            if line is None:
                ended += 1
                continue
            found = re.match(r"studio: (http://\S+)", line)
            if found:
                return found.group(1)
        pytest.fail(f"no studio URL printed\nstdout: {self.stdout}\nstderr: {self.stderr}")

    def interrupt(self) -> int:
        """Ctrl-C; returns the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def serve(*args: str, env: dict[str, str], cwd: Path) -> Iterator[Served]:
    process = subprocess.Popen(
        [str(SCRIPT), *args],
        env={**os.environ, **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(process)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=STOP_TIMEOUT)
        for pump in served._pumps:
            pump.join(timeout=STOP_TIMEOUT)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
