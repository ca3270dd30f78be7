"""The studio over HTTP, without a browser: who gets in, what it shows, what it refuses.

Requests go through the real ASGI app (``create_studio``) to the session's
database, the way the studio's own pages send them: a CSRF cookie and header,
a JSON login, then the ``/api`` of Piccolo Admin.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from piccolo.apps.user.tables import BaseUser
from piccolo.engine.finder import engine_finder
from starlette.applications import Starlette
from starlette.routing import Mount

from orgschema.bootstrap import bootstrap_first_admin
from orgschema.errors import ConfigurationError
from orgschema.seeding import DEVELOPMENT_PASSWORD
from orgschema.settings import Settings
from orgschema.studio import StudioLogin, _access, create_studio, engine_pool
from orgschema.tables import ALL_TABLES
from tests.databases import fetch
from tests.studio_kit import ADMIN, TEACHER, Client, create_row, csrf, login

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("clean_tables", "clean_studio_logins")

REFUSED = {"detail": "Login failed"}

###############################################################################
# Who gets in


async def test_bootstrapped_admin_signs_in_at_once(database_url: str, make_client) -> None:
    await bootstrap_first_admin(
        email="First.Admin@Example.com",
        password="a long first password",
        name="First Admin",
        settings=Settings(environment="test"),
    )
    client = await make_client()
    assert (await client.get("/api/tables/")).status_code == 401
    response = await login(client, "first.admin@example.com", "a long first password")
    assert response.status_code == 200, response.text
    me = await client.get("/api/user/")
    assert me.status_code == 200 and me.json()["username"] == "first.admin@example.com"
    assert (await client.get("/api/tables/")).status_code == 200


@pytest.mark.usefixtures("seeded")
async def test_email_is_matched_as_better_auth_stores_it(make_client) -> None:
    client = await make_client()
    assert (await login(client, "  Admin@EXAMPLE.com ", DEVELOPMENT_PASSWORD)).status_code == 200


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("email", "password"),
    [
        (ADMIN, "not the password"),  # wrong password
        (TEACHER, DEVELOPMENT_PASSWORD),  # right password, not a platform admin
        ("nobody@example.com", DEVELOPMENT_PASSWORD),  # unknown e-mail
    ],
    ids=["wrong-password", "not-platform-admin", "unknown-email"],
)
async def test_every_refusal_looks_the_same(make_client, email: str, password: str) -> None:
    client = await make_client()
    response = await login(client, email, password)
    assert (response.status_code, response.json()) == (401, REFUSED)
    assert "set-cookie" not in response.headers or "id=" not in response.headers["set-cookie"]
    assert (await client.get("/api/user/")).status_code == 401


@pytest.mark.usefixtures("seeded")
async def test_every_sign_in_costs_exactly_one_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same work on every path, so timing cannot tell an unknown e-mail from a wrong password."""
    calls: list[str] = []
    real = _access.verify_password

    async def counting(password: str, stored: str) -> bool:
        calls.append(stored)
        return await real(password, stored)

    monkeypatch.setattr(_access, "verify_password", counting)
    attempts = {
        "admin": (ADMIN, DEVELOPMENT_PASSWORD),
        "wrong-password": (ADMIN, "not the password"),
        "not-platform-admin": (TEACHER, DEVELOPMENT_PASSWORD),
        "unknown-email": ("nobody@example.com", DEVELOPMENT_PASSWORD),
        "over-long-email": ("x" * 400 + "@example.com", DEVELOPMENT_PASSWORD),
        "over-long-password": (ADMIN, DEVELOPMENT_PASSWORD + "x" * 2000),
        "nul": ("admin\x00@example.com", DEVELOPMENT_PASSWORD),
    }
    results = {}
    for name, (email, password) in attempts.items():
        calls.clear()
        results[name] = await StudioLogin.login(email, password)
        assert len(calls) == 1, name
        assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{128}", calls[0]), name
    assert isinstance(results.pop("admin"), int)
    assert set(results.values()) == {None}


