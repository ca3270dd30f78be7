"""A studio session belongs to one Better-auth user id and lasts only as long as configured.

Before: sessions were tied to an e-mail. A deleted admin's cookie worked again
once a new user with that e-mail became platform admin; re-promoting a
demoted admin revived their old session; and the idle timeout ran to about
twice ``--session-minutes`` when that was 20 or less (with 1 minute, a
request after 65 s idle still got 200).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from orgschema.seeding import DEVELOPMENT_PASSWORD
from orgschema.studio import _access, create_studio
from tests.databases import fetch
from tests.studio_kit import ADMIN, Client, login

pytestmark = pytest.mark.usefixtures("clean_tables", "clean_studio_logins", "seeded")

USERS = "/api/tables/user/"


async def signed_in(make_client, app: object | None = None) -> Client:  # type: ignore[no-untyped-def]
    client = await make_client(app)
    assert (await login(client)).status_code == 200
    assert (await client.get(USERS)).status_code == 200
    return client


async def set_role(url: str, role: str, email: str = ADMIN) -> None:
    await fetch(
        url,
        'UPDATE profile SET role = $1 FROM "user" u WHERE profile.user_id = u.id AND u.email = $2',
        role,
        email,
    )


async def studio_sessions(url: str) -> int:
    (row,) = await fetch(url, "SELECT count(*) AS n FROM sessions")
    return int(row["n"])


async def test_a_deleted_admins_cookie_never_works_for_a_new_user_with_that_email(
    database_url: str, make_client
) -> None:
    client = await signed_in(make_client)
    await fetch(database_url, 'DELETE FROM "user" WHERE email = $1', ADMIN)
    assert (await client.get(USERS)).status_code == 401
    await fetch(
        database_url,
        "INSERT INTO \"user\" (id, name, email, \"emailVerified\") VALUES ('newcomer', 'N', $1, true)",
        ADMIN,
    )
    await fetch(
        database_url, "INSERT INTO profile (user_id, role) VALUES ('newcomer', 'platform_admin')"
    )
    assert (await client.get(USERS)).status_code == 401
    assert await studio_sessions(database_url) == 0


async def test_the_cookie_is_refused_even_when_the_deletion_was_never_seen(
    database_url: str, make_client
) -> None:
    client = await signed_in(make_client)
    # Deleted and replaced between two clicks: no request saw the deletion.
    (admin,) = await fetch(database_url, 'SELECT * FROM "user" WHERE email = $1', ADMIN)
    await fetch(database_url, 'DELETE FROM "user" WHERE email = $1', ADMIN)
    await fetch(
        database_url,
        "INSERT INTO \"user\" (id, name, email, \"emailVerified\") VALUES ('newcomer', 'N', $1, true)",
        ADMIN,
    )
    await fetch(
        database_url, "INSERT INTO profile (user_id, role) VALUES ('newcomer', 'platform_admin')"
    )
    assert admin["id"] != "newcomer"
    assert (await client.get(USERS)).status_code == 401


@pytest.mark.parametrize("seen", [True, False], ids=["demotion-seen", "demotion-unseen"])
async def test_re_promoting_a_demoted_admin_does_not_revive_their_session(
    database_url: str, make_client, seen: bool
) -> None:
    client = await signed_in(make_client)
    await set_role(database_url, "teacher")
    if seen:
        assert (await client.get(USERS)).status_code == 401
    await set_role(database_url, "platform_admin")
    assert (await client.get(USERS)).status_code == 401
    assert await studio_sessions(database_url) == 0
    # Signing in again with the password starts a new session; the old stays dead.
    fresh = await signed_in(make_client)
    assert (await fresh.get(USERS)).status_code == 200
    assert (await client.get(USERS)).status_code == 401


@pytest.mark.parametrize("back", [False, True], ids=["changed", "changed-and-back"])
async def test_an_email_change_ends_the_session(database_url: str, make_client, back: bool) -> None:
    client = await signed_in(make_client)
    await fetch(
        database_url, "UPDATE \"user\" SET email = 'renamed@example.com' WHERE email = $1", ADMIN
    )
    if back:
        await fetch(
            database_url,
            "UPDATE \"user\" SET email = $1 WHERE email = 'renamed@example.com'",
            ADMIN,
        )
    assert (await client.get(USERS)).status_code == 401
    assert await studio_sessions(database_url) == 0


async def test_an_admin_editing_their_own_email_in_the_studio_signs_in_again(
    database_url: str, make_client
) -> None:
    client = await signed_in(make_client)
    (admin,) = await fetch(database_url, 'SELECT id FROM "user" WHERE email = $1', ADMIN)
    from tests.studio_kit import csrf

    renamed = await client.patch(
        f"{USERS}{admin['id']}/", json={"email": "Ada.Admin@Example.com"}, headers=csrf(client)
    )
    assert renamed.status_code == 200
    assert (await client.get(USERS)).status_code == 401
    assert (await login(await make_client(), "ada.admin@example.com")).status_code == 200


class Clock:
    """``datetime.now`` as the studio's session check sees it, moved by hand."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(_access, "_now", clock)
    return clock


