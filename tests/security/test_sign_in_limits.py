"""The sign-in rate limit protects without locking admins out.

Before: Piccolo Admin's limiter counted every sign-in, successful ones
included, per peer address only: the 21st sign-in within five minutes, the
right password included, was answered 429 until the process restarted, and
behind a proxy every admin shared one address. From 127.0.0.1 uvicorn
believed ``X-Forwarded-For``, so failed sign-ins under a rotating header were
never limited. Now failures alone count, per account and per address, over a
sliding window; ``X-Forwarded-For`` counts only from ``forwarded_allow_ips``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from click.testing import CliRunner

from orgschema.cli import main
from orgschema.seeding import DEVELOPMENT_PASSWORD
from orgschema.studio import StudioLimits, create_studio, serve_studio
from orgschema.studio import _limits as limits_module
from orgschema.studio._limits import TrustedProxies, client_of
from tests.studio_kit import ADMIN, TEACHER, csrf, login

pytestmark = pytest.mark.usefixtures("clean_tables", "clean_studio_logins", "seeded")

WRONG = "not the password"


class Clock:
    """The limiter's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits_module, "_clock", clock)
    return clock


async def client_from(app: object, address: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),  # type: ignore[arg-type]
        base_url="http://127.0.0.1",
    )
    await client.get("/")
    return client


async def test_successful_sign_ins_never_count(make_client) -> None:
    # Piccolo Admin's own limit refused the 21st sign-in from one address.
    client = await make_client(create_studio(limits=StudioLimits(failures_per_address=3)))
    statuses = [(await login(client)).status_code for _ in range(25)]
    assert statuses == [200] * 25


