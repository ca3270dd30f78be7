"""Cookies and hosts: production hygiene, and no DNS rebinding of a development studio.

Before: in production the ``csrftoken`` cookie was not ``Secure``; outside
production the studio answered any ``Host``, so a page on an attacker's
domain that re-pointed its DNS at 127.0.0.1 could drive a development studio
whose login (admin@example.com / orgschema-dev-password) is published.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from orgschema.settings import Settings
from orgschema.studio import create_studio, serve_studio
from tests.studio_kit import csrf, login

pytestmark = pytest.mark.usefixtures("clean_tables", "clean_studio_logins", "seeded")


def cookies_set(response: httpx.Response) -> dict[str, str]:
    return {
        value.partition("=")[0]: value
        for key, value in response.headers.multi_items()
        if key == "set-cookie"
    }


async def test_every_production_cookie_is_secure() -> None:
    app = create_studio(settings=Settings(environment="production"), allowed_hosts=["studio.test"])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://studio.test"
    ) as client:
        await check_cookies(client)


async def check_cookies(client: httpx.AsyncClient) -> None:
    csrf_cookie = cookies_set(await client.get("/"))["csrftoken"]
    signed_in = await client.post(
        "/public/login/",
        json={"username": "admin@example.com", "password": "orgschema-dev-password"},
        headers={**csrf(client), "Referer": "https://studio.test/"},
    )
    assert signed_in.status_code == 200, signed_in.text
    session_cookie = cookies_set(signed_in)["id"]
    for cookie in (csrf_cookie, session_cookie):
        assert "; Secure" in cookie, cookie
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    signed_out = await client.post(
        "/public/logout/", headers={**csrf(client), "Referer": "https://studio.test/"}
    )
    assert all("; Secure" in cookie for cookie in cookies_set(signed_out).values())


async def test_development_cookies_work_over_plain_http(make_client) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_studio()), base_url="http://127.0.0.1"
    ) as client:
        page = await client.get("/")
        assert "Secure" not in cookies_set(page)["csrftoken"]
        assert (await login(client)).status_code == 200


async def test_responses_carry_the_security_headers(make_client) -> None:
    client = await make_client()
    await login(client)
    for path in ("/", "/api/tables/user/", "/public/meta/", "/api/change-password/"):
        response = await client.get(path)
        assert response.headers["x-frame-options"] == "DENY", path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert response.headers["referrer-policy"] == "same-origin", path
        assert response.headers["cache-control"] == "no-store", path


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost:8000", 200),
        ("LOCALHOST", 200),
        ("127.0.0.1:8000", 200),
        ("127.1.2.3", 200),
        ("[::1]:8000", 200),
        ("studio.localhost:8000", 200),
        ("rebinding.example:8000", 400),
        ("127.0.0.1.nip.io", 400),
        ("localhost.rebinding.example", 400),
        ("192.168.1.20:8000", 400),
        ("", 400),
    ],
)
async def test_a_development_studio_answers_only_loopback_host_names(
    make_client, host: str, status: int
) -> None:
    app = create_studio(settings=Settings(environment="development"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        response = await client.get("/", headers={"host": host})
        signing_in = await client.post(
            "/public/login/",
            json={"username": "admin@example.com", "password": "orgschema-dev-password"},
            headers={"host": host},
        )
    assert response.status_code == status
    if status == 400:
        assert "answers only to localhost" in response.json()["detail"]
        assert signing_in.status_code == 400


async def test_named_hosts_are_answered_besides_loopback_and_in_production_alone() -> None:
    dev = create_studio(allowed_hosts=["studio.lan", "*.corp.test"])
    production = create_studio(production=True, allowed_hosts=["studio.lan", "*.corp.test"])
    expected = {
        ("studio.lan", dev): 200,
        ("a.corp.test", dev): 200,
        ("localhost", dev): 200,
        ("other.lan", dev): 400,
        ("studio.lan", production): 200,
        ("a.b.corp.test", production): 200,
        ("corp.test", production): 400,
        ("localhost", production): 400,
        ("127.0.0.1", production): 400,
    }
    for (host, app), status in expected.items():
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as client:
            assert (await client.get("/", headers={"host": host})).status_code == status, host


@asynccontextmanager
async def served() -> AsyncIterator[str]:
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.ensure_future(
        serve_studio(host="127.0.0.1", port=0, on_ready=ready.set_result)
    )
    try:
        yield await asyncio.wait_for(ready, 60)
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving


async def test_a_studio_served_on_loopback_refuses_a_rebinding_host() -> None:
    async with served() as url, httpx.AsyncClient(base_url=url) as client:
        port = url.rstrip("/").rpartition(":")[2]
        rebound = await client.get("/", headers={"host": f"attacker.example:{port}"})
        assert rebound.status_code == 400
        assert (await client.get("/", headers={"host": f"localhost:{port}"})).status_code == 200
        assert (await client.get("/")).status_code == 200
