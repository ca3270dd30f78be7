"""The studio: Piccolo Admin over every orgschema table, for platform admins only.

:func:`create_studio` returns an ASGI app that a service can mount under a path
of its own; :func:`serve_studio` runs one with uvicorn (``orgschema studio``,
``orgschema dev``). This is the only module that imports ``piccolo_admin`` and
``piccolo_api``.

Who gets in: a person who signs in with the e-mail and password of a platform
admin, checked against the same Better-auth credential the application uses
(``account.password``, see :mod:`orgschema.passwords`) and the profile's role.
There is no second password. Piccolo Admin keeps its sessions in Piccolo's own
``sessions`` table, keyed by a row of ``piccolo_user``: the studio writes one
such row per admin, the first time they sign in, as an inert mirror (not
active, not admin, a password nothing hashes to), so it grants nothing
anywhere else. Every API request checks again that the session's e-mail still
belongs to a platform admin, so demoting or deleting one ends their access at
their next click.

What it shows: each table through a *view* class built here, which has every
column of the real table except the secret ones (``account.password``, the
OAuth tokens, ``session.token``, ``verification.value``). Secrets therefore
cannot be listed, filtered, sorted by or written through the studio at all,
whatever the request. The views also give Better-auth's text primary keys a
Python-side default (:func:`orgschema.ids.generate_id`) and stamp
``updatedAt``, so rows created in the studio look like Better-auth's own; the
real table classes and the database keep no such default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import uvicorn
from piccolo.apps.user.tables import BaseUser
from piccolo.columns import Column, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.readable import Readable
from piccolo.engine.finder import engine_finder
from piccolo.querystring import QueryString
from piccolo.table import Table, create_table_class
from piccolo_admin.endpoints import TableConfig, create_admin
from piccolo_admin.translations.data import ENGLISH, TRANSLATIONS
from piccolo_admin.translations.models import Translation
from piccolo_api.crud.endpoints import OrderBy, PiccoloCRUD
from piccolo_api.crud.hooks import Hook, HookType
from piccolo_api.crud.validators import Validators
from piccolo_api.session_auth.middleware import SessionsAuthBackend
from piccolo_api.session_auth.tables import SessionsBase
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationError
from starlette.authentication import BaseUser as StarletteUser
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orgschema.database import check_engine
from orgschema.environment import Environment, parse_environment
from orgschema.errors import ConfigurationError, DatabaseUnavailable, OrgschemaError
from orgschema.ids import generate_id
from orgschema.passwords import verify_password
from orgschema.roles import Role
from orgschema.settings import Settings
from orgschema.tables import ALL_TABLES

logger = logging.getLogger(__name__)

#: A session ends after this long without a request (each request near the
#: end extends it).
DEFAULT_SESSION_EXPIRY = timedelta(hours=1)

#: ... and this long after sign-in at the latest, however busy.
DEFAULT_MAX_SESSION_EXPIRY = timedelta(hours=8)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SITE_NAME = "orgschema studio"

# A well-formed Better-auth hash that no password produces. When an e-mail has
# no credential, the password is checked against this instead, so an unknown
# e-mail costs the same scrypt as a known one with a wrong password.
_NO_CREDENTIAL = "0" * 32 + ":" + "0" * 128

# Longer inputs are refused (after the same scrypt) rather than truncated.
_MAX_EMAIL_LENGTH = 255  # piccolo_user.email is varchar(255)
_MAX_PASSWORD_LENGTH = 1024

_REFUSED_WRITES = "is written only by orgschema itself; the studio shows it read-only"


###############################################################################
# Who gets in


async def _platform_admin_email(email: str, password: str) -> str | None:
    """The e-mail of the platform admin whose Better-auth password this is, else ``None``.

    Every path runs exactly one scrypt derivation (the stored hash, or
    :data:`_NO_CREDENTIAL`), so the answer's timing tells nothing about which
    check failed.
    """
    email = email.strip().lower()
    row: dict[str, Any] | None = None
    # PostgreSQL text cannot hold NUL: such an e-mail is nobody's, not an error.
    if len(email) <= _MAX_EMAIL_LENGTH and "\x00" not in email:
        rows = await BaseUser.raw(
            'SELECT u.email, a.password, p.role FROM "user" u '
            'LEFT JOIN account a ON a."userId" = u.id AND a."providerId" = \'credential\' '
            "LEFT JOIN profile p ON p.user_id = u.id "
            'WHERE u.email = {} ORDER BY a."createdAt" LIMIT 1',
            email,
        ).run()
        row = rows[0] if rows else None
    stored = row["password"] if row and row["password"] else _NO_CREDENTIAL
    too_long = len(password) > _MAX_PASSWORD_LENGTH
    matches = await verify_password("" if too_long else password, stored)
    if not matches or too_long or row is None or row["role"] != Role.PLATFORM_ADMIN.value:
        return None
    return str(row["email"])


async def can_sign_in(email: str, password: str) -> bool:
    """Whether the studio would let ``email`` and ``password`` in.

    That is: they are the Better-auth credential of a user whose profile is
    ``platform_admin``. Costs one scrypt, like a sign-in.

    :param email: The e-mail, as typed (trimmed and lower-cased here).
    :param password: The password.
    :returns: Whether the studio would accept them.
    """
    return await _platform_admin_email(email, password) is not None


async def _is_platform_admin(email: str | None) -> bool:
    if not email:
        return False
    rows = await BaseUser.raw(
        'SELECT 1 FROM "user" u JOIN profile p ON p.user_id = u.id '
        "WHERE u.email = {} AND p.role = {}",
        email,
        Role.PLATFORM_ADMIN.value,
    ).run()
    return bool(rows)


def _unusable_password() -> str:
    """Shaped like Piccolo's hashes, so Piccolo's own login parses it, but random: nothing matches."""
    return f"pbkdf2_sha256$600000${secrets.token_hex(16)}${secrets.token_hex(32)}"


class StudioLogin(BaseUser, tablename="piccolo_user"):
    """Piccolo Admin's ``piccolo_user``, signed into with a platform admin's Better-auth credential.

    Piccolo Admin calls :meth:`login` with what was typed into its form; the
    row it returns the id of is only a mirror that its ``sessions`` rows can
    point at.
    """

    @classmethod
    async def login(cls, username: str, password: str) -> int | None:
        """Check ``username`` (an e-mail) and ``password`` against Better-auth's tables.

        :param username: What was typed as the user name: a platform admin's e-mail.
        :param password: Their Better-auth password.
        :returns: The id of the admin's mirror row, or ``None`` for any other
            user, a wrong password or an unknown e-mail alike.
        """
        email = await _platform_admin_email(username, password)
        if email is None:
            return None
        user_id = await cls._mirror(email)
        # Sessions are never deleted when they lapse; tidy this admin's own
        # lapsed ones (only theirs: the table may be a service's too).
        await (
            SessionsBase.delete()
            .where(
                (SessionsBase.user_id == user_id) & (SessionsBase.max_expiry_date < datetime.now())
            )
            .run()
        )
        return user_id

    @classmethod
    async def _mirror(cls, email: str) -> int:
        # An existing row with this e-mail (the admin's earlier mirror, or a
        # row the service made itself) is reused as it is; only its last_login
        # moves. A
        # taken username gets a random one instead; concurrent first sign-ins
        # of one admin meet on the e-mail's unique constraint.
        for username in (email, f"orgschema-{secrets.token_hex(8)}"):
            await (
                cls.insert(
                    cls(
                        username=username[: cls.username.length or 100],
                        password=_unusable_password(),
                        email=email,
                        active=False,
                        admin=False,
                        superuser=False,
                    )
                )
                .on_conflict(action="DO NOTHING")
                .run()
            )
            row = await cls.select(cls.id).where(cls.email == email).first().run()
            if row is not None:
                await cls.update({cls.last_login: datetime.now()}).where(cls.id == row["id"]).run()
                return int(row["id"])
        raise OrgschemaError(f"could not record the studio sign-in of {email}; try again")


class _PlatformAdminSessions(SessionsAuthBackend):
    """Piccolo's session check, plus: the session's e-mail is a platform admin's, now."""

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, StarletteUser] | None:
        result = await super().authenticate(conn)
        if result is None:
            return None
        _credentials, user = result
        if not await _is_platform_admin(getattr(getattr(user, "user", None), "email", None)):
            raise AuthenticationError("platform admins only")
        return result


