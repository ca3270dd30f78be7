"""Hostile input gets a 4xx with its reason, never a 500, and leaves the studio healthy.

Before: a username or password that was not a string, a lone surrogate, a
JSON body of ``null``, ``"str"`` or ``[]`` were 500s before sign-in;
``__order[]=password``, ``__order=userId.password``, a NUL byte in a filter or
a search, a surrogate in a PATCH and a 1 MB e-mail were 500s after it; a
200 MB sign-in body was read whole, and a 10 MB organization name was stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from orgschema.studio import create_studio, engine_pool, serve_studio
from tests.databases import fetch
from tests.studio_kit import ADMIN, TEACHER, csrf, login

pytestmark = pytest.mark.usefixtures("clean_tables", "clean_studio_logins", "seeded")

JSON = {"content-type": "application/json"}
MB = 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    """One hostile request: sent signed in or not, and the 4xx it must get."""

    method: str
    path: str
    status: int
    signed_in: bool = True
    params: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Words the reason must contain.
    reason: str = ""


def login_body(value: object) -> bytes:
    return json.dumps(value).encode()


def raw_json(text: str) -> bytes:
    """JSON written by hand: Python's encoder will not write lone surrogates as escapes."""
    return text.encode()


USER = "/api/tables/user/"
ORG = "/api/tables/organization/"
ACCOUNT = "/api/tables/account/"
LOGIN = "/public/login/"

