"""The studio's HTTP edge: everything a request must pass before Piccolo Admin sees it.

In order, for every request:

1. **Host.** In production only the configured host names are answered;
   outside production only loopback names (``localhost``, ``*.localhost``,
   ``127.0.0.1``, ``[::1]``) and the configured ones, so a DNS-rebinding
   page cannot reach a development studio whose login is published.
2. **Size.** A query string over ``max_query`` bytes gets 414; a body over
   ``max_login_body`` (sign-in and the other public routes) or
   ``max_api_body`` (``/api``) gets 413, by its ``Content-Length`` before a
   byte is read, or as soon as a chunked body passes the limit.
3. **Shape.** Query parameters of the table API follow Piccolo's grammar
   exactly, naming only the view's own columns (so never a secret one, not
   even through ``__order[]=`` or ``userId.password``); JSON bodies are
   objects of column values; no text holds a NUL or a lone surrogate, which
   PostgreSQL cannot store. Anything else is a 4xx with its reason.
4. **Sign-in.** ``POST /public/login/`` takes JSON (the studio's page) or a
   form (piccolo-api's HTML page) with a string ``username`` and
   ``password``, and is rate limited per account and per client address
   (see :mod:`orgschema.studio._limits`): a limited client gets 429 with
   ``Retry-After``.

Every response carries ``X-Frame-Options: DENY``, ``X-Content-Type-Options:
nosniff``, ``Referrer-Policy: same-origin`` and ``Cache-Control: no-store``
(static assets excepted); in production every cookie is ``Secure``,
Piccolo's ``csrftoken`` included.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from piccolo_api.crud.endpoints import MATCH_TYPES, OPERATOR_MAP
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orgschema.errors import InvalidInputError
from orgschema.studio._access import MAX_PASSWORD_INPUT, SESSION_COOKIE
from orgschema.studio._limits import SignInLimiter, StudioLimits, TrustedProxies, client_of
from orgschema.studio._views import StudioTable
from orgschema.validation import MAX_EMAIL_LENGTH, check_text

logger = logging.getLogger("orgschema.studio")

_LOGIN = "/public/login"
_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)
_NO_STORE = (b"cache-control", b"no-store")

# Piccolo's list parameters (piccolo_api.crud.endpoints.PiccoloCRUD._split_params).
_TRUE = frozenset({"t", "true", "True", "1"})
_MAX_PAGE = 1_000_000
_MAX_PAGE_SIZE = 1000  # PiccoloCRUD.max_page_size
_MAX_IDS_LIMIT = 1000
_MAX_SEARCH = 200
_MAX_RANGE_NAME = 100
_MAX_JSON_DEPTH = 32


class Refused(Exception):
    """A request the studio answers itself, with a 4xx and a reason."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse({"detail": self.detail}, status_code=self.status, headers=self.headers)