###############################################################################
# What it shows


@dataclass(frozen=True)
class _Layout:
    """How one table appears: its sidebar group, list columns, filters, order."""

    group: str
    columns: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    link: str | None = None
    order: tuple[str, ...] = ()
    #: (template, column) shown wherever another row points at this one.
    readable: tuple[str, str] | None = None
    writable: bool = True
    #: A text column stored trimmed and lower-case, as Better-auth stores e-mails.
    lower_case: str | None = None


_AUTH = "Auth"
_ORGANIZATIONS = "Organizations"
_SETUP = "Setup"

_LAYOUTS: dict[str, _Layout] = {
    "user": _Layout(
        _AUTH,
        columns=("email", "name", "emailVerified", "createdAt"),
        filters=("email", "name", "emailVerified", "createdAt"),
        link="email",
        order=("email",),
        readable=("%s", "email"),
        lower_case="email",
    ),
    "session": _Layout(
        _AUTH,
        columns=("expiresAt", "userId", "ipAddress", "userAgent", "createdAt"),
        filters=("userId", "expiresAt", "ipAddress"),
        link="expiresAt",
        order=("-createdAt",),
    ),
    "account": _Layout(
        _AUTH,
        columns=("providerId", "userId", "accountId", "createdAt"),
        filters=("userId", "providerId"),
        link="providerId",
        order=("-createdAt",),
    ),
    "verification": _Layout(
        _AUTH,
        columns=("identifier", "expiresAt", "createdAt"),
        filters=("identifier", "expiresAt"),
        link="identifier",
        order=("-createdAt",),
    ),
    "organization": _Layout(
        _ORGANIZATIONS,
        columns=("name", "slug", "created_at", "updated_at"),
        filters=("name", "slug"),
        link="name",
        order=("name",),
        readable=("%s", "name"),
    ),
    "organization_user": _Layout(
        _ORGANIZATIONS,
        columns=("role", "organization_id", "user_id", "created_at"),
        filters=("organization_id", "user_id", "role"),
        link="role",
        order=("-created_at",),
    ),
    "profile": _Layout(
        _ORGANIZATIONS,
        columns=("role", "user_id", "organization_id", "created_at"),
        filters=("user_id", "role", "organization_id"),
        link="role",
        order=("-created_at",),
    ),
    # Written once by bootstrap_first_admin; seeding checks it, so nobody
    # should be able to delete it with a click.
    "environment_marker": _Layout(_SETUP, writable=False),
}