CASES: dict[str, Hostile] = {
    # Before signing in: the sign-in form.
    "username-not-a-string": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=login_body({"username": 123, "password": "x"}),
        reason="username must be a string",
    ),
    "password-a-list": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=login_body({"username": ADMIN, "password": ["x"]}),
        reason="password must be a string",
    ),
    "username-null": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=login_body({"username": None, "password": "x"}),
        reason="username is required",
    ),
    "password-missing": Hostile(
        "POST", LOGIN, 422, False, body=login_body({"username": ADMIN}), reason="password"
    ),
    "body-null": Hostile("POST", LOGIN, 400, False, body=b"null", reason="JSON object"),
    "body-a-string": Hostile("POST", LOGIN, 400, False, body=b'"str"', reason="JSON object"),
    "body-a-list": Hostile("POST", LOGIN, 400, False, body=b"[]", reason="JSON object"),
    "body-a-number": Hostile("POST", LOGIN, 400, False, body=b"42", reason="JSON object"),
    "body-not-json": Hostile("POST", LOGIN, 400, False, body=b'{"username": ', reason="JSON"),
    "body-not-utf8": Hostile("POST", LOGIN, 400, False, body=b"\xff\xfe{}", reason="JSON"),
    "body-nested-8000-deep": Hostile(
        "POST", LOGIN, 400, False, body=b"[" * 8000 + b"]" * 8000, reason="JSON"
    ),
    "username-lone-surrogate": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=raw_json('{"username": "\\ud800@example.com", "password": "x"}'),
        reason="not valid Unicode",
    ),
    "password-lone-surrogate": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=raw_json('{"username": "admin@example.com", "password": "\\udfff"}'),
        reason="not valid Unicode",
    ),
    "username-nul": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=login_body({"username": "admin\x00@example.com", "password": "x"}),
        reason="NUL",
    ),
    "username-400-characters": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=login_body({"username": "x" * 400 + "@example.com", "password": "x"}),
        reason="at most 320 characters",
    ),
    "password-2000-characters": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=login_body({"username": ADMIN, "password": "x" * 2000}),
        reason="at most 1024 characters",
    ),
    "username-a-huge-number": Hostile(
        "POST",
        LOGIN,
        422,
        False,
        body=b'{"username": 1e400, "password": "x"}',
        reason="username must be a string",
    ),
    "login-body-17-kb": Hostile(
        "POST",
        LOGIN,
        413,
        False,
        body=login_body({"username": ADMIN, "password": "x", "pad": "p" * 17_000}),
        reason="at most 16384 bytes",
    ),
    "login-text-plain": Hostile(
        "POST", LOGIN, 415, False, body=b"username=a", headers={"content-type": "text/plain"}
    ),
    "login-multipart": Hostile(
        "POST",
        LOGIN,
        415,
        False,
        body=b"--x--",
        headers={"content-type": "multipart/form-data; boundary=x"},
    ),
    "login-form-nul": Hostile(
        "POST",
        LOGIN,
        400,
        False,
        body=b"username=a%00b&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
        reason="NUL",
    ),
    "login-form-not-utf8": Hostile(
        "POST",
        LOGIN,
        400,
        False,
        body=b"username=\xff&password=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
        reason="UTF-8",
    ),
    "session-cookie-garbage": Hostile(
        "GET", USER, 401, False, headers={"cookie": "id=" + "%00" * 10 + "x" * 4000}
    ),
    "query-20-kb": Hostile("GET", "/public/meta/", 414, False, params=(("q", "q" * 20_000),)),
    "query-nul": Hostile("GET", "/public/meta/", 400, False, params=(("q", "a\x00"),)),
    # Signed in: the table API.
    "order-by-password-brackets": Hostile(
        "GET", ACCOUNT, 400, params=(("__order[]", "password"),), reason="secret"
    ),
    "order-by-dotted-password": Hostile(
        "GET", ACCOUNT, 400, params=(("__order", "userId.password"),), reason="userId.password"
    ),
    "order-by-dotted-email": Hostile(
        "GET", ACCOUNT, 400, params=(("__order", "userId.email"),), reason="userId.email"
    ),
    "order-by-unknown": Hostile("GET", USER, 400, params=(("__order", "-nope"),), reason="nope"),
    "filter-nul": Hostile("GET", USER, 400, params=(("email", "a\x00b"),), reason="NUL"),
    "search-nul": Hostile("GET", f"{USER}ids/", 400, params=(("search", "a\x00b"),), reason="NUL"),
    "filter-not-a-date": Hostile("GET", USER, 422, params=(("createdAt", "not-a-date"),)),
    "filter-not-a-boolean": Hostile("GET", USER, 422, params=(("emailVerified", "maybe"),)),
    "filter-unknown-operator": Hostile(
        "GET", USER, 400, params=(("createdAt__operator", "between"),), reason="one of"
    ),
    "filter-unknown-match": Hostile(
        "GET", USER, 400, params=(("email__match", "regex"),), reason="one of"
    ),
    "page-not-a-number": Hostile("GET", USER, 400, params=(("__page", "abc"),), reason="__page"),
    "page-huge": Hostile("GET", USER, 400, params=(("__page", "9" * 30),), reason="__page"),
    "page-size-100000": Hostile(
        "GET", USER, 400, params=(("__page_size", "100000"),), reason="__page_size"
    ),
    "ids-limit-negative": Hostile("GET", f"{USER}ids/", 400, params=(("limit", "-1"),)),
    "ids-offset-not-a-number": Hostile("GET", f"{USER}ids/", 400, params=(("offset", "x"),)),
    "ids-unknown-parameter": Hostile("GET", f"{USER}ids/", 400, params=(("__order", "id"),)),
    "readable-not-true": Hostile("GET", USER, 400, params=(("__readable", "maybe"),)),
    "detail-not-a-uuid": Hostile("GET", f"{ORG}not-a-uuid/", 400),
    "patch-lone-surrogate": Hostile(
        "PATCH", "{teacher}", 400, body=raw_json('{"name": "\\udc00"}'), reason="Unicode"
    ),
    "patch-not-an-object": Hostile("PATCH", "{teacher}", 400, body=b"[]", reason="JSON object"),
    "patch-unknown-column": Hostile(
        "PATCH", "{teacher}", 400, body=login_body({"nope": 1}), reason="not a column"
    ),
    "patch-email-1-mb": Hostile(
        "PATCH", "{teacher}", 413, body=login_body({"email": "a" * MB + "@example.com"})
    ),
    "patch-email-900-kb": Hostile(
        "PATCH",
        "{teacher}",
        422,
        body=login_body({"email": "a" * 900_000 + "@example.com"}),
        reason="at most 320",
    ),
    "patch-email-verified-not-a-boolean": Hostile(
        "PATCH", "{teacher}", 422, body=login_body({"emailVerified": "maybe"}), reason="boolean"
    ),
    "post-organization-name-10-mb": Hostile(
        "POST", ORG, 413, body=login_body({"name": "n" * 10 * MB, "slug": "huge"})
    ),
    "post-organization-name-500-kb": Hostile(
        "POST",
        ORG,
        422,
        body=login_body({"name": "n" * 500_000, "slug": "huge"}),
        reason="at most 200",
    ),
    "post-organization-name-nan": Hostile("POST", ORG, 400, body=b'{"name": NaN, "slug": "nan"}'),
    "post-a-secret-column": Hostile(
        "POST", ACCOUNT, 400, body=login_body({"password": "x"}), reason="secret"
    ),
    "put-a-row": Hostile("PUT", "{teacher}", 405, body=login_body({"name": "x"}), reason="PATCH"),
    "bulk-delete": Hostile("DELETE", USER, 405),
    "chunked-body-over-1-mb": Hostile("POST", ORG, 413, body=None, reason="at most 1048576"),
    "csrf-token-missing": Hostile("PATCH", "{teacher}", 403, body=login_body({"name": "N"})),
    "change-password": Hostile("POST", "/api/change-password/", 404, body=login_body({})),
    "media-upload": Hostile("POST", "/api/media/", 404, body=b"--x--"),
}