###############################################################################
# Hosts


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    name, colon, port = host.rpartition(":")
    return name if colon and port.isdigit() else host


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, without a port) always means this machine.

    ``*.localhost`` counts: browsers resolve it to loopback themselves, never
    through DNS, so a rebinding attack cannot use it.
    """
    name = host.strip().lower().removeprefix("[").removesuffix("]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostPolicy:
    """Which ``Host`` headers the studio answers.

    :param names: Host names (``studio.example.com``), ``*.example.com`` for
        any subdomain, or ``*`` for any host.
    :param loopback: Also answer loopback names (``localhost``, ``127.0.0.1``...);
        the refusal then lists what is answered (in production it names
        nothing, so a stranger does not learn the studio's names).
    """

    def __init__(self, names: Sequence[str], *, loopback: bool) -> None:
        # Given as they are written in a Host header or not: with a port,
        # in brackets, in capitals.
        hostnames = [_hostname(name) for name in names]
        self.any = "*" in hostnames
        self.exact = frozenset(name for name in hostnames if not name.startswith("*"))
        self.suffixes = tuple(name[1:] for name in hostnames if name.startswith("*."))
        self.loopback = loopback

    def allows(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False
        name = _hostname(host)
        if name in self.exact or any(name.endswith(suffix) for suffix in self.suffixes):
            return True
        return self.loopback and is_loopback(name)

    def refusal(self) -> str:
        if not self.loopback:
            return "this studio does not answer to this Host"
        names = ["localhost (and other loopback names)", *sorted(self.exact)]
        names += [f"*{suffix}" for suffix in self.suffixes]
        return f"this studio answers only to {', '.join(names)}: check the Host"


###############################################################################
# Query parameters


def _int(value: str, key: str, low: int, high: int) -> None:
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise Refused(400, f"{key} must be a whole number from {low} to {high}")


def _column(table: StudioTable, name: str, where: str) -> None:
    """Refuse ``name`` (given in ``where``) unless it is a column of ``table``'s view."""
    if name in table.columns:
        return
    if name in table.hidden:
        raise Refused(
            400, f"{table.name}.{name} is secret: the studio never shows, filters or sorts by it"
        )
    base = name.partition(".")[0]
    if base != name and base in table.columns:
        raise Refused(
            400,
            f"{where} names {name!r}, a column of another table: "
            f"only {table.name}'s own columns can be used",
        )
    raise Refused(400, f"{where} names {name!r}, which is not a column of {table.name}")


def _check_list_params(table: StudioTable, params: Sequence[tuple[str, str]]) -> None:
    for raw_key, value in params:
        # Piccolo reads `key[]` (Axios' spelling of a repeated key) as `key`.
        key = raw_key.rstrip("[]") if raw_key.endswith("[]") else raw_key
        if key.endswith("__operator"):
            _column(table, key.removesuffix("__operator"), key)
            if value not in OPERATOR_MAP:
                raise Refused(400, f"{key} must be one of {', '.join(sorted(OPERATOR_MAP))}")
        elif key.endswith("__match"):
            _column(table, key.removesuffix("__match"), key)
            if value not in MATCH_TYPES:
                raise Refused(400, f"{key} must be one of {', '.join(MATCH_TYPES)}")
        elif key == "__order":
            for item in value.split(","):
                _column(table, item.removeprefix("-"), "__order")
        elif key == "__visible_fields":
            for item in value.split(","):
                _column(table, item, "__visible_fields")
        elif key == "__page":
            _int(value, key, 1, _MAX_PAGE)
        elif key == "__page_size":
            _int(value, key, 1, _MAX_PAGE_SIZE)
        elif key in ("__readable", "__range_header"):
            if value not in _TRUE:
                raise Refused(400, f"{key} must be true when given")
        elif key == "__range_header_name":
            if len(value) > _MAX_RANGE_NAME:
                raise Refused(400, f"{key} must be at most {_MAX_RANGE_NAME} characters long")
        else:
            _column(table, key, "a filter")


def _check_ids_params(table: StudioTable, params: Sequence[tuple[str, str]]) -> None:
    for key, value in params:
        if key == "search":
            if len(value) > _MAX_SEARCH:
                raise Refused(400, f"search must be at most {_MAX_SEARCH} characters long")
        elif key == "limit":
            _int(value, key, 1, _MAX_IDS_LIMIT)
        elif key == "offset":
            _int(value, key, 0, 1_000_000_000)
        else:
            raise Refused(400, f"{table.name}/ids/ takes only search, limit and offset")


###############################################################################
# Bodies


def _check_strings(value: Any, depth: int = 0) -> None:
    if depth > _MAX_JSON_DEPTH:
        raise Refused(400, f"the body nests deeper than {_MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        try:
            check_text(value, "a value")
        except InvalidInputError as exc:
            raise Refused(400, f"{exc}: PostgreSQL cannot store it") from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)


def _json(body: bytes, *, check_strings: bool = True) -> Any:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not valid JSON") from None
    if check_strings:
        _check_strings(value)
    return value


def _check_row_body(table: StudioTable, body: bytes, patch: bool) -> None:
    values = _json(body)
    if not isinstance(values, dict):
        raise Refused(400, f"send a JSON object of {table.name}'s column values")
    for key in values:
        if key in table.hidden:
            raise Refused(400, f"{table.name}.{key} is secret: the studio never writes it")
        if patch and key not in table.columns:
            raise Refused(400, f"{key!r} is not a column of {table.name}")


def _login_fields(scope: Scope, body: bytes) -> tuple[str, str]:
    media_type = _header(scope, b"content-type").partition(";")[0].strip().lower()
    values: Any
    if media_type == "application/json":
        # The fields are checked one by one below, each refusal naming its field.
        values = _json(body, check_strings=False)
    elif media_type == "application/x-www-form-urlencoded":
        try:
            values = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            raise Refused(400, "the form is not valid UTF-8") from None
        _check_strings(values)
    else:
        raise Refused(415, 'sign in with JSON: {"username": ..., "password": ...}')
    if not isinstance(values, dict):
        raise Refused(400, 'the body must be a JSON object: {"username": ..., "password": ...}')
    fields = []
    for name, most in (("username", MAX_EMAIL_LENGTH), ("password", MAX_PASSWORD_INPUT)):
        value = values.get(name)
        if value is None or value == "":
            raise Refused(422, f"{name} is required")
        try:
            fields.append(check_text(value, name, max_length=most))
        except InvalidInputError as exc:
            raise Refused(422, str(exc)) from exc
    return fields[0], fields[1]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or ``None`` when the client went away; 413 beyond ``limit``."""
    declared = [value for key, value in scope.get("headers", []) if key == b"content-length"]
    if len(declared) > 1 or (declared and not declared[0].isdigit()):
        raise Refused(400, "malformed Content-Length")
    if declared and int(declared[0]) > limit:
        raise Refused(413, f"the body must be at most {limit} bytes")
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        # Counted as it arrives, so a chunked body cannot get past the limit.
        if len(body) > limit:
            raise Refused(413, f"the body must be at most {limit} bytes")
        if not message.get("more_body", False):
            return bytes(body)


###############################################################################
# The middleware


class StudioGuard:
    """ASGI middleware in front of Piccolo Admin; see the module's docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tables: Mapping[str, StudioTable],
        limits: StudioLimits,
        hosts: HostPolicy,
        proxies: TrustedProxies,
        production: bool,
    ) -> None:
        self.app = app
        self.tables = tables
        self.limits = limits
        self.limiter = SignInLimiter(limits)
        self.hosts = hosts
        self.proxies = proxies
        self.production = production
        self._quiet_until: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address, scheme = client_of(scope, self.proxies)
        scope = {**scope, "client": (address, 0), "scheme": scheme}
        started = False

        async def send_safely(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": self._headers(scope, message)}
            await send(message)

        try:
            await self._handle(scope, receive, send_safely)
        except Refused as refused:
            if started:
                raise
            await refused.response()(scope, receive, send_safely)
        except Exception:
            # Logged here, through WithoutRowDetails, rather than re-raised to
            # the server, whose log would print the error's DETAIL.
            logger.exception("studio request failed: %s %s", scope["method"], scope["path"])
            if not started:
                response = JSONResponse(
                    {"detail": "the studio failed to answer; see its log"}, status_code=500
                )
                await response(scope, receive, send_safely)

    def _headers(self, scope: Scope, message: Message) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        for key, value in message.get("headers", []):
            if key == b"set-cookie" and self.production and not _is_secure(value):
                # piccolo-api's CSRF middleware never marks its cookie Secure.
                value += b"; Secure"
            headers.append((key, value))
        headers += _HEADERS
        if not _relative(scope).startswith("/assets/"):
            headers.append(_NO_STORE)
        return headers

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.hosts.allows(_header(scope, b"host")):
            raise Refused(400, self.hosts.refusal())
        if len(scope.get("query_string", b"")) > self.limits.max_query:
            raise Refused(414, f"the query string must be at most {self.limits.max_query} bytes")
        params = Request(scope).query_params.multi_items()
        if any("\x00" in key or "\x00" in value for key, value in params):
            raise Refused(400, "the query holds a NUL character, which PostgreSQL cannot store")
        path = _relative(scope)
        if path.startswith("/api/change-password"):
            # Piccolo Admin would change the mirror row's password, which no
            # one signs in with: the password is Better-auth's.
            raise Refused(
                404,
                "the studio has no password of its own: change it where users sign in "
                "to the application",
            )
        if path.startswith("/api/media"):
            raise Refused(404, "the studio stores no media")
        api = path.startswith("/api/")
        limit = self.limits.max_api_body if api else self.limits.max_login_body
        body = await _read_body(scope, receive, limit)
        if body is None:
            return
        replay = _replay(body, receive)
        if path == _LOGIN or path.startswith(f"{_LOGIN}/"):
            if scope["method"] == "POST":
                await self._sign_in(scope, body, replay, send)
                return
        elif api:
            self._check_table_request(scope, path, params, body)
        await self.app(scope, replay, send)

    def _check_table_request(
        self, scope: Scope, path: str, params: Sequence[tuple[str, str]], body: bytes
    ) -> None:
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[:2] != ["api", "tables"] or parts[2] not in self.tables:
            return
        table, rest, method = self.tables[parts[2]], parts[3:], scope["method"]
        if method == "PUT":
            # PUT, which the studio's pages never send, answers a stray field
            # with a 500 in piccolo-api; PATCH does everything it would.
            raise Refused(405, "edit rows with PATCH")
        if rest in ([], ["count"]) and method in ("GET", "HEAD"):
            _check_list_params(table, params)
        elif rest == ["ids"]:
            _check_ids_params(table, params)
        elif len(rest) == 1 and rest[0] not in ("schema", "new", "references", "count", "ids"):
            if method in ("GET", "HEAD"):
                _check_list_params(table, params)
            elif params:
                raise Refused(400, f"{method} takes no query parameters")
            if method == "PATCH":
                _check_row_body(table, body, patch=True)
        elif params:
            raise Refused(400, f"{path} takes no query parameters")
        if rest == [] and method == "POST":
            _check_row_body(table, body, patch=False)

    def _announce(self, address: str, wait: int) -> None:
        """Log a limited address once for as long as it stays limited, not at every attempt."""
        now = time.monotonic()
        if self._quiet_until.get(address, 0.0) > now:
            return
        if len(self._quiet_until) >= self.limits.tracked_keys:
            self._quiet_until.clear()
        self._quiet_until[address] = now + wait
        logger.warning(
            "studio: sign-ins from %s are refused for %d s after too many failures", address, wait
        )

    async def _sign_in(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        username, _password = _login_fields(scope, body)
        account, address = username.strip().lower(), scope["client"][0]
        wait = self.limiter.retry_after(account, address)
        if wait is not None:
            self._announce(address, wait)
            raise Refused(
                429,
                f"too many failed sign-ins for this account or from this address; "
                f"try again in {wait} seconds",
                headers={"Retry-After": str(wait)},
            )
        attempt = self.limiter.begin(account, address)
        outcome = {"status": 0, "session": False}
        cookie = f"{SESSION_COOKIE}=".encode()

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
                outcome["session"] = any(
                    key == b"set-cookie" and value.startswith(cookie)
                    for key, value in message.get("headers", [])
                )
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            if outcome["session"]:
                self.limiter.succeeded(attempt)
            elif outcome["status"] not in (200, 401):
                # Refused before the password was checked (CSRF, say), or
                # broke. A 200 without a session is piccolo-api's HTML login
                # page (format=html) answering a wrong password: a failure.
                self.limiter.void(attempt)


def _is_secure(cookie: bytes) -> bool:
    attributes = cookie.split(b";")[1:]
    return any(attribute.strip().lower() == b"secure" for attribute in attributes)


def _relative(scope: Scope) -> str:
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return path


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


###############################################################################
# Errors inside Piccolo Admin


def _reason(exc: Exception) -> str:
    """What went wrong, for a response: a database error's message alone, never its DETAIL."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.args[0]) if exc.args else type(exc).__name__
    return str(exc)


async def _bad_value(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"detail": f"the request holds an invalid value: {_reason(exc)}"}, status_code=400
    )


async def _too_large(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"detail": f"a value is too large for the database to index: {_reason(exc)}"},
        status_code=422,
    )


async def _database_down(request: Request, exc: Exception) -> Response:
    logger.error("studio: the database is unavailable: %s", _reason(exc))
    return JSONResponse({"detail": "the database is unavailable; try again later"}, status_code=503)


class WithoutRowDetails(logging.Filter):
    """Keep the DETAIL of database errors out of the log.

    PostgreSQL puts the whole failing row into it ("Failing row contains
    (...)"), and rows of ``account``, ``session`` and ``verification`` hold
    the secrets of :mod:`orgschema.secret_columns`; piccolo-api logs every
    constraint violation with its traceback. The record keeps the error's
    message, without the traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, asyncpg.PostgresError) and getattr(error, "detail", None):
            record.msg = (
                f"{record.getMessage()}: {type(error).__name__}: {_reason(error)} "
                "(DETAIL withheld: the row it shows may hold secrets)"
            )
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


#: The loggers that write database errors raised while serving the studio.
_ERROR_LOGGERS = ("piccolo_api.crud.exceptions", "piccolo_admin.endpoints", "orgschema.studio")


def withhold_row_details() -> None:
    """Install :class:`WithoutRowDetails` on the loggers that need it, once per process."""
    for name in _ERROR_LOGGERS:
        logger_ = logging.getLogger(name)
        if not any(isinstance(item, WithoutRowDetails) for item in logger_.filters):
            logger_.addFilter(WithoutRowDetails())


def harden(app: Starlette) -> None:
    """Answer the errors bad input can still raise inside Piccolo Admin with a 4xx, not a 500.

    Type errors in filter values (pydantic's ``ValidationError`` is a
    ``ValueError``), values the database refuses, and values too large for
    an index each get a response with the reason; a database that went away
    gets 503.

    :param app: One of Piccolo Admin's FastAPI apps (the root, ``/api``, ``/public``).
    """
    app.add_exception_handler(ValueError, _bad_value)
    app.add_exception_handler(asyncpg.DataError, _bad_value)
    app.add_exception_handler(asyncpg.ProgramLimitExceededError, _too_large)
    for unavailable in (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
        app.add_exception_handler(unavailable, _database_down)
