"""Serving the studio with uvicorn: ``orgschema studio`` and ``orgschema dev``."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from datetime import timedelta

import uvicorn
from piccolo.engine.finder import engine_finder

from orgschema.database import check_engine
from orgschema.errors import OrgschemaError
from orgschema.settings import Settings
from orgschema.studio._app import (
    DEFAULT_MAX_SESSION_EXPIRY,
    DEFAULT_SESSION_EXPIRY,
    create_studio,
    is_production,
)
from orgschema.studio._guard import is_loopback
from orgschema.studio._limits import StudioLimits

logger = logging.getLogger("orgschema.studio")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


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


def _answered_hosts(host: str, allowed_hosts: Sequence[str], production: bool) -> list[str]:
    """The hosts to answer: those given, plus, outside production, the address listened on."""
    hosts = list(allowed_hosts)
    if production or is_loopback(host):
        return hosts
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        hosts.append(host)  # a host name to listen on is one to be reached by
        return hosts
    if address.is_unspecified:
        logger.warning(
            "the studio listens on all addresses without production mode: its cookies are "
            "not Secure, and it answers only loopback names%s; use --production behind "
            "HTTPS, or --allowed-host for each name it is reached by",
            f" and {', '.join(hosts)}" if hosts else "",
        )
        return hosts
    logger.warning(
        "the studio listens on %s without production mode: its cookies are not Secure; "
        "use --production behind HTTPS",
        host,
    )
    return [*hosts, host]


async def serve_studio(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    read_only: bool = False,
    production: bool | None = None,
    allowed_hosts: Sequence[str] = (),
    session_expiry: timedelta = DEFAULT_SESSION_EXPIRY,
    max_session_expiry: timedelta = DEFAULT_MAX_SESSION_EXPIRY,
    limits: StudioLimits | None = None,
    forwarded_allow_ips: Sequence[str] = (),
    settings: Settings | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve :func:`create_studio` with uvicorn until the process is interrupted.

    Returns after a clean shutdown (Ctrl-C or SIGTERM): requests in flight
    finish and the connection pool is closed. uvicorn then re-raises the
    signal it caught, which the caller sees as ``KeyboardInterrupt``.
    Cancelling the task that awaits it shuts down the same way, then
    raises ``CancelledError``.

    uvicorn's own proxy-header handling is off (by default it believes
    ``X-Forwarded-For`` from 127.0.0.1, so any local process could choose
    the address its sign-ins are counted under); the studio believes the
    header only from ``forwarded_allow_ips``.

    :param host: The address to listen on. Outside production a loopback
        address answers only loopback host names (and ``allowed_hosts``);
        any other address logs a warning (cookies are not Secure).
    :param port: The port; ``0`` picks a free one (see ``on_ready``).
    :param read_only: Every table read-only (see :func:`create_studio`).
    :param production: Secure cookies and only ``allowed_hosts`` answered;
        ``None`` means: when ``APP_ENV`` (else ``NODE_ENV``) is ``production``.
    :param allowed_hosts: Host names served under; required in production.
    :param session_expiry: A session ends after this long without a request.
    :param max_session_expiry: ... and this long after sign-in at the latest.
    :param limits: Sign-in failures allowed and request sizes (:class:`StudioLimits`).
    :param forwarded_allow_ips: Proxies whose ``X-Forwarded-For`` is believed.
    :param settings: Read from the process environment when ``None``.
    :param on_ready: Called with the studio's URL once it accepts requests.
    :raises DatabaseUnavailable: the database cannot be reached.
    :raises ConfigurationError: production without ``allowed_hosts``, session
        lengths out of order, or a malformed ``forwarded_allow_ips``.
    :raises OrgschemaError: the address cannot be listened on, or the studio
        did not start.
    """
    settings = settings or Settings.from_env()
    if production is None:
        production = is_production(settings)
    app = create_studio(
        read_only=read_only,
        production=production,
        allowed_hosts=_answered_hosts(host, allowed_hosts, production),
        session_expiry=session_expiry,
        max_session_expiry=max_session_expiry,
        limits=limits,
        forwarded_allow_ips=forwarded_allow_ips,
        settings=settings,
    )
    await check_engine(engine_finder())
    sock = _listen(host, port)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            proxy_headers=False,
            server_header=False,
        )
    )
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started and not serving.done():
            await asyncio.wait({serving}, timeout=0.05)
        if server.started and on_ready is not None:
            on_ready(_url(sock))
        # Shielded: cancelling serve_studio stops the server the way Ctrl-C
        # does (requests finish, the lifespan closes the pool), not mid-request.
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        await serving
        raise
    finally:
        sock.close()
    if not server.started:
        raise OrgschemaError("the studio did not start: see the messages above")
