"""The ``orgschema`` command line: thin wrappers over the library's async functions.

Exit codes: 0 success; 1 any other orgschema error; 2 bad usage or input; 3 no
usable database (configuration or connection), or a timeout out of range; 4
another migrator's lock was held too long; 5 refused: an applied migration was
edited or unknown, or the schema drifted; 6 a migration failed; 7 seeding
refused; 8 a platform admin exists already; 9 a migration stayed blocked by
other sessions' locks through every retry; 10 the migrator's connection goes
through a transaction-mode pooler; 11 the database is a read-only standby; 12
the connection was lost mid-run; 13 tables exist without migration history
(adopt them with --baseline). Every command prints its result on stdout and
its progress and errors on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from orgschema.errors import OrgschemaError

T = TypeVar("T")


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one command's coroutine, turning orgschema errors into exit codes."""
    # Imported here: `orgschema --help` and usage errors never need an event loop.
    import asyncio

    try:
        return asyncio.run(main())
    except OrgschemaError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _defer_black() -> None:
    """Let ``black`` load only if something formats code.

    ``piccolo.conf.apps`` imports black at module level, for writing new
    migration files, which no orgschema command does; importing it costs
    about a sixth of a no-op ``orgschema migrate``. A stand-in module takes
    its place and imports the real one at the first attribute looked up on
    it, so anything that does use black still gets it. (The standard
    library's ``LazyLoader`` would not do: on Python 3.11 the import
    statement itself reads ``__spec__``, which makes it load at once.)
    """
    if "black" in sys.modules:
        return
    import importlib
    import importlib.util
    import types

    spec = importlib.util.find_spec("black")
    if spec is None:
        return

    class _Deferred(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if sys.modules.get("black") is self:
                del sys.modules["black"]
            return getattr(importlib.import_module("black"), name)

    stand_in = _Deferred("black")
    stand_in.__spec__ = spec
    sys.modules["black"] = stand_in


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
    # Piccolo warns whenever a table is called "user"; Better-auth decides that name.
    warnings.filterwarnings("ignore", message=".*`user` is a reserved keyword")
    # Piccolo's engines probe the server when piccolo_conf is imported and warn
    # when it is down; the command then says so itself, in one line.
    warnings.filterwarnings(
        "ignore", message=r".*Unable to (connect to database|fetch server version)"
    )
    package_logger = logging.getLogger("orgschema")
    package_logger.setLevel(logging.INFO)
    # Once per process: a second command run in the same process (tests, a
    # service calling main) would otherwise print every line twice.
    if not any(getattr(h, "_orgschema_cli", False) for h in package_logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._orgschema_cli = True  # type: ignore[attr-defined]
        package_logger.addHandler(handler)
    _defer_black()
    _use_piccolo_conf()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (click's test runner swaps it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


#: ``--host`` and ``--port`` shared by the commands that serve the studio.
def _studio_address(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=8000,
        show_default=True,
        help="Port to listen on; 0 picks a free one.",
    )(command)
    return click.option(
        "--host",
        default="127.0.0.1",
        show_default=True,
        help="Address to listen on; anything but loopback wants --production behind HTTPS.",
    )(command)


def _database() -> str:
    """The masked URI of the database Piccolo's engine uses (exits 3 when there is none)."""

    async def describe() -> str:
        from piccolo.engine.finder import engine_finder

        from orgschema.database import describe_engine

        return describe_engine(engine_finder())

    return _run(describe)


def _serve_until_interrupted(serve: Callable[[], Coroutine[Any, Any, None]], database: str) -> None:
    """Serve the studio; Ctrl-C (or SIGTERM) stops it cleanly, with exit code 0."""
    # The studio warns itself when it listens beyond loopback without
    # production mode; piccolo-api's nudge at every sign-in adds nothing.
    warnings.filterwarnings("ignore", message="If running sessions in production")
    # A duplicate slug or a bad role is shown to the person in the studio;
    # piccolo-api also logs each one with a traceback, which is noise here.
    logging.getLogger("piccolo_api.crud.exceptions").setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        _run(serve)
    click.echo(f"studio stopped; the data stays in {database}", err=True)


@main.command()
@_studio_address
@click.option(
    "--no-serve",
    is_flag=True,
    help="Migrate, seed and check the development login, then exit instead of serving the studio.",
)
def dev(host: str, port: int, no_serve: bool) -> None:
    """The development database, ready to use, in the studio.

    Migrates, seeds the development fixtures (nothing is added twice), makes
    sure a platform admin exists (giving admin@example.com the role back when
    none is left), prints every table with its row count and the development
    login, then serves the studio until Ctrl-C. The data stays for next time.
    Refuses (exit 7) where fixtures may not go (staging, production).
    """
    database = _database()

    async def _prepare() -> None:
        from orgschema.migrator import migrate
        from orgschema.overview import table_counts
        from orgschema.seeding import (
            DEVELOPMENT_ADMIN,
            DEVELOPMENT_PASSWORD,
            check_environment,
            ensure_development_admin,
            seed,
        )
        from orgschema.settings import Settings
        from orgschema.studio import can_sign_in

        click.echo(f"database: {database}", err=True)
        # `dev` is for development: an unset environment means development
        # here, while an explicit staging or production is refused before
        # anything, migrations included, is written.
        environment = Settings.from_env().environment or "development"
        check_environment(environment)
        report = await migrate()
        if report.applied:
            click.echo(
                f"applied {len(report.applied)} migration(s) in {report.seconds:.2f} s", err=True
            )
        else:
            click.echo("migrations: up to date", err=True)
        seeded = await seed(environment)
        click.echo(
            f"fixtures: added {seeded.users} user(s), {seeded.organizations} organization(s)"
            if seeded.added_anything
            else "fixtures: all there already",
            err=True,
        )
        restored = await ensure_development_admin(environment)
        if restored is not None:
            click.echo(f"no platform admin was left: {restored} is one again", err=True)
        counts = await table_counts()
        width = max(len(count.table) for count in counts)
        click.echo(f"{'table':<{width}}  rows")
        for count in counts:
            click.echo(f"{count.table:<{width}}  {count.rows}")
        admin = DEVELOPMENT_ADMIN
        if await can_sign_in(admin.email, DEVELOPMENT_PASSWORD):
            click.echo(f"development login: {admin.email} / {DEVELOPMENT_PASSWORD}")
        else:
            click.echo(
                f"warning: {admin.email} no longer signs in with the development password "
                "(it was changed, demoted or replaced in this database); sign in to the "
                "studio as another platform admin",
                err=True,
            )

    _run(_prepare)
    if no_serve:
        click.echo("studio: not started (--no-serve); `orgschema studio` serves it", err=True)
        return

    async def _serve() -> None:
        from orgschema.studio import serve_studio

        await serve_studio(host=host, port=port, on_ready=lambda url: click.echo(f"studio: {url}"))

    click.echo("starting the studio (Ctrl-C stops it)...", err=True)
    _serve_until_interrupted(_serve, database)


# Timeouts are plain floats here: what is out of range (inf, nan, negative,
# past PostgreSQL's limit) is refused by Settings, with exit 3, like the
# variables that set the same values.
_lock_timeout_option = click.option(
    "--lock-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Seconds to wait for another migrator's lock [default: ORGSCHEMA_LOCK_TIMEOUT or 60].",
)


@main.command()
@click.option("--target", metavar="ID", help="Stop after this migration (ID or app:ID).")
@click.option(
    "--dry-run", is_flag=True, help="Run in a transaction that is rolled back; print the SQL."
)
@click.option(
    "--baseline",
    is_flag=True,
    help="Adopt a database created without these migrations, after proving it matches them.",
)
@click.option(
    "--adopt-names",
    is_flag=True,
    help="With --baseline: rename constraints and indexes that differ only by name.",
)
@_lock_timeout_option
@click.option(
    "--ddl-lock-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Seconds a migration statement may wait for a table lock before the migration is "
    "rolled back and retried [default: ORGSCHEMA_DDL_LOCK_TIMEOUT or 5; 0: no limit].",
)
@click.option(
    "--ddl-retries",
    type=int,
    default=None,
    metavar="N",
    help="Retries of a migration that timed out on a lock, with backoff "
    "[default: ORGSCHEMA_DDL_RETRIES or 4].",
)
@click.option(
    "--statement-timeout",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Seconds any migration statement may run [default: ORGSCHEMA_STATEMENT_TIMEOUT, "
    "else the server's].",
)
def migrate(
    target: str | None,
    dry_run: bool,
    baseline: bool,
    adopt_names: bool,
    lock_timeout: float | None,
    ddl_lock_timeout: float | None,
    ddl_retries: int | None,
    statement_timeout: float | None,
) -> None:
    """Apply pending migrations: one migrator at a time, each atomic with its ledger rows.

    Refuses, before applying anything, when an applied migration's file was
    edited (exit 5), when tables exist without migration history (exit 13:
    use --baseline), through a transaction-mode pooler (exit 10) and on a
    read-only standby (exit 11). Waits for another migrator's lock (exit 4 on
    timeout). A migration blocked by other sessions' locks is rolled back and
    retried; exit 9 names them when the retries run out.
    """
    from orgschema.migrator import migrate as run_migrate

    report = _run(
        lambda: run_migrate(
            target=target,
            dry_run=dry_run,
            baseline=baseline,
            adopt_names=adopt_names,
            lock_timeout=lock_timeout,
            ddl_lock_timeout=ddl_lock_timeout,
            ddl_retries=ddl_retries,
            statement_timeout=statement_timeout,
        )
    )
    for key in report.adopted:
        click.echo(f"adopted {key} (applied earlier by Piccolo; checksum recorded)")
    for sql in report.renamed:
        click.echo(f"renamed: {sql}")
    for key in report.baselined:
        click.echo(f"baselined {key} (recorded as applied, not run)")
    if dry_run:
        for applied in report.applied:
            click.echo(f"-- {applied.app_name}:{applied.migration_id} ({applied.description})")
            click.echo(applied.sql)
    verb = "would apply" if dry_run else "applied"
    click.echo(f"{verb} {len(report.applied)} migration(s) in {report.seconds:.2f} s")


@main.command()
def sql() -> None:
    """Print the exact SQL the pending migrations would run, without applying them."""
    from orgschema.migrator import migrate as run_migrate

    report = _run(lambda: run_migrate(dry_run=True))
    if not report.applied:
        click.echo("-- no migrations pending")
    for applied in report.applied:
        click.echo(f"-- {applied.app_name}:{applied.migration_id} ({applied.description})")
        click.echo(applied.sql)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for machines.")
def status(as_json: bool) -> None:
    """List every migration per app: applied or pending, when, and whether its file changed.

    Exits 5 when an applied migration was edited or no longer ships, or when
    tables exist without migration history (`migrate --baseline` adopts them).
    Read-only: works on a standby.
    """
    import json

    from orgschema.errors import AppliedMigrationModified
    from orgschema.migrator import migration_status

    report = _run(migration_status)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "migrations": [m.as_dict() for m in report.migrations],
                    "untracked": [
                        {"app": u.app_name, "tables": list(u.tables)} for u in report.untracked
                    ],
                },
                indent=2,
            )
        )
    else:
        click.echo(
            f"{'app':<16} {'migration':<28} {'state':<8} {'applied at':<20} checksum  description"
        )
        for m in report.migrations:
            when = f"{m.applied_at:%Y-%m-%d %H:%M:%S}" if m.applied_at else "-"
            click.echo(
                f"{m.app_name:<16} {m.migration_id:<28} {m.state:<8} {when:<20} "
                f"{m.checksum:<9} {m.description}"
            )
        for untracked in report.untracked:
            click.echo(
                f"{untracked.app_name}: tables present without migration history: "
                f"{', '.join(untracked.tables)}; run `orgschema migrate --baseline` to adopt them"
            )
        problems = len(report.problems) + len(report.untracked)
        click.echo(f"{len(report.pending)} pending, {problems} problem(s)")
    if report.problems or report.untracked:
        sys.exit(AppliedMigrationModified.exit_code)


@main.command()
def check() -> None:
    """Fail (exit 5) when table classes lack a migration, the database was changed by hand, or
    an applied migration was edited or no longer ships."""
    from orgschema.errors import SchemaDriftError
    from orgschema.migrator import check_migrations

    report = _run(check_migrations)
    for line in report.unmigrated_changes:
        click.echo(f"not in any migration: {line}")
    for line in report.drift:
        click.echo(f"database differs: {line}")
    for key in report.unknown_applied:
        click.echo(f"applied but shipped by no registered app: {key}")
    for key in report.edited:
        click.echo(f"applied migration edited since: {key}")
    if not report.ok:
        click.echo(
            f"{len(report.unmigrated_changes)} unmigrated change(s), {len(report.drift)} "
            f"difference(s) from the migrations, "
            f"{len(report.unknown_applied) + len(report.edited)} ledger problem(s): generate a "
            "migration with `piccolo migrations new APP --auto`, undo hand-made schema changes, "
            "and restore (or install) the migrations that were applied",
            err=True,
        )
        sys.exit(SchemaDriftError.exit_code)
    click.echo("ok: table classes, migrations and database agree")


@contextlib.contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; ``None`` (quiet) otherwise.

    The bar appears at the first report with something to count, so a run
    with nothing to count draws none, and it is gone before an error is told.
    """
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeRemainingColumn,
    )

    live: tuple[Progress, TaskID] | None = None

    def update(done: int, total: int) -> None:
        nonlocal live
        if live is None:
            if total <= 0:
                return
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            bar.start()
            live = bar, bar.add_task(description, total=total)
        bar, task = live
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if live is not None:
            live[0].stop()


@main.command()
@click.option(
    "--env",
    "env",
    metavar="ENV",
    default=None,
    help="development or test [default: APP_ENV, else NODE_ENV].",
)
@click.option(
    "--users",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Make sure this many synthetic users exist (tops up; never adds twice).",
)
def seed(env: str | None, users: int) -> None:
    """Seed development fixtures, and synthetic users, in one transaction.

    Refuses (exit 7, writing nothing) in staging, production, an unset or
    unknown environment, and a database bootstrapped as deployed. Running it
    again adds nothing.
    """
    from orgschema.seeding import DEVELOPMENT_PASSWORD, SeedReport
    from orgschema.seeding import seed as run_seed

    async def run() -> SeedReport:
        # The bar closes inside the coroutine, before _run tells of an error.
        with _progress_bar("synthetic users") as progress:
            return await run_seed(env, users=users, progress=progress)

    report = _run(run)
    if report.added_anything:
        click.echo(
            f"seeded {report.environment.value}: added {report.organizations} organization(s), "
            f"{report.users} user(s) ({report.synthetic_users} synthetic), "
            f"{report.accounts} credential account(s), {report.profiles} profile(s), "
            f"{report.memberships} membership(s) in {report.seconds:.2f} s"
        )
    else:
        click.echo(f"seeded {report.environment.value}: nothing to add, all there already")
    click.echo(
        f"sign in as admin@example.com (or any seeded user) with {DEVELOPMENT_PASSWORD!r}",
        err=True,
    )


@main.command()
@click.option("--email", required=True, help="The admin's e-mail; they sign in with it.")
@click.option("--name", required=True, help="The admin's display name.")
def bootstrap(email: str, name: str) -> None:
    """Create the first platform admin; refuses (exit 8) once one exists.

    The password comes from ORGSCHEMA_ADMIN_PASSWORD, else from a prompt on
    the terminal; never from the command line, where other users and the
    shell history would see it. Outside development and test, the database is
    marked so that `orgschema seed` refuses it from then on.
    """
    from orgschema.bootstrap import bootstrap_first_admin, setup_required
    from orgschema.errors import AlreadyBootstrapped
    from orgschema.settings import Settings

    async def read_settings() -> Settings:
        return Settings.from_env()

    settings = _run(read_settings)
    # Say so before asking for a password that could not be used; the
    # bootstrap checks again, under its lock.
    if not _run(lambda: setup_required(settings=settings)):
        click.echo(
            "error: a platform admin exists already, so the first-run setup is closed; "
            "sign in as that admin to add others",
            err=True,
        )
        sys.exit(AlreadyBootstrapped.exit_code)
    password = settings.admin_password
    if password is None:
        password = click.prompt(
            "Password for the admin", hide_input=True, confirmation_prompt=True, err=True
        )
    report = _run(
        lambda: bootstrap_first_admin(email=email, password=password, name=name, settings=settings)
    )
    click.echo(f"created platform admin {report.email} (user id {report.user_id})")
    if report.marked:
        where = report.environment or "an unset environment"
        click.echo(
            f"marked the database as bootstrapped under {where}: `orgschema seed` refuses it now",
            err=True,
        )


@main.command()
@_studio_address
@click.option("--read-only", is_flag=True, help="Every table read-only: browse, never change.")
@click.option(
    "--production",
    is_flag=True,
    help="Secure cookies, only --allowed-host names answered [default: when APP_ENV (else "
    "NODE_ENV) is production].",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="HOST",
    help="A host name the studio is served under (repeatable); required in production. "
    "Outside production loopback names are answered too, and nothing else.",
)
@click.option(
    "--session-minutes",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="A studio session ends after this many minutes without a request.",
)
@click.option(
    "--max-session-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=8.0,
    show_default=True,
    help="... and this many hours after sign-in at the latest.",
)
@click.option(
    "--forwarded-allow-ips",
    metavar="IPS",
    default="",
    help="Comma-separated proxies (addresses or networks, * for any) whose X-Forwarded-For "
    "names the client [default: none, the header is ignored].",
)
@click.option(
    "--failures-per-account",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Failed sign-ins for one e-mail within the window before it gets 429.",
)
@click.option(
    "--failures-per-address",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Failed sign-ins from one client address within the window before it gets 429.",
)
@click.option(
    "--failure-window-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    help="How long a failed sign-in counts.",
)
@click.option(
    "--max-login-body-kb",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Largest sign-in request body; larger ones get 413 unread.",
)
@click.option(
    "--max-api-body-kb",
    type=click.IntRange(min=1),
    default=1024,
    show_default=True,
    help="Largest request body to the studio's API; larger ones get 413 unread.",
)
def studio(
    host: str,
    port: int,
    read_only: bool,
    production: bool,
    allowed_hosts: tuple[str, ...],
    session_minutes: int,
    max_session_hours: float,
    forwarded_allow_ips: str,
    failures_per_account: int,
    failures_per_address: int,
    failure_window_minutes: float,
    max_login_body_kb: int,
    max_api_body_kb: int,
) -> None:
    """Serve the studio (Piccolo Admin over every table) until Ctrl-C.

    Sign in with the e-mail and password of a platform admin: the same
    credential the application uses. There is no password of its own.
    """
    from datetime import timedelta

    from orgschema.studio import StudioLimits

    database = _database()
    limits = StudioLimits(
        failures_per_account=failures_per_account,
        failures_per_address=failures_per_address,
        failure_window=timedelta(minutes=failure_window_minutes),
        max_login_body=max_login_body_kb * 1024,
        max_api_body=max_api_body_kb * 1024,
    )
    proxies = [entry.strip() for entry in forwarded_allow_ips.split(",") if entry.strip()]

    def ready(url: str) -> None:
        click.echo(f"studio: {url}")
        mode = " (read-only)" if read_only else ""
        click.echo(
            f"serving {database}{mode}; sign in with a platform admin's e-mail and password. "
            "Ctrl-C stops it.",
            err=True,
        )

    async def _serve() -> None:
        from orgschema.studio import serve_studio

        await serve_studio(
            host=host,
            port=port,
            read_only=read_only,
            production=True if production else None,
            allowed_hosts=allowed_hosts,
            session_expiry=timedelta(minutes=session_minutes),
            max_session_expiry=timedelta(hours=max_session_hours),
            limits=limits,
            forwarded_allow_ips=proxies,
            on_ready=ready,
        )

    _serve_until_interrupted(_serve, database)
