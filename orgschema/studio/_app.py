"""The studio as an ASGI app: Piccolo Admin over the views, behind the studio's guard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
from piccolo.engine.finder import engine_finder
from piccolo_admin.endpoints import create_admin
from piccolo_admin.translations.data import ENGLISH, TRANSLATIONS
from piccolo_admin.translations.models import Translation
from piccolo_api.rate_limiting.middleware import RateLimitProvider
from piccolo_api.session_auth.tables import SessionsBase
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import Mount

from orgschema.environment import Environment, parse_environment
from orgschema.errors import ConfigurationError, DatabaseUnavailable
from orgschema.settings import Settings
from orgschema.studio._access import StudioLogin, StudioSessions
from orgschema.studio._guard import HostPolicy, StudioGuard, harden, withhold_row_details
from orgschema.studio._limits import StudioLimits, TrustedProxies
from orgschema.studio._views import table_configs

#: A session ends after this long without a request.
DEFAULT_SESSION_EXPIRY = timedelta(hours=1)

#: ... and this long after sign-in at the latest, however busy.
DEFAULT_MAX_SESSION_EXPIRY = timedelta(hours=8)

DEFAULT_SITE_NAME = "orgschema studio"


class _Unlimited(RateLimitProvider):
    """Piccolo Admin's sign-in limit, switched off: the studio's guard limits sign-ins itself.

    Piccolo's counts successful sign-ins too, per peer address only, and
    blocks until the process restarts.
    """

    def increment(self, identifier: str) -> None:
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
    limits: StudioLimits | None = None,
    forwarded_allow_ips: Sequence[str] = (),
    settings: Settings | None = None,
) -> Starlette:
    """Piccolo Admin over every orgschema table, signed into by platform admins.

    The app opens the Piccolo engine's connection pool when its lifespan
    starts and closes it when it ends. Mounted inside another app, whose
    server does not run a mounted app's lifespan, wrap the service's own
    lifespan in :func:`engine_pool` (see docs/studio.md).

    :param read_only: Every table read-only: rows can be browsed, not changed.
    :param production: Secure cookies and only ``allowed_hosts`` answered;
        ``None`` means: when ``APP_ENV`` (else ``NODE_ENV``) is ``production``.
    :param allowed_hosts: Host names the studio answers to
        (``studio.example.com``, ``*.example.com``); required in production.
        Outside production loopback names (``localhost``, ``127.0.0.1``) are
        answered as well, and nothing else. CSRF protection checks the
        ``Referer`` of HTTPS requests against them.
    :param session_expiry: A session ends after this long without a request.
    :param max_session_expiry: ... and this long after sign-in at the latest.
    :param site_name: The title shown in the studio.
    :param limits: Sign-in failures allowed and request sizes
        (:class:`StudioLimits`); its defaults when ``None``.
    :param forwarded_allow_ips: Proxies (addresses or networks, ``*`` for
        any) whose ``X-Forwarded-For`` names the client; from anyone else the
        header is ignored. Empty by default: no proxy is trusted.
    :param settings: Read from the environment when not given.
    :raises ConfigurationError: production without ``allowed_hosts``, session
        lengths that are not positive or out of order, or a malformed entry
        of ``forwarded_allow_ips``.
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
    proxies = TrustedProxies(forwarded_allow_ips)
    configs, tables = table_configs()
    admin = create_admin(
        configs,
        auth_table=StudioLogin,
        session_table=SessionsBase,
        session_expiry=session_expiry,
        max_session_expiry=max_session_expiry,
        read_only=read_only,
        rate_limit_provider=_Unlimited(),
        production=production,
        site_name=site_name,
        default_language_code=ENGLISH.language_code,
        translations=_translations(),
        allowed_hosts=hosts,
        auto_include_related=False,
    )
    _install(admin, StudioSessions(session_expiry))
    withhold_row_details()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with engine_pool():
            yield

    guard = Middleware(
        StudioGuard,
        tables=tables,
        limits=limits or StudioLimits(),
        hosts=HostPolicy(hosts, loopback=not production),
        proxies=proxies,
        production=production,
    )
    return Starlette(routes=[Mount("/", app=admin)], middleware=[guard], lifespan=lifespan)


def _install(admin: Starlette, backend: StudioSessions) -> None:
    """Put the studio's session check on Piccolo Admin's ``/api``; harden its three apps."""
    harden(admin)
    installed = False
    for route in admin.routes:
        if not isinstance(route, Mount):
            continue
        if route.path == "/api" and isinstance(route.app, AuthenticationMiddleware):
            route.app.backend = backend
            harden(route.app.app)  # type: ignore[arg-type]
            installed = True
        elif route.path == "/public" and isinstance(route.app, Starlette):
            harden(route.app)
    if not installed:
        # Without the swap, mirror rows (not admin) could never use the studio;
        # refuse loudly rather than serve a studio nobody can enter.
        raise RuntimeError(
            "piccolo-admin no longer mounts its API behind AuthenticationMiddleware at /api; "
            "orgschema.studio needs updating for this version"
        )


def _translations() -> list[Translation]:
    # The login form asks for a "Username"; here that is the e-mail.
    english = ENGLISH.model_copy(
        update={"translations": {**ENGLISH.translations, "Username": "Email"}}
    )
    return [
        english if item.language_code == ENGLISH.language_code else item for item in TRANSLATIONS
    ]
