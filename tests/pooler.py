"""A real PgBouncer in front of the test server, for tests of what goes through a pooler.

Debian's ``pgbouncer`` (1.18: no ``max_prepared_statements``) runs as a child
process with its own config and auth file in a temporary directory, listening
on a free loopback port, in the pool mode a test asks for. It forwards every
database name to the test server, so one bouncer serves all of a test's
throwaway databases: :meth:`PgBouncer.url` turns a database's URL into the
same database through the bouncer. ``tests/conftest.py`` has the fixture.

PgBouncer refuses to run as root; under root it runs as the owner of the
server's socket directory (the embedded server), else as ``postgres``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg

#: The binary, when installed (``apt-get install pgbouncer``; ``.ci/run`` does).
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> bool:
    return os.access(PGBOUNCER, os.X_OK)


@dataclass(frozen=True)
class PgBouncer:
    """A running PgBouncer: where it listens and how it pools."""

    port: int
    pool_mode: str
    directory: Path
    process: subprocess.Popen[bytes]

    def url(self, database_url: str) -> str:
        """``database_url``'s database and user, reached through this bouncer."""
        parts = urlsplit(database_url)
        user = parts.username or "postgres"
        return f"postgresql://{user}@127.0.0.1:{self.port}{parts.path}"

    def log(self) -> str:
        """What PgBouncer logged so far (for failure messages)."""
        return (self.directory / "pgbouncer.log").read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_address(server_url: str) -> tuple[str, int]:
    """Host (or socket directory) and port of the test server, as PgBouncer's ``host=`` wants."""
    parts = urlsplit(server_url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [str(parts.port or 5432)])[0])
    return host, port


def _run_as(host: str) -> str | None:
    """The user to run PgBouncer as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(Path(host).stat().st_uid).pw_name
    return "postgres"


@contextlib.asynccontextmanager
async def start_pgbouncer(
    server_url: str,
    *,
    pool_mode: str = "transaction",
    pool_size: int = 5,
    max_client_conn: int = 100,
    server_reset_query: str | None = None,
    settings: Mapping[str, str] | None = None,
    ready_timeout: float = 30,
) -> AsyncIterator[PgBouncer]:
    """Run a PgBouncer in front of ``server_url``'s server until the block ends.

    :param server_url: Any URL of the test server (its host, port, socket and user are used).
    :param pool_mode: ``transaction``, ``session`` or ``statement``.
    :param pool_size: ``default_pool_size``: server connections per database and user.
    :param max_client_conn: Client connections it accepts in all.
    :param server_reset_query: ``None`` keeps PgBouncer's default (``DISCARD ALL``,
        run in session mode only); ``""`` turns it off.
    :param settings: Any other ``[pgbouncer]`` settings.
    :param ready_timeout: Seconds to wait for it to accept connections.
    """
    host, port = _server_address(server_url)
    user = urlsplit(server_url).username or "postgres"
    run_as = _run_as(host)
    directory = Path(tempfile.mkdtemp(prefix="orgschema-pgbouncer-"))
    listen_port = _free_port()
    options = {
        "listen_addr": "127.0.0.1",
        "listen_port": str(listen_port),
        "unix_socket_dir": "",
        "auth_type": "trust",
        "auth_file": str(directory / "users.txt"),
        "pool_mode": pool_mode,
        "default_pool_size": str(pool_size),
        "max_client_conn": str(max_client_conn),
        "logfile": str(directory / "pgbouncer.log"),
        "pidfile": str(directory / "pgbouncer.pid"),
        # asyncpg sends no such parameter; other clients' (psql, JDBC) would be refused.
        "ignore_startup_parameters": "extra_float_digits,options",
        **({"server_reset_query": server_reset_query} if server_reset_query is not None else {}),
        **(settings or {}),
    }
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n"
        + "".join(f"{key} = {value}\n" for key, value in options.items())
    )
    process = _spawn(directory, run_as)
    bouncer = PgBouncer(port=listen_port, pool_mode=pool_mode, directory=directory, process=process)
    try:
        await _wait_until_ready(bouncer, server_url, ready_timeout)
        yield bouncer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _spawn(directory: Path, run_as: str | None) -> subprocess.Popen[bytes]:
    if run_as is not None:
        account = pwd.getpwnam(run_as)
        for path in (directory, *directory.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
    return subprocess.Popen(
        [PGBOUNCER, str(directory / "pgbouncer.ini")],
        user=run_as,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_until_ready(bouncer: PgBouncer, server_url: str, within: float) -> None:
    """Poll until a query goes through the bouncer (it and the server are up)."""
    url = bouncer.url(server_url)
    deadline = time.monotonic() + within
    while True:
        if bouncer.process.poll() is not None:
            raise RuntimeError(
                f"pgbouncer exited with {bouncer.process.returncode}:\n{bouncer.log()}"
            )
        try:
            conn = await asyncpg.connect(url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"pgbouncer did not answer in {within} s ({exc}):\n{bouncer.log()}"
                ) from exc
            await asyncio.sleep(0.05)
            continue
        try:
            await conn.fetchval("SELECT 1")
            return
        finally:
            await conn.close()