_DEFAULT_LAYOUT = _Layout(_SETUP)


def _view_column(column: Column, views: dict[type[Table], type[Table]]) -> Column:
    if isinstance(column, ForeignKey):
        params = {key: value for key, value in column._meta.params.items() if key != "references"}
        target = column._foreign_key_meta.resolved_references
        return ForeignKey(
            references=views.get(target, target), help_text=column._meta.help_text, **params
        )
    if (
        column._meta.primary_key
        and isinstance(column, (Text, Varchar))
        and column._meta.params.get("default") is None
    ):
        # Better-auth generates these ids in JavaScript; without a default here
        # Piccolo Admin would insert NULL and answer with a 500.
        return Text(
            primary_key=True,
            default=generate_id,
            help_text="Generated like Better-auth's ids (32 letters and digits).",
        )
    if isinstance(column, Timestamptz) and column._meta.name == "updatedAt":
        # Better-auth sets updatedAt itself; do the same for edits made here.
        now = TimestamptzNow()
        return Timestamptz(default=now, auto_update=now.python, help_text=column._meta.help_text)
    return column.copy()


def _views() -> dict[type[Table], type[Table]]:
    """A view class per orgschema table: same name, no secret columns."""
    views: dict[type[Table], type[Table]] = {}
    for table in ALL_TABLES:  # foreign-key order: targets come first
        members: dict[str, Any] = {
            column._meta.name: _view_column(column, views)
            for column in table._meta.columns
            if not column._meta.secret
        }
        layout = _LAYOUTS.get(table._meta.tablename, _DEFAULT_LAYOUT)
        if layout.readable is not None:
            members["get_readable"] = _readable(*layout.readable)
        members["_get_related_readable"] = classmethod(_related_readable)
        with warnings.catch_warnings():
            # "user" is a reserved word; Better-auth chose it, Piccolo quotes it.
            warnings.filterwarnings("ignore", message=".*`user` is a reserved keyword")
            views[table] = create_table_class(
                class_name=f"Studio{table.__name__}",
                class_kwargs={"tablename": table._meta.tablename},
                class_members=members,
            )
    return views


