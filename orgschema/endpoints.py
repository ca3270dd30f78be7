"""The first-run HTTP endpoint: ``POST /api/setup/first-run`` creates the first platform admin.

:func:`first_run_app` returns a Starlette app serving that full path; mount it
at the root of any Starlette or FastAPI service, or run it alone with uvicorn.
It is a thin edge over :func:`orgschema.bootstrap_first_admin`: it reads and
checks the request, and turns orgschema's exceptions into HTTP statuses here
and nowhere else. Every error is JSON of one shape::

    {"error": {"code": "invalid_input", "message": "...", "field": "email"}}

where ``field`` is ``null`` when no single field is at fault. This is the only
module that imports Starlette (the studio's package aside).

Outside development and test the endpoint fails closed: without a setup token
it answers every request 503 and logs an error naming ``SETUP_TOKEN`` when it
is created, unless the operator opts out by name (``allow_without_token=True``
or ``ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN=1``). Every first platform admin it
creates is logged: who, and from which address; never the password.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orgschema.bootstrap import bootstrap_first_admin, setup_required
from orgschema.environment import is_seedable
from orgschema.errors import (
    AlreadyBootstrapped,
    ConfigurationError,
    DatabaseUnavailable,
    EmailTaken,
    InvalidInputError,
    OrgschemaError,
    SetupTokenRejected,
)
from orgschema.settings import Settings

logger = logging.getLogger(__name__)

#: The full path the endpoint serves.
FIRST_RUN_PATH = "/api/setup/first-run"

#: Largest request body accepted, in bytes.
MAX_BODY_BYTES = 16 * 1024

_FIELDS = ("email", "password", "name")


class _Refused(Exception):
    """An HTTP-level refusal (not an orgschema error) carrying its response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An error in the endpoint's one JSON shape, ``{"error": {code, message, field}}``.

    :param status: The HTTP status.
    :param code: A stable, machine-readable code (``invalid_input``...).
    :param message: What went wrong and what to do, for a person.
    :param field: The request field at fault, if one is.
    :param headers: Extra response headers (``WWW-Authenticate``...).
    :returns: The JSON response.
    """
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}},
        status_code=status,
        headers=headers,
    )


def _from_orgschema_error(exc: OrgschemaError) -> JSONResponse:
    if isinstance(exc, InvalidInputError):
        return error_response(422, "invalid_input", str(exc), field=exc.field)
    if isinstance(exc, AlreadyBootstrapped):
        return error_response(409, "already_bootstrapped", str(exc))
    if isinstance(exc, EmailTaken):
        return error_response(409, "email_taken", str(exc), field="email")
    if isinstance(exc, SetupTokenRejected):
        return error_response(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, (DatabaseUnavailable, ConfigurationError)):
        # The detail names the database server: log it, never show it to the caller.
        logger.error("first-run endpoint: %s", exc)
        return error_response(503, "unavailable", "the database is unavailable; try again later")
    logger.error("first-run endpoint: %s", exc)
    return error_response(exc.status_code, "error", str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # Starlette registers this for HTTPException only
        raise exc
    if exc.status_code == 405:
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; use GET or POST",
            headers=dict(exc.headers or {}),
        )
    if exc.status_code == 404:
        return error_response(404, "not_found", f"nothing at {request.url.path}")
    return error_response(exc.status_code, "error", str(exc.detail))


def _check_token(request: Request, token: str | None) -> None:
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant time, so response timing reveals nothing about the token.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8"), token.encode("utf-8")
    ):
        raise SetupTokenRejected(
            "this setup requires the setup token: send Authorization: Bearer <SETUP_TOKEN>"
        )


async def _read_json_object(request: Request) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise _Refused(
            error_response(
                400,
                "unsupported_media_type",
                "send the body as JSON (Content-Type: application/json)",
            )
        )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise _Refused(error_response(400, "invalid_request", "malformed Content-Length"))
        if int(declared) > MAX_BODY_BYTES:
            raise _Refused(_too_large())
    body = bytearray()
    # Counted as it arrives, so a chunked body cannot get past the limit either.
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _Refused(_too_large())
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise _Refused(error_response(400, "invalid_json", "the body is not valid JSON")) from None
    if not isinstance(payload, dict):
        raise _Refused(
            error_response(
                400,
                "invalid_request",
                'the body must be a JSON object: {"email", "password", "name"}',
            )
        )
    for field in _FIELDS:
        if field not in payload:
            raise InvalidInputError(f"{field} is required", field=field)
        if not isinstance(payload[field], str):
            raise InvalidInputError(f"{field} must be a string", field=field)
    return payload


def _too_large() -> JSONResponse:
    return error_response(
        413, "payload_too_large", f"the body must be at most {MAX_BODY_BYTES} bytes"
    )


def _closed_without_token(environment: str | None) -> str:
    where = environment or "an unset environment (which counts as deployed)"
    return (
        f"the first-run setup is closed: SETUP_TOKEN is not set in {where}, so whoever "
        "reached it first would become platform admin. Set SETUP_TOKEN (callers then send "
        "Authorization: Bearer <token>), or opt out by name with allow_without_token=True "
        "or ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN=1"
    )


def _caller(request: Request) -> str:
    """Where a request came from, for the log: the peer, and what proxies say."""
    peer = request.client.host if request.client else "an unknown address"
    forwarded = request.headers.get("x-forwarded-for")
    # Logged, not trusted: it is only what the caller or its proxies claim.
    return f"{peer} (X-Forwarded-For: {forwarded[:200]})" if forwarded else peer


def first_run_app(
    database_url: str | None = None,
    setup_token: str | None = None,
    *,
    allow_without_token: bool | None = None,
    settings: Settings | None = None,
) -> Starlette:
    """A Starlette app serving the first-run setup at ``/api/setup/first-run``.

    ``GET`` answers ``200 {"setupRequired": true|false}``: whether no platform
    admin exists yet. ``POST`` with JSON ``{"email", "password", "name"}``
    creates the first platform admin (see
    :func:`~orgschema.bootstrap_first_admin`) and answers ``201 {"id",
    "email"}``; ``409`` once an admin exists or when the e-mail is taken;
    ``422`` naming the field for a missing, non-string or invalid field;
    ``400`` for malformed JSON, a body that is not an object or a content
    type other than JSON; ``413`` for a body over 16 KB; ``405`` for other
    methods; ``503`` when the database is unreachable. With a setup token,
    every request needs ``Authorization: Bearer <token>`` or gets ``401``.
    No refused request writes anything.

    Outside development and test (``APP_ENV``, else ``NODE_ENV``; unset counts
    as deployed) a setup token is required: without one the endpoint answers
    every request ``503`` (code ``setup_token_required``) and logs an error
    naming ``SETUP_TOKEN`` now, unless ``allow_without_token`` opts out.
    Each admin created is logged at WARNING with the caller's address.

    Mount it at the root (``app.mount("/", first_run_app())``, after your own
    routes) or run it alone: ``uvicorn --factory orgschema.endpoints:first_run_app``.

    :param database_url: The database; ``None`` means ``DATABASE_URL``, and
        without it the database of Piccolo's engine.
    :param setup_token: Required bearer token; ``None`` means ``SETUP_TOKEN``
        (and no token at all when that is unset too).
    :param allow_without_token: Serve without a setup token even outside
        development and test; ``None`` means ``ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN``.
    :param settings: Read from the process environment when ``None``; also
        decides the environment recorded by the bootstrap. ``GET`` and
        ``POST`` both use these settings and this database.
    :raises ConfigurationError: the setup token is the empty string.
    :returns: The app; its only route is :data:`FIRST_RUN_PATH`.
    """
    settings = settings or Settings.from_env()
    url = database_url or settings.database_url
    token = setup_token if setup_token is not None else settings.setup_token
    if token == "":
        # An empty token would be matched by an empty bearer (`Bearer `): no protection.
        raise ConfigurationError(
            "the setup token is empty: unset SETUP_TOKEN or give it a non-empty value"
        )
    if allow_without_token is None:
        allow_without_token = settings.setup_allow_without_token
    closed: str | None = None
    if token is None and not is_seedable(settings.environment):
        if allow_without_token:
            logger.warning(
                "the first-run setup is open without a setup token in %s "
                "(allow_without_token): whoever calls it first becomes platform admin",
                settings.environment or "an unset environment",
            )
        else:
            closed = _closed_without_token(settings.environment)
            logger.error("%s", closed)

    async def first_run(request: Request) -> Response:
        if closed is not None:
            return error_response(503, "setup_token_required", closed)
        try:
            _check_token(request, token)
            if request.method in ("GET", "HEAD"):
                required = await setup_required(database_url=url, settings=settings)
                return JSONResponse({"setupRequired": required})
            payload = await _read_json_object(request)
            report = await bootstrap_first_admin(
                email=payload["email"],
                password=payload["password"],
                name=payload["name"],
                database_url=url,
                settings=settings,
            )
        except _Refused as refused:
            return refused.response
        except SetupTokenRejected as exc:
            logger.info("first-run setup: a wrong or missing setup token from %s", _caller(request))
            return _from_orgschema_error(exc)
        except OrgschemaError as exc:
            return _from_orgschema_error(exc)
        except Exception:
            logger.exception("first-run endpoint failed")
            return error_response(500, "internal_error", "the setup failed; see the server's log")
        # A security event: WARNING, so that it shows under Python's default
        # logging configuration too.
        logger.warning(
            "first platform admin created through %s: %s (user id %s, name %r) from %s",
            FIRST_RUN_PATH,
            report.email,
            report.user_id,
            report.name,
            _caller(request),
        )
        return JSONResponse({"id": report.user_id, "email": report.email}, status_code=201)

    return Starlette(
        routes=[Route(FIRST_RUN_PATH, first_run, methods=["GET", "POST"])],
        exception_handlers={HTTPException: _http_error},
    )
