"""``POST /api/setup/first-run`` driven over HTTP: statuses, error bodies, the token, the race."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from orgschema import ConfigurationError, Settings, first_run_app
from orgschema.passwords import verify_password
from tests.capacity import concurrency
from tests.databases import MakeDatabase
from tests.rows import admin_rows, row_counts

pytestmark = pytest.mark.usefixtures("clean_tables")

PATH = "/api/setup/first-run"
VALID = {"email": "Founder@Example.com", "password": "correct horse battery", "name": "Founder"}
PRODUCTION = Settings(environment="production")


def open_app(database_url: str) -> object:
    """The endpoint in production, opened without a token by name, to test everything else.

    What a token changes, and the refusal without one, are tested below and
    in tests/security/test_first_run.py.
    """
    return first_run_app(database_url, settings=PRODUCTION, allow_without_token=True)


def client_for(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://setup.test")


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(open_app(database_url)) as http:
        yield http


async def test_get_says_setup_is_needed_until_post_creates_the_admin(
    client: httpx.AsyncClient, database_url: str
) -> None:
    assert (await client.get(PATH)).json() == {"setupRequired": True}

    created = await client.post(PATH, json=VALID)

    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "email"}
    assert body["email"] == "founder@example.com" and len(body["id"]) == 32
    assert "correct horse" not in created.text and ":" not in body["id"]
    assert (await client.get(PATH)).json() == {"setupRequired": False}
    counts = await row_counts(database_url)
    assert (counts["user"], counts["account"], counts["profile"]) == (1, 1, 1)


async def test_second_post_is_409_and_writes_nothing(
    client: httpx.AsyncClient, database_url: str
) -> None:
    assert (await client.post(PATH, json=VALID)).status_code == 201
    before = await row_counts(database_url)

    again = await client.post(PATH, json={**VALID, "email": "second@example.com"})

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_bootstrapped"
    assert await row_counts(database_url) == before


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    return body["error"]


@pytest.mark.parametrize(
    ("request_kwargs", "status", "code", "field"),
    [
        ({"json": {**VALID, "email": "not-an-email"}}, 422, "invalid_input", "email"),
        ({"json": {**VALID, "password": "short"}}, 422, "invalid_input", "password"),
        ({"json": {**VALID, "password": "p" * 129}}, 422, "invalid_input", "password"),
        ({"json": {**VALID, "name": ""}}, 422, "invalid_input", "name"),
        ({"json": {"email": VALID["email"], "name": "N"}}, 422, "invalid_input", "password"),
        ({"json": {"password": "long enough", "name": "N"}}, 422, "invalid_input", "email"),
        ({"json": {**VALID, "name": None}}, 422, "invalid_input", "name"),
        ({"json": {**VALID, "email": ["a@example.com"]}}, 422, "invalid_input", "email"),
        ({"json": {**VALID, "password": 12345678}}, 422, "invalid_input", "password"),
        ({"json": {**VALID, "name": "\u0000"}}, 422, "invalid_input", "name"),
        ({"json": ["a list"]}, 400, "invalid_request", None),
        ({"json": "a string"}, 400, "invalid_request", None),
        (
            {"content": b'{"email": ', "headers": {"content-type": "application/json"}},
            400,
            "invalid_json",
            None,
        ),
        (
            {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}},
            400,
            "invalid_json",
            None,
        ),
        (
            {"content": b"[" * 8000 + b"]" * 8000, "headers": {"content-type": "application/json"}},
            400,
            "invalid_json",
            None,
        ),
        ({"data": VALID}, 400, "unsupported_media_type", None),
        (
            {"content": json.dumps(VALID), "headers": {"content-type": "text/plain"}},
            400,
            "unsupported_media_type",
            None,
        ),
        ({"content": json.dumps(VALID)}, 400, "unsupported_media_type", None),
        ({"json": {**VALID, "padding": "x" * 16_500}}, 413, "payload_too_large", None),
    ],
    ids=lambda value: value if isinstance(value, (int, str)) else None,
)
async def test_bad_requests_get_a_json_error_naming_the_field_and_write_nothing(
    client: httpx.AsyncClient,
    database_url: str,
    request_kwargs: dict,
    status: int,
    code: str,
    field: str | None,
) -> None:
    response = await client.post(PATH, **request_kwargs)

    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error["field"]) == (code, field)
    assert isinstance(error["message"], str) and error["message"]
    assert sum((await row_counts(database_url)).values()) == 0


async def test_json_content_type_with_charset_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        PATH, content=json.dumps(VALID), headers={"content-type": "Application/JSON; charset=utf-8"}
    )
    assert response.status_code == 201


async def test_a_chunked_body_over_16_kb_is_413_without_content_length(
    client: httpx.AsyncClient, database_url: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.com", "password": "long enough", "name": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    response = await client.post(
        PATH, content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert sum((await row_counts(database_url)).values()) == 0


async def test_a_body_of_exactly_16_kb_is_read(client: httpx.AsyncClient) -> None:
    body = json.dumps({**VALID, "padding": ""}).encode()
    body = json.dumps({**VALID, "padding": "x" * (16 * 1024 - len(body))}).encode()
    assert len(body) == 16 * 1024
    response = await client.post(PATH, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 201


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_methods_are_405_with_allow(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, PATH, json=VALID)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
    assert error_of(response)["code"] == "method_not_allowed"


async def test_other_paths_are_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/setup")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        "Bearer s3t-up-t0ken-but-longer",
        "Basic s3t-up-t0ken",
        "s3t-up-t0ken",
        "Bearer",
    ],
)
async def test_with_a_setup_token_every_request_needs_it(
    database_url: str, authorization: str | None
) -> None:
    app = first_run_app(database_url, setup_token="s3t-up-t0ken", settings=PRODUCTION)
    headers = {"authorization": authorization} if authorization else {}
    async with client_for(app) as http:
        posted = await http.post(PATH, json=VALID, headers=headers)
        asked = await http.get(PATH, headers=headers)
    for response in (posted, asked):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert error_of(response)["code"] == "unauthorized"
        assert "s3t-up-t0ken" not in response.text
    assert sum((await row_counts(database_url)).values()) == 0


async def test_the_right_token_is_accepted(database_url: str) -> None:
    app = first_run_app(database_url, setup_token="s3t-up-t0ken", settings=PRODUCTION)
    async with client_for(app) as http:
        response = await http.post(
            PATH, json=VALID, headers={"authorization": "Bearer s3t-up-t0ken"}
        )
    assert response.status_code == 201


async def test_setup_token_and_database_come_from_the_environment(database_url: str) -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": database_url, "SETUP_TOKEN": "from-env", "APP_ENV": "staging"}
    )
    async with client_for(first_run_app(settings=settings)) as http:
        refused = await http.post(PATH, json=VALID)
        accepted = await http.post(PATH, json=VALID, headers={"authorization": "Bearer from-env"})
    assert (refused.status_code, accepted.status_code) == (401, 201)
    assert (await row_counts(database_url))["environment_marker"] == 1


@pytest.mark.concurrency
async def test_concurrent_requests_make_exactly_one_admin(migrated_database: MakeDatabase) -> None:
    # A private database, and as many requests (each its own connection) as
    # the shared server has room for, up to 50.
    url = await migrated_database()
    callers = await concurrency(url, 50)
    async with client_for(open_app(url)) as http:
        responses = await asyncio.gather(
            *(
                http.post(PATH, json={**VALID, "email": f"racer{n}@example.com"})
                for n in range(callers)
            )
        )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (callers - 1)
    counts = await row_counts(url)
    assert (counts["user"], counts["account"], counts["profile"]) == (1, 1, 1)


async def test_an_unreachable_database_is_503_without_details() -> None:
    app = open_app("postgresql://postgres:hunter2@127.0.0.1:1/nowhere")
    async with client_for(app) as http:
        responses = [await http.get(PATH), await http.post(PATH, json=VALID)]
    for response in responses:
        assert response.status_code == 503
        assert error_of(response)["code"] == "unavailable"
        assert "127.0.0.1" not in response.text and "hunter2" not in response.text


async def hello(_request: object) -> PlainTextResponse:
    return PlainTextResponse("service route")


async def test_mounts_in_a_starlette_service_beside_its_own_routes(database_url: str) -> None:
    service = Starlette(
        routes=[
            Route("/hello", hello),
            Mount("/", app=open_app(database_url)),
        ]
    )
    async with client_for(service) as http:
        assert (await http.get("/hello")).text == "service route"
        assert (await http.post(PATH, json=VALID)).status_code == 201


async def test_mounts_in_a_fastapi_service(database_url: str) -> None:
    from fastapi import FastAPI

    service = FastAPI()

    @service.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    service.mount("/", first_run_app(database_url, setup_token="t0ken", settings=PRODUCTION))
    bearer = {"authorization": "Bearer t0ken"}
    async with client_for(service) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.get(PATH, headers=bearer)).json() == {"setupRequired": True}
        created = await http.post(PATH, json=VALID, headers=bearer)
    assert created.status_code == 201


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_runs_alone_under_uvicorn(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    bearer = {"authorization": "Bearer from-the-environment"}
    env = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "NODE_ENV", "SETUP_TOKEN")}
    server = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "orgschema.endpoints:first_run_app"),
        *("--port", str(port)),
        env={
            **env,
            "DATABASE_URL": database_url,
            "PICCOLO_CONF": "",
            "APP_ENV": "production",
            "SETUP_TOKEN": "from-the-environment",
        },
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    asked = await http.get(PATH, headers=bearer)
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "uvicorn did not start"
                    await asyncio.sleep(0.1)
            created = await http.post(PATH, json=VALID, headers=bearer)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
    assert asked.json() == {"setupRequired": True}
    assert created.status_code == 201
    (row,) = await admin_rows(database_url)
    assert await verify_password(VALID["password"], row["password"])


@pytest.mark.parametrize(
    "make_app",
    [
        lambda url: first_run_app(url, setup_token="", settings=PRODUCTION),
        lambda url: first_run_app(url, settings=Settings(environment="production", setup_token="")),
    ],
    ids=["argument", "settings"],
)
def test_an_empty_setup_token_is_a_configuration_error(database_url: str, make_app) -> None:  # type: ignore[no-untyped-def]
    # An empty token would let `Authorization: Bearer ` (an empty bearer) in.
    with pytest.raises(ConfigurationError, match="unset SETUP_TOKEN or give it a non-empty value"):
        make_app(database_url)