def _readable(template: str, column_name: str) -> classmethod:  # type: ignore[type-arg]
    def get_readable(cls: type[Table]) -> Readable:
        return Readable(template=template, columns=[getattr(cls, column_name)])

    return classmethod(get_readable)


class _QuotedReadable(Readable):
    """A readable whose alias is quoted.

    Piccolo names a foreign key's readable ``<column>_readable`` without
    quotes, so PostgreSQL folds ``userId_readable`` to ``userid_readable`` and
    Piccolo Admin, looking for the former, shows nothing.
    """

    def _get_string(self, operator: str) -> QueryString:
        return QueryString(
            f"{operator}('{self.template}', {self._columns_string}) AS \"{self.output_name}\""
        )


def _related_readable(cls: type[Table], column: ForeignKey) -> Readable:
    readable = Table._get_related_readable.__func__(cls, column)  # type: ignore[attr-defined]
    return _QuotedReadable(
        template=readable.template, columns=readable.columns, output_name=readable.output_name
    )


def _refuse_writes(piccolo_crud: PiccoloCRUD, request: Request) -> None:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        raise HTTPException(
            status_code=405, detail=f"{piccolo_crud.table._meta.tablename} {_REFUSED_WRITES}"
        )


def _lower_case_hooks(column_name: str) -> list[Hook]:
    # The database refuses a mixed-case e-mail (Better-auth could never find
    # it); store what Better-auth would have stored instead of showing an error.
    def on_save(row: Table) -> Table:
        value = getattr(row, column_name)
        if isinstance(value, str):
            setattr(row, column_name, value.strip().lower())
        return row

    def on_patch(row_id: Any, values: dict[Any, Any]) -> dict[Any, Any]:
        return {
            column: value.strip().lower()
            if getattr(column, "_meta", None) is not None
            and column._meta.name == column_name
            and isinstance(value, str)
            else value
            for column, value in values.items()
        }

    return [Hook(HookType.pre_save, on_save), Hook(HookType.pre_patch, on_patch)]


def _table_config(view: type[Table]) -> TableConfig:
    layout = _LAYOUTS.get(view._meta.tablename, _DEFAULT_LAYOUT)

    def columns(names: Sequence[str]) -> list[Column] | None:
        return [view._meta.get_column_by_name(name) for name in names] or None

    return TableConfig(
        table_class=view,
        visible_columns=columns(layout.columns),
        visible_filters=columns(layout.filters),
        link_column=view._meta.get_column_by_name(layout.link) if layout.link else None,
        order_by=[
            OrderBy(
                view._meta.get_column_by_name(name.lstrip("-")), ascending=not name.startswith("-")
            )
            for name in layout.order
        ]
        or None,
        menu_group=layout.group,
        validators=None if layout.writable else Validators(every=[_refuse_writes]),
        hooks=_lower_case_hooks(layout.lower_case) if layout.lower_case else None,
    )


def _translations() -> list[Translation]:
    # The login form asks for a "Username"; here that is the e-mail.
    english = ENGLISH.model_copy(
        update={"translations": {**ENGLISH.translations, "Username": "Email"}}
    )
    return [
        english if item.language_code == ENGLISH.language_code else item for item in TRANSLATIONS
    ]


###############################################################################
# The ASGI app


class _StudioGuard:
    """Headers for every response; refusals Piccolo Admin would turn into a 500 or a surprise.

    There is no second password to change, rows are edited with PATCH (PUT,
    which the studio's pages never send, answers a stray field with a 500),
    and sorting by a column the table does not show is a plain 400.
    """

    _HEADERS = (
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
    )

    def __init__(self, app: ASGIApp, columns: Mapping[str, frozenset[str]]) -> None:
        self.app = app
        self.columns = columns

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if path.startswith("/api/change-password"):
            # Piccolo Admin would change the mirror row's password, which no
            # one signs in with: the password is Better-auth's.
            response = JSONResponse(
                {
                    "detail": "the studio has no password of its own: change it where "
                    "users sign in to the application"
                },
                status_code=404,
            )
            await response(scope, receive, send)
            return
        refusal = self._refusal(scope, path)
        if refusal is not None:
            await JSONResponse({"detail": refusal[1]}, status_code=refusal[0])(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self._HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, path: str) -> tuple[int, str] | None:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["api", "tables"] or parts[2] not in self.columns:
            return None
        if scope["method"] == "PUT":
            return 405, "edit rows with PATCH"
        columns = self.columns[parts[2]]
        for value in Request(scope).query_params.getlist("__order"):
            for name in value.split(","):
                if name.lstrip("-").split(".")[0] not in columns:
                    return 400, f"{parts[2]} cannot be sorted by {name.lstrip('-')!r}"
        return None