async def test_failures_are_limited_per_account_with_retry_after(clock: Clock) -> None:
    app = create_studio(
        limits=StudioLimits(failures_per_account=3, failure_window=timedelta(minutes=15))
    )
    attacker = await client_from(app, "198.51.100.1")
    assert [(await login(attacker, ADMIN, WRONG)).status_code for _ in range(3)] == [401] * 3
    clock.now += 10
    limited = await login(attacker, ADMIN, DEVELOPMENT_PASSWORD)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == str(15 * 60 - 10)
    assert "try again in 890 seconds" in limited.json()["detail"]
    # The same account from elsewhere is limited too; other accounts are not.
    elsewhere = await client_from(app, "203.0.113.9")
    assert (await login(elsewhere, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 429
    assert (await login(attacker, TEACHER, WRONG)).status_code == 401


async def test_failures_are_limited_per_address(clock: Clock) -> None:
    app = create_studio(limits=StudioLimits(failures_per_address=3, failures_per_account=100))
    attacker = await client_from(app, "198.51.100.2")
    guesses = [f"user{n}@example.com" for n in range(5)]
    statuses = [(await login(attacker, email, WRONG)).status_code for email in guesses]
    assert statuses == [401, 401, 401, 429, 429]
    # The admin, from their own address, is not locked out by it.
    admin = await client_from(app, "203.0.113.10")
    assert (await login(admin)).status_code == 200


async def test_the_window_slides_and_expires(clock: Clock) -> None:
    app = create_studio(
        limits=StudioLimits(failures_per_account=3, failure_window=timedelta(seconds=60))
    )
    client = await client_from(app, "198.51.100.3")
    for _ in range(3):
        assert (await login(client, ADMIN, WRONG)).status_code == 401
        clock.now += 10  # failures at 0, 10 and 20 s
    clock.now = 1000.0 + 59.5
    limited = await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")
    clock.now = 1000.0 + 60.5  # the first failure has left the window
    assert (await login(client, ADMIN, WRONG)).status_code == 401
    again = await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    # Full again: until the failure at 10 s leaves the window, at 70 s.
    assert (again.status_code, again.headers["retry-after"]) == (429, "10")
    clock.now = 1000.0 + 200
    assert (await login(client, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 200


async def test_a_success_forgets_the_accounts_failures_not_the_addresses(clock: Clock) -> None:
    app = create_studio(limits=StudioLimits(failures_per_account=3, failures_per_address=5))
    client = await client_from(app, "198.51.100.4")
    for _ in range(2):
        assert (await login(client, ADMIN, WRONG)).status_code == 401
    assert (await login(client)).status_code == 200
    statuses = [(await login(client, ADMIN, WRONG)).status_code for _ in range(4)]
    # Three more for the account; the address had two, and reaches five.
    assert statuses == [401, 401, 401, 429]


async def test_attempts_sent_at_once_cannot_all_slip_in(clock: Clock) -> None:
    app = create_studio(limits=StudioLimits(failures_per_account=3))
    client = await client_from(app, "198.51.100.5")
    responses = await asyncio.gather(*(login(client, ADMIN, WRONG) for _ in range(10)))
    assert sorted(response.status_code for response in responses) == [401] * 3 + [429] * 7


async def test_refusals_before_the_password_check_do_not_count(clock: Clock) -> None:
    app = create_studio(limits=StudioLimits(failures_per_account=1, failures_per_address=1))
    client = await client_from(app, "198.51.100.6")
    for _ in range(3):
        forged = await client.post(
            "/public/login/", json={"username": ADMIN, "password": WRONG}
        )  # no CSRF token
        assert forged.status_code == 403
        assert (await client.post("/public/login/", json={"username": ADMIN})).status_code == 422
    assert (await login(client)).status_code == 200


async def test_failures_through_piccolos_html_login_page_count_too(clock: Clock) -> None:
    # piccolo-api's own page posts a form with format=html and answers a
    # wrong password with 200 and the page again, not 401.
    app = create_studio(limits=StudioLimits(failures_per_account=2))
    client = await client_from(app, "198.51.100.7")
    form = {"username": ADMIN, "password": WRONG, "format": "html", **{"csrftoken": ""}}
    statuses = []
    for _ in range(3):
        form["csrftoken"] = client.cookies["csrftoken"]
        statuses.append((await client.post("/public/login/", data=form)).status_code)
    assert statuses == [200, 200, 429]


def test_client_address_comes_from_trusted_proxies_only() -> None:
    def scope(peer: str, *forwarded: str) -> dict[str, object]:
        return {
            "client": (peer, 1234),
            "scheme": "http",
            "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded]
            + [(b"x-forwarded-proto", b"https")],
        }

    none, proxy = TrustedProxies(), TrustedProxies(["10.0.0.0/8", "::1"])
    assert client_of(scope("127.0.0.1", "6.6.6.6"), none) == ("127.0.0.1", "http")
    assert client_of(scope("10.1.2.3", "203.0.113.5"), proxy) == ("203.0.113.5", "https")
    # The right-most address that is not a trusted proxy: what the client
    # put on the left is not believed.
    assert client_of(scope("10.1.2.3", "6.6.6.6, 203.0.113.5, 10.9.9.9"), proxy)[0] == (
        "203.0.113.5"
    )
    assert client_of(scope("10.1.2.3", "6.6.6.6", "203.0.113.5"), proxy)[0] == "203.0.113.5"
    assert client_of(scope("192.0.2.1", "203.0.113.5"), proxy) == ("192.0.2.1", "http")
    assert client_of(scope("::1", "garbage"), proxy)[0] == "garbage"
    assert client_of(scope("192.0.2.1", "203.0.113.5"), TrustedProxies(["*"]))[0] == "203.0.113.5"


@asynccontextmanager
async def served(**options: object) -> AsyncIterator[httpx.AsyncClient]:
    """The studio under uvicorn on a free loopback port, as ``orgschema studio`` serves it."""
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    serving = asyncio.ensure_future(
        serve_studio(host="127.0.0.1", port=0, on_ready=ready.set_result, **options)  # type: ignore[arg-type]
    )
    try:
        url = await asyncio.wait_for(ready, 60)
        async with httpx.AsyncClient(base_url=url) as client:
            await client.get("/")
            yield client
    finally:
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving


async def spoofed_sign_ins(client: httpx.AsyncClient, forwarded: list[str]) -> list[int]:
    statuses = []
    for number, address in enumerate(forwarded):
        response = await client.post(
            "/public/login/",
            json={"username": f"guess{number}@example.com", "password": WRONG},
            headers={**csrf(client), "x-forwarded-for": address},
        )
        statuses.append(response.status_code)
    return statuses


async def test_a_spoofed_x_forwarded_for_is_ignored_by_default() -> None:
    rotating = [f"198.51.100.{n}" for n in range(6)]
    async with served(limits=StudioLimits(failures_per_address=3)) as client:
        assert await spoofed_sign_ins(client, rotating) == [401] * 3 + [429] * 3


async def test_x_forwarded_for_counts_from_a_trusted_proxy() -> None:
    limits = StudioLimits(failures_per_address=3)
    async with served(limits=limits, forwarded_allow_ips=["127.0.0.1"]) as client:
        # Behind the proxy each client has its own address, and its own count...
        rotating = [f"198.51.100.{n}" for n in range(6)]
        assert await spoofed_sign_ins(client, rotating) == [401] * 6
        # ... and one client is limited, whatever the others do.
        assert await spoofed_sign_ins(client, ["203.0.113.7"] * 4) == [401] * 3 + [429]


def test_a_malformed_forwarded_allow_ips_is_refused(database_url: str) -> None:
    result = CliRunner().invoke(
        main, ["studio", "--port", "0", "--forwarded-allow-ips", "10.0.0.1,not-an-ip"]
    )
    assert result.exit_code == 3, result.output
    assert "'not-an-ip' is not an IP address or network" in result.output
