"""Driving the studio over HTTP in tests, the way its own pages do.

A client fetches ``/`` first (Piccolo's CSRF cookie, as the page load sets
it), then sends that token back in ``X-CSRFToken`` with every write. The
fixtures are imported by the test modules that use them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from starlette.applications import Starlette

from orgschema.seeding import DEVELOPMENT_PASSWORD, seed
from orgschema.studio import create_studio
from tests.databases import execute

ADMIN = "admin@example.com"
TEACHER = "teacher@example.com"

#: The secret and secret-bearing columns issue 9 names; written out here so
#: that the tests do not take them from the declaration they check.
ISSUE_SECRETS = frozenset(
    {
        ("account", "password"),
        ("account", "accessToken"),
        ("account", "refreshToken"),
        ("account", "idToken"),
        ("session", "token"),
        ("verification", "value"),
        ("verification", "identifier"),
    }
)

Client = httpx.AsyncClient
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def clean_studio_logins(database_url: str) -> None:
    """Empty Piccolo's ``piccolo_user`` and ``sessions`` (the studio's sign-ins) first."""
    await execute(database_url, "TRUNCATE piccolo_user, sessions RESTART IDENTITY")


@pytest.fixture
async def seeded(database_url: str, clean_tables: None, clean_studio_logins: None) -> str:
    """The development fixtures: admin@example.com is a platform admin, the others are not."""
    await seed("test")
    return database_url


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Clients of a studio app (a fresh ``create_studio()`` unless one is given)."""
    clients: list[Client] = []

    async def make(app: Starlette | None = None, base_url: str = "http://127.0.0.1") -> Client:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app or create_studio()), base_url=base_url
        )
        clients.append(client)
        await client.get("/")  # the CSRF cookie, as the page load sets it
        return client

    yield make
    for client in clients:
        await client.aclose()


def csrf(client: Client) -> dict[str, str]:
    return {"X-CSRFToken": client.cookies["csrftoken"]}


async def login(
    client: Client, email: str = ADMIN, password: str = DEVELOPMENT_PASSWORD, prefix: str = ""
) -> httpx.Response:
    return await client.post(
        f"{prefix}/public/login/",
        json={"username": email, "password": password},
        headers=csrf(client),
    )


async def create_row(client: Client, table: str, values: dict[str, object]) -> httpx.Response:
    """POST a row the way the studio's "Add row" form does: its defaults, then the typed values."""
    defaults = (await client.get(f"/api/tables/{table}/new/")).json()
    return await client.post(
        f"/api/tables/{table}/", json={**defaults, **values}, headers=csrf(client)
    )