@asynccontextmanager
async def engine_pool(engine: Any = None) -> AsyncIterator[None]:
    """Open the engine's connection pool for the duration of the block, then close it.

    A pool that is already open (the service opened it for its own use) is
    left alone, neither reopened nor closed.

    :param engine: A Piccolo engine; defaults to the one Piccolo finds
        (``piccolo_conf``).
    :raises ConfigurationError: Piccolo finds no engine.
    :raises DatabaseUnavailable: the pool could not connect.
    :returns: An async context manager; the pool is open inside its block.
    """
    engine = engine if engine is not None else engine_finder()
    if engine is None:
        raise ConfigurationError(
            "Piccolo found no database engine: create a piccolo_conf.py with DB = "
            "PostgresEngine(...) or set PICCOLO_CONF"
        )
    if getattr(engine, "pool", None) is not None or not hasattr(engine, "start_connection_pool"):
        yield
        return
    try:
        await engine.start_connection_pool()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"the studio cannot open its connection pool: {exc}; check the database settings"
        ) from exc
    try:
        yield
    finally:
        await engine.close_connection_pool()


def is_production(settings: Settings | None = None) -> bool:
    """Whether ``APP_ENV`` (else ``NODE_ENV``) says ``production`` (in any letter case).

    :param settings: Read from the process environment when ``None``.
    :returns: ``True`` in production.
    """
    settings = settings or Settings.from_env()
    return parse_environment(settings.environment) is Environment.PRODUCTION


def create_studio(
    *,
    read_only: bool = False,
    production: bool | None = None,
    allowed_hosts: Sequence[str] = (),
    session_expiry: timedelta = DEFAULT_SESSION_EXPIRY,
    max_session_expiry: timedelta = DEFAULT_MAX_SESSION_EXPIRY,
    site_name: str = DEFAULT_SITE_NAME,
    settings: Settings | None = None,
) -> Starlette:
    """Piccolo Admin over every orgschema table, signed into by platform admins.

    The app opens the Piccolo engine's connection pool when its lifespan
    starts and closes it when it ends. Mounted inside another app, whose
    server does not run a mounted app's lifespan, wrap the service's own
    lifespan in :func:`engine_pool` (see docs/studio.md).

    :param read_only: Every table read-only: rows can be browsed, not changed.
    :param production: Secure cookies and a Host check against
        ``allowed_hosts``; ``None`` means: when ``APP_ENV`` (else ``NODE_ENV``)
        is ``production``.
    :param allowed_hosts: Host names the studio answers to (``studio.example.com``);
        required in production. CSRF protection checks the ``Referer`` against them.
    :param session_expiry: A session ends after this long without a request.
    :param max_session_expiry: ... and this long after sign-in at the latest.
    :param site_name: The title shown in the studio.
    :param settings: Read from the environment when not given.
    :raises ConfigurationError: production without ``allowed_hosts``, or
        session lengths that are not positive or out of order.
    :returns: The ASGI app (a Starlette app) to serve or mount.
    """
    if production is None:
        production = is_production(settings)
    hosts = [allowed_hosts] if isinstance(allowed_hosts, str) else list(allowed_hosts)
    if production and not hosts:
        raise ConfigurationError(
            "the studio in production needs the host names it is served under: "
            "pass allowed_hosts=['studio.example.com'] (orgschema studio --allowed-host ...)"
        )
    if session_expiry <= timedelta(0) or max_session_expiry < session_expiry:
        raise ConfigurationError(
            f"studio sessions must last more than zero and at most the maximum: got "
            f"{session_expiry} idle and {max_session_expiry} at most"
        )
    views = _views()
    admin = create_admin(
        [_table_config(view) for view in views.values()],
        auth_table=StudioLogin,
        session_table=SessionsBase,
        session_expiry=session_expiry,
        max_session_expiry=max_session_expiry,
        increase_expiry=min(session_expiry, timedelta(minutes=20)),
        read_only=read_only,
        production=production,
        site_name=site_name,
        default_language_code=ENGLISH.language_code,
        translations=_translations(),
        allowed_hosts=hosts,
        auto_include_related=False,
    )
    _use_backend(
        admin,
        _PlatformAdminSessions(
            auth_table=StudioLogin,
            session_table=SessionsBase,
            # Mirror rows are neither admin nor active, on purpose;
            # _PlatformAdminSessions asks Better-auth's tables instead.
            admin_only=False,
            active_only=False,
            increase_expiry=min(session_expiry, timedelta(minutes=20)),
        ),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with engine_pool():
            yield

    columns = {
        view._meta.tablename: frozenset(column._meta.name for column in view._meta.columns)
        for view in views.values()
    }
    middleware = [Middleware(_StudioGuard, columns=columns)]
    if production:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=hosts))
    return Starlette(routes=[Mount("/", app=admin)], middleware=middleware, lifespan=lifespan)