@pytest.mark.usefixtures("seeded")
async def test_a_demoted_admin_is_refused_at_the_next_request(
    database_url: str, make_client
) -> None:
    """The rest (deleted, re-promoted, e-mail changed) is in tests/security/test_sessions.py."""
    client = await make_client()
    assert (await login(client, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 200
    assert (await client.get("/api/tables/user/")).status_code == 200

    await fetch(
        database_url,
        "UPDATE profile SET role = 'teacher' FROM \"user\" u "
        "WHERE profile.user_id = u.id AND u.email = $1",
        ADMIN,
    )
    assert (await client.get("/api/tables/user/")).status_code == 401


@pytest.mark.usefixtures("seeded")
async def test_sessions_are_short_by_default_and_configurable(
    database_url: str, make_client
) -> None:
    for app, idle, most in (
        (create_studio(), timedelta(hours=1), timedelta(hours=8)),
        (
            create_studio(
                session_expiry=timedelta(minutes=15), max_session_expiry=timedelta(hours=2)
            ),
            timedelta(minutes=15),
            timedelta(hours=2),
        ),
    ):
        await fetch(database_url, "TRUNCATE sessions")
        client = await make_client(app)
        before = datetime.now()
        response = await login(client, ADMIN, DEVELOPMENT_PASSWORD)
        assert f"Max-Age={int(most.total_seconds())}" in response.headers["set-cookie"]
        (row,) = await fetch(database_url, "SELECT expiry_date, max_expiry_date FROM sessions")
        assert abs(row["expiry_date"] - before - idle) < timedelta(minutes=1)
        assert abs(row["max_expiry_date"] - before - most) < timedelta(minutes=1)


def test_session_lengths_must_make_sense() -> None:
    with pytest.raises(ConfigurationError, match="at most the maximum"):
        create_studio(session_expiry=timedelta(hours=2), max_session_expiry=timedelta(hours=1))
    with pytest.raises(ConfigurationError):
        create_studio(session_expiry=timedelta(0))


async def admin_id(url: str) -> str:
    (row,) = await fetch(url, 'SELECT id FROM "user" WHERE email = $1', ADMIN)
    return str(row["id"])


@pytest.mark.usefixtures("seeded")
async def test_the_mirror_row_grants_nothing_outside_the_studio(
    database_url: str, make_client
) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)  # a second sign-in reuses the row
    rows = await fetch(
        database_url,
        "SELECT username, email, first_name, active, admin, superuser FROM piccolo_user",
    )
    (row,) = rows
    key = row["username"].removeprefix("orgschema-studio-")
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert row["email"] == f"{key}@studio.orgschema.invalid"
    assert tuple(row)[2:] == (await admin_id(database_url), False, False, False)
    # Piccolo's own login (a service's own Piccolo Admin) never accepts it.
    assert await BaseUser.login(row["username"], DEVELOPMENT_PASSWORD) is None


@pytest.mark.usefixtures("seeded")
async def test_signing_in_tidies_only_the_admins_own_lapsed_sessions(
    database_url: str, make_client
) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    (mirror,) = await fetch(
        database_url,
        "SELECT id FROM piccolo_user WHERE first_name = $1",
        await admin_id(database_url),
    )
    lapsed = "now() - interval '1 day'"
    await fetch(
        database_url,
        "INSERT INTO sessions (token, user_id, expiry_date, max_expiry_date) VALUES "
        f"('lapsed-mine', $1, {lapsed}, {lapsed}), ('lapsed-other', $1 + 1000, {lapsed}, {lapsed})",
        mirror["id"],
    )
    await login(await make_client(), ADMIN, DEVELOPMENT_PASSWORD)
    tokens = {row["token"] for row in await fetch(database_url, "SELECT token FROM sessions")}
    assert "lapsed-mine" not in tokens and "lapsed-other" in tokens
    assert len(tokens) == 3  # the other service's, and the two live sign-ins


@pytest.mark.usefixtures("seeded")
async def test_a_service_piccolo_user_with_the_same_email_is_left_alone(
    database_url: str, make_client
) -> None:
    """A service's own Piccolo Admin user with the admin's e-mail keeps its password and flags."""
    await BaseUser.create_user(
        username="ops", password="ops-password-1", email=ADMIN, active=True, admin=True
    )
    client = await make_client()
    assert (await login(client, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 200
    rows = await fetch(
        database_url, "SELECT username, active, admin FROM piccolo_user WHERE email = $1", ADMIN
    )
    assert [tuple(row) for row in rows] == [("ops", True, True)]
    assert await BaseUser.login("ops", "ops-password-1") is not None
    # And its sessions (from the service's own admin) do not open the studio.
    await fetch(
        database_url,
        "UPDATE sessions SET user_id = (SELECT id FROM piccolo_user WHERE username = 'ops')",
    )
    assert (await client.get("/api/tables/")).status_code == 401


@pytest.mark.usefixtures("seeded")
async def test_a_row_squatting_the_mirror_username_is_never_used(
    database_url: str, make_client, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    assert (await login(client, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 200
    (mirror,) = await fetch(database_url, "SELECT username FROM piccolo_user")
    await fetch(database_url, "TRUNCATE piccolo_user, sessions")
    await BaseUser.create_user(
        username=mirror["username"], password="ops-password-1", email="ops@example.com"
    )
    response = await login(await make_client(), ADMIN, DEVELOPMENT_PASSWORD)
    assert (response.status_code, response.json()) == (401, REFUSED)
    assert "is not the studio's mirror" in caplog.text
    assert await fetch(database_url, "SELECT 1 FROM sessions") == []


@pytest.mark.usefixtures("seeded")
async def test_there_is_no_studio_password_to_change(make_client) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    response = await client.post(
        "/api/change-password/",
        json={"current_password": DEVELOPMENT_PASSWORD, "new_password": "x" * 12},
        headers=csrf(client),
    )
    assert response.status_code == 404
    assert "no password of its own" in response.json()["detail"]


async def test_posting_without_the_csrf_token_is_refused(make_client) -> None:
    client = await make_client()
    response = await client.post(
        "/public/login/", json={"username": ADMIN, "password": DEVELOPMENT_PASSWORD}
    )
    assert response.status_code == 403


###############################################################################
# Production


def test_production_needs_allowed_hosts() -> None:
    with pytest.raises(ConfigurationError, match="allowed_hosts"):
        create_studio(production=True)
    with pytest.raises(ConfigurationError, match="allowed_hosts"):
        create_studio(settings=Settings(environment="production"))
    create_studio(settings=Settings(environment="development"))


@pytest.mark.usefixtures("seeded")
async def test_production_cookies_are_secure_and_hosts_checked(make_client) -> None:
    app = create_studio(settings=Settings(environment="Production"), allowed_hosts=["studio.test"])
    stranger = await make_client(app, base_url="https://evil.test")
    assert (await stranger.get("/")).status_code == 400

    client = await make_client(app, base_url="https://studio.test")
    response = await client.post(
        "/public/login/",
        json={"username": ADMIN, "password": DEVELOPMENT_PASSWORD},
        headers={**csrf(client), "Referer": "https://studio.test/"},
    )
    assert response.status_code == 200, response.text
    assert "secure" in response.headers["set-cookie"].lower()
    assert (await client.get("/api/tables/")).status_code == 200
    # CSRF stays on: a cross-site page cannot post.
    forged = await client.post(
        "/public/login/",
        json={"username": ADMIN, "password": DEVELOPMENT_PASSWORD},
        headers={**csrf(client), "Referer": "https://evil.test/"},
    )
    assert forged.status_code == 403


###############################################################################
# What it shows


@pytest.mark.usefixtures("seeded")
async def test_creating_a_user_profile_organization_and_membership(
    database_url: str, make_client
) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    user = await create_row(
        client,
        "user",
        {"name": "Nia New", "email": " Nia.New@Example.com ", "emailVerified": False},
    )
    assert user.status_code == 201, user.text
    user_id = user.json()[0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9]{32}", user_id)
    organization = await create_row(
        client, "organization", {"name": "New School", "slug": "new-school"}
    )
    assert organization.status_code == 201, organization.text
    organization_id = organization.json()[0]["id"]
    profile = await create_row(
        client, "profile", {"user_id": user_id, "role": "coach", "organization_id": organization_id}
    )
    assert profile.status_code == 201, profile.text
    membership = await create_row(
        client,
        "organization_user",
        {"user_id": user_id, "organization_id": organization_id, "role": "manager"},
    )
    assert membership.status_code == 201, membership.text

    (row,) = await fetch(
        database_url,
        'SELECT u.email, p.role AS platform_role, o.slug, m.role FROM "user" u '
        "JOIN profile p ON p.user_id = u.id JOIN organization o ON o.id = p.organization_id "
        "JOIN organization_user m ON m.user_id = u.id AND m.organization_id = o.id WHERE u.id = $1",
        user_id,
    )
    assert tuple(row) == ("nia.new@example.com", "coach", "new-school", "manager")

    listing = await client.get(
        "/api/tables/organization_user/",
        params={"__readable": "true", "user_id": user_id},
    )
    (member,) = listing.json()["rows"]
    assert (member["user_id_readable"], member["organization_id_readable"]) == (
        "nia.new@example.com",
        "New School",
    )


@pytest.mark.usefixtures("seeded")
async def test_editing_an_email_keeps_it_lower_case(database_url: str, make_client) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    (user,) = await fetch(
        database_url, 'SELECT id, "updatedAt" FROM "user" WHERE email = $1', TEACHER
    )
    response = await client.patch(
        f"/api/tables/user/{user['id']}/", json={"email": "Theo@Example.COM"}, headers=csrf(client)
    )
    assert response.status_code == 200, response.text
    (after,) = await fetch(
        database_url, 'SELECT email, "updatedAt" FROM "user" WHERE id = $1', user["id"]
    )
    assert after["email"] == "theo@example.com"
    assert after["updatedAt"] > user["updatedAt"]


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize(
    ("table", "values", "reason"),
    [
        ("organization", {"name": "Copy", "slug": "northwind-academy"}, "organization_slug_key"),
        (
            "user",
            {"name": "Copy", "email": "Teacher@Example.com", "emailVerified": False},
            "user_email_key",
        ),
        ("profile", {"role": "wizard"}, "profile_role_check"),
        ("organization_user", {"role": "platform_admin"}, "organization_user_role_check"),
    ],
)
async def test_a_constraint_violation_shows_its_reason(
    database_url: str, make_client, table: str, values: dict[str, object], reason: str
) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    await fetch(
        database_url,
        'DELETE FROM profile WHERE user_id IN (SELECT id FROM "user" WHERE email = $1)',
        "coach@example.com",
    )
    (user,) = await fetch(
        database_url, 'SELECT id FROM "user" WHERE email = $1', "coach@example.com"
    )
    (organization,) = await fetch(
        database_url, "SELECT id FROM organization WHERE slug = 'hillcrest-college'"
    )
    refs = {
        "profile": {"user_id": user["id"]},
        "organization_user": {"user_id": user["id"], "organization_id": str(organization["id"])},
    }.get(table, {})
    response = await create_row(client, table, {**refs, **values})
    assert response.status_code == 422, response.text
    assert reason in response.json()["db_error"]


@pytest.mark.usefixtures("seeded")
async def test_read_only_studio_changes_nothing(database_url: str, make_client) -> None:
    client = await make_client(create_studio(read_only=True))
    assert (await login(client, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 200
    assert (await client.get("/api/tables/organization/")).status_code == 200
    (organization,) = await fetch(
        database_url, "SELECT id FROM organization WHERE slug = 'hillcrest-college'"
    )
    for table in (table._meta.tablename for table in ALL_TABLES):
        new = await client.post(f"/api/tables/{table}/", json={}, headers=csrf(client))
        assert new.status_code == 405, table
    patch = await client.patch(
        f"/api/tables/organization/{organization['id']}/",
        json={"name": "Changed"},
        headers=csrf(client),
    )
    delete = await client.delete(
        f"/api/tables/organization/{organization['id']}/", headers=csrf(client)
    )
    assert (patch.status_code, delete.status_code) == (405, 405)
    (row,) = await fetch(
        database_url, "SELECT name FROM organization WHERE id = $1", organization["id"]
    )
    assert row["name"] == "Hillcrest College"


@pytest.mark.usefixtures("seeded")
async def test_tables_are_grouped_and_environment_marker_is_read_only(make_client) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)
    grouped = (await client.get("/api/tables/grouped/")).json()
    assert grouped["grouped"]["Auth"] == ["account", "session", "user", "verification"]
    assert grouped["grouped"]["Organizations"] == ["organization", "organization_user", "profile"]
    response = await client.post(
        "/api/tables/environment_marker/", json={"environment": "development"}, headers=csrf(client)
    )
    assert response.status_code == 405


@pytest.mark.usefixtures("seeded")
async def test_users_are_searchable_by_email_and_name(make_client) -> None:
    client = await make_client()
    await login(client, ADMIN, DEVELOPMENT_PASSWORD)

    async def emails(**params: str) -> list[str]:
        rows = (await client.get("/api/tables/user/", params=params)).json()["rows"]
        return sorted(row["email"] for row in rows)

    assert await emails(email="teach") == [TEACHER]
    assert await emails(name="cora") == ["coach@example.com"]
    organizations = (await client.get("/api/tables/organization/", params={"slug": "river"})).json()
    assert [row["name"] for row in organizations["rows"]] == ["Riverside Sports Club"]
    ids = (await client.get("/api/tables/user/ids/", params={"search": "manager"})).json()
    assert list(ids.values()) == ["manager@example.com"]
    profiles = (
        await client.get(
            "/api/tables/profile/",
            params={"role": "platform_admin", "role__match": "exact", "__readable": "true"},
        )
    ).json()
    assert [row["user_id_readable"] for row in profiles["rows"]] == [ADMIN]


###############################################################################
# Mounting and the connection pool


@pytest.mark.usefixtures("seeded")
async def test_mounted_inside_a_service_with_its_lifespan(make_client) -> None:
    engine = engine_finder()
    assert engine.pool is None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with engine_pool():
            yield

    service = Starlette(routes=[Mount("/studio", app=create_studio())], lifespan=lifespan)
    async with lifespan(service):
        assert engine.pool is not None
        client = await make_client(service)
        await client.get("/studio/")
        assert (await client.get("/studio/")).status_code == 200
        assert (await login_at(client, "/studio")).status_code == 200
        assert (await client.get("/studio/api/tables/")).status_code == 200
        assert (
            await client.put("/studio/api/tables/user/x/", json={}, headers=csrf(client))
        ).status_code == 405
        async with engine_pool():  # already open: left alone
            assert engine.pool is not None
        assert engine.pool is not None
    assert engine.pool is None


async def login_at(client: Client, prefix: str) -> httpx.Response:
    return await client.post(
        f"{prefix}/public/login/",
        json={"username": ADMIN, "password": DEVELOPMENT_PASSWORD},
        headers=csrf(client),
    )


@asynccontextmanager
async def lifespan_of(app: Starlette) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan as a server does: startup, then shutdown on exit."""
    to_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    running = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, to_app.get, from_app.put)
    )
    await to_app.put({"type": "lifespan.startup"})
    assert (await asyncio.wait_for(from_app.get(), 30))["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        assert (await asyncio.wait_for(from_app.get(), 30))["type"] == "lifespan.shutdown.complete"
        await asyncio.wait_for(running, 30)


@pytest.mark.usefixtures("seeded")
async def test_the_studio_lifespan_opens_and_closes_the_pool(make_client) -> None:
    engine = engine_finder()
    app = create_studio()
    async with lifespan_of(app):
        assert engine.pool is not None
        client = await make_client(app)
        assert (await login(client, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 200
    assert engine.pool is None


@pytest.mark.usefixtures("seeded")
async def test_the_mounting_example_of_the_docs_works(make_client) -> None:
    (example,) = re.findall(
        r"```python\n(.*?)```", (ROOT / "docs" / "studio.md").read_text(), re.DOTALL
    )
    namespace: dict[str, object] = {}
    exec(example, namespace)  # noqa: S102 -- our own documentation
    service = namespace["app"]
    engine = engine_finder()
    async with lifespan_of(service):  # type: ignore[arg-type]
        assert engine.pool is not None
        client = await make_client(service)  # type: ignore[arg-type]
        page = await client.get("/studio/")
        assert page.status_code == 200 and '<div id="app">' in page.text
        bare = await client.get("/studio")
        assert (bare.status_code, bare.headers["location"]) == (307, "http://127.0.0.1/studio/")
        assert (await login_at(client, "/studio")).status_code == 200
        assert (await client.get("/studio/api/tables/user/")).status_code == 200
    assert engine.pool is None