async def expiry(url: str) -> datetime:
    (row,) = await fetch(url, "SELECT expiry_date FROM sessions")
    value: datetime = row["expiry_date"]
    return value


@pytest.mark.parametrize("minutes", [1, 5, 20, 60])
async def test_the_idle_timeout_is_what_was_configured(
    database_url: str, make_client, clock: Clock, minutes: int
) -> None:
    idle = timedelta(minutes=minutes)
    client = await signed_in(
        make_client, create_studio(session_expiry=idle, max_session_expiry=timedelta(hours=8))
    )
    for _ in range(5):  # busy: each request moves the end along
        clock.offset += idle * 0.9
        assert (await client.get(USERS)).status_code == 200
        left = await expiry(database_url) - clock()
        assert idle * 0.9 <= left <= idle, left
    clock.offset += idle + timedelta(seconds=1)
    assert (await client.get(USERS)).status_code == 401


async def test_a_one_minute_session_is_over_after_65_idle_seconds(
    make_client, clock: Clock
) -> None:
    client = await signed_in(
        make_client,
        create_studio(session_expiry=timedelta(minutes=1), max_session_expiry=timedelta(hours=1)),
    )
    clock.offset += timedelta(seconds=5)
    assert (await client.get(USERS)).status_code == 200
    clock.offset += timedelta(seconds=65)
    assert (await client.get(USERS)).status_code == 401


async def test_however_busy_a_session_ends_at_its_maximum(make_client, clock: Clock) -> None:
    client = await signed_in(
        make_client,
        create_studio(session_expiry=timedelta(minutes=10), max_session_expiry=timedelta(hours=1)),
    )
    statuses = []
    for _ in range(8):
        clock.offset += timedelta(minutes=9)
        statuses.append((await client.get(USERS)).status_code)
    assert statuses == [200] * 6 + [401] * 2


@pytest.mark.parametrize(
    "change",
    [
        lambda url: fetch(url, "UPDATE profile SET updated_at = now()"),
        lambda url: fetch(url, "UPDATE profile SET organization_id = NULL"),
        lambda url: fetch(url, "UPDATE \"user\" SET name = 'Ada A. Admin' WHERE email = $1", ADMIN),
    ],
    ids=["profile-touched", "profile-moved-organization", "user-renamed"],
)
async def test_any_change_to_the_admins_rows_asks_for_the_password_again(
    database_url: str, make_client, change: Callable[[str], object]
) -> None:
    client = await signed_in(make_client)
    await change(database_url)  # type: ignore[misc]
    assert (await client.get(USERS)).status_code == 401
    again = await make_client()
    assert (await login(again, ADMIN, DEVELOPMENT_PASSWORD)).status_code == 200
    assert (await again.get(USERS)).status_code == 200