def _use_backend(admin: Starlette, backend: SessionsAuthBackend) -> None:
    """Swap the session check of Piccolo Admin's ``/api`` mount for ``backend``."""
    for route in admin.routes:
        if (
            isinstance(route, Mount)
            and route.path == "/api"
            and isinstance(route.app, AuthenticationMiddleware)
        ):
            route.app.backend = backend
            return
    # Without the swap, mirror rows (not admin) could never use the studio;
    # refuse loudly rather than serve a studio nobody can enter.
    raise RuntimeError(
        "piccolo-admin no longer mounts its API behind AuthenticationMiddleware at /api; "
        "orgschema.studio needs updating for this version"
    )


###############################################################################
# Serving it


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise OrgschemaError(
            f"the studio cannot listen on {host}:{port} ({exc.strerror or exc}); "
            "pass another --port or --host"
        ) from exc


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def serve_studio(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    read_only: bool = False,
    production: bool | None = None,
    allowed_hosts: Sequence[str] = (),
    session_expiry: timedelta = DEFAULT_SESSION_EXPIRY,
    max_session_expiry: timedelta = DEFAULT_MAX_SESSION_EXPIRY,
    settings: Settings | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve :func:`create_studio` with uvicorn until the process is interrupted.

    Returns after a clean shutdown (Ctrl-C or SIGTERM): requests in flight
    finish and the connection pool is closed. uvicorn then re-raises the
    signal it caught, which the caller sees as ``KeyboardInterrupt``.

    :param host: The address to listen on; other than loopback without
        ``production`` logs a warning (cookies are not Secure).
    :param port: The port; ``0`` picks a free one (see ``on_ready``).
    :param read_only: Every table read-only (see :func:`create_studio`).
    :param production: Secure cookies and a Host check; ``None`` means: when
        ``APP_ENV`` (else ``NODE_ENV``) is ``production``.
    :param allowed_hosts: Host names served under; required in production.
    :param session_expiry: A session ends after this long without a request.
    :param max_session_expiry: ... and this long after sign-in at the latest.
    :param settings: Read from the process environment when ``None``.
    :param on_ready: Called with the studio's URL once it accepts requests.
    :raises DatabaseUnavailable: the database cannot be reached.
    :raises ConfigurationError: production without ``allowed_hosts``, or
        session lengths out of order.
    :raises OrgschemaError: the address cannot be listened on, or the studio
        did not start.
    """
    settings = settings or Settings.from_env()
    if production is None:
        production = is_production(settings)
    app = create_studio(
        read_only=read_only,
        production=production,
        allowed_hosts=allowed_hosts,
        session_expiry=session_expiry,
        max_session_expiry=max_session_expiry,
        settings=settings,
    )
    await check_engine(engine_finder())
    if not production and not _is_loopback(host):
        logger.warning(
            "the studio listens on %s without production mode: its cookies are not "
            "Secure and no Host check applies; use --production behind HTTPS",
            host,
        )
    sock = _listen(host, port)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started and not serving.done():
            await asyncio.wait({serving}, timeout=0.05)
        if server.started and on_ready is not None:
            on_ready(_url(sock))
        await serving
    finally:
        sock.close()
    if not server.started:
        raise OrgschemaError("the studio did not start: see the messages above")