def chunks(size: int) -> Callable[[], Any]:
    async def stream() -> Any:
        for _ in range(size // 65536 + 1):
            yield b"x" * 65536

    return stream


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_hostile_input_is_a_4xx_and_the_studio_stays_healthy(
    database_url: str, make_client, case: Hostile
) -> None:
    async with engine_pool():
        app = create_studio()
        client = await make_client(app)
        if case.signed_in:
            assert (await login(client)).status_code == 200
        (teacher,) = await fetch(database_url, 'SELECT id FROM "user" WHERE email = $1', TEACHER)
        before = await fetch(database_url, 'SELECT * FROM "user" ORDER BY id')
        headers = {**JSON, **case.headers}
        if case is not CASES["csrf-token-missing"]:
            headers.update(csrf(client))
        content: Any = case.body if case.body is not None else chunks(2 * MB)()
        if case.method in ("GET", "DELETE") and case.body is None:
            content = None
        response = await client.request(
            case.method,
            case.path.replace("{teacher}", f"{USER}{teacher['id']}/"),
            params=list(case.params),
            content=content,
            headers=headers,
        )

        assert response.status_code == case.status, response.text[:300]
        assert case.reason in response.text
        assert "Traceback" not in response.text
        # Healthy: the same studio serves the next person at once, and nothing was written.
        assert (await client.get("/public/meta/")).status_code == 200
        fresh = await make_client(app)
        assert (await login(fresh)).status_code == 200
        assert (await fresh.get(USER)).status_code == 200
        assert await fetch(database_url, 'SELECT * FROM "user" ORDER BY id') == before
        assert await fetch(database_url, "SELECT 1 FROM organization WHERE slug = 'huge'") == []


def test_there_are_at_least_forty_hostile_inputs() -> None:
    assert len(CASES) >= 40


async def test_an_oversized_body_is_refused_before_a_byte_is_read() -> None:
    """A 200 MB sign-in body was read whole (10 s, 83 -> 644 MB of memory); now not at all."""
    app = create_studio()
    received: list[object] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append(True)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/public/login/",
        "raw_path": b"/public/login/",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(200 * MB).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 413
    assert received == []


@pytest.mark.parametrize(
    "content_length", [[b"12", b"13"], [b"abc"], [b"-1"]], ids=["twice", "letters", "negative"]
)
async def test_a_malformed_content_length_is_400(content_length: list[bytes]) -> None:
    app = create_studio()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "method": "POST",
        "scheme": "http",
        "path": "/public/login/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")] + [(b"content-length", v) for v in content_length],
        "client": ("127.0.0.1", 40000),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 400
    assert b"Content-Length" in sent[1]["body"]


async def test_a_200_mb_sign_in_over_real_http_is_refused_at_once() -> None:
    """Through the studio's own uvicorn: the answer comes before the body is sent."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.ensure_future(
        serve_studio(host="127.0.0.1", port=0, on_ready=ready.set_result)
    )
    try:
        port = int((await asyncio.wait_for(ready, 60)).rstrip("/").rpartition(":")[2])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /public/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(200 * MB).encode()
            + b"\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 30)
        writer.close()
        assert status_line.startswith(b"HTTP/1.1 413")
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving


async def test_concurrent_hostile_requests_leave_the_studio_serving(make_client) -> None:
    async with engine_pool():
        app = create_studio()
        client = await make_client(app)
        await login(client)
        hostile = [
            client.get(ACCOUNT, params={"__order[]": "password"}),
            client.get(USER, params={"email": "a\x00"}),
            client.post(LOGIN, content=b"null", headers={**JSON, **csrf(client)}),
        ] * 20
        responses = await asyncio.gather(*hostile)
        assert {response.status_code for response in responses} == {400}
        assert (await client.get(USER)).status_code == 200
