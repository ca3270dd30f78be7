"""The ``orgschema`` command line: thin wrappers over the library's async functions.

Exit codes: 0 success; 1 any other orgschema error; 2 bad usage; 3 no usable
database (configuration or connection); 6 a migration failed. Every command
prints its result on stdout and its progress and errors on stderr.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from orgschema.errors import OrgschemaError

T = TypeVar("T")


def _run(main: Callable[[], Awaitable[T]]) -> T:
    """Run one command's coroutine, turning orgschema errors into exit codes."""
    try:
        return asyncio.run(main())
    except OrgschemaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _use_piccolo_conf() -> None:
    """Point Piccolo at the caller's ``piccolo_conf``, else at orgschema's own.

    Piccolo finds its configuration by importing ``PICCOLO_CONF`` (default
    ``piccolo_conf``); a console script does not have the working directory on
    ``sys.path``, so add it the way ``piccolo`` itself does.
    """
    if os.environ.get("PICCOLO_CONF"):
        return
    if Path("piccolo_conf.py").is_file():
        sys.path.insert(0, os.getcwd())
    else:
        os.environ["PICCOLO_CONF"] = "orgschema.conf"


@click.group()
@click.version_option(package_name="orgschema")
def main() -> None:
    """orgschema: the auth, profile and organization schema, on PostgreSQL.

    The database is DATABASE_URL, or an embedded PostgreSQL server in
    .orgschema/pgdata when it is unset.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package_logger = logging.getLogger("orgschema")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    _use_piccolo_conf()


@main.command()
def dev() -> None:
    """Migrate the development database and show every table with its row count."""

    async def _dev() -> None:
        from piccolo.engine.finder import engine_finder

        from orgschema.database import describe_engine
        from orgschema.migrator import migrate
        from orgschema.overview import table_counts

        click.echo(f"database: {describe_engine(engine_finder())}", err=True)
        report = await migrate()
        if report.applied:
            click.echo(
                f"applied {len(report.applied)} migration(s) in {report.seconds:.2f} s", err=True
            )
        else:
            click.echo("migrations: up to date", err=True)
        counts = await table_counts()
        width = max(len(count.table) for count in counts)
        click.echo(f"{'table':<{width}}  rows")
        for count in counts:
            click.echo(f"{count.table:<{width}}  {count.rows}")

    _run(_dev)
