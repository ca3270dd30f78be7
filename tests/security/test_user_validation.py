"""One validation of users for the whole library: the studio, bootstrap, seeding and the domain helpers.

Before: the studio saved users with e-mails such as ``not-an-email``, ``""``,
``a b@example.com`` and upper-case ones, and with empty names, while
``orgschema bootstrap`` refused them all with a regex of its own. Now
:mod:`orgschema.validation` (email-validator underneath) decides for every
door, and an address it accepts is one Better-auth's own check accepts.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess

import pytest

from orgschema import (
    InvalidInputError,
    Settings,
    bootstrap_first_admin,
    create_organization,
    seeding,
)
from orgschema.roles import Role
from orgschema.seeding import FixtureUser, seed
from orgschema.validation import normalise_email, normalise_name
from tests.better_auth_kit import HARNESS
from tests.databases import fetch
from tests.rows import row_counts
from tests.studio_kit import TEACHER, create_row, csrf, login

pytestmark = pytest.mark.usefixtures("clean_tables", "clean_studio_logins")


BAD_EMAILS = [
    "not-an-email",
    "",
    "   ",
    "a b@example.com",
    "a@b",
    "a@example",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "a@-example.com",
    "a@exa mple.com",
    "Name <a@example.com>",
    '"quoted"@example.com',
    "a@[127.0.0.1]",
    "a@localhost",
    "ü@example.com",
    "a@exämple.com",
    "a!b@example.com",  # RFC 5322 allows it; Better-auth's sign-in does not
    "a'@example.com",
    "a@example.c0m",
    "a\x00@example.com",
    "x" * 321,
    "x" * 65 + "@example.com",
]

GOOD_EMAILS = {
    " Ada.Lovelace+tag@Example.COM ": "ada.lovelace+tag@example.com",
    "o'brien@example.co.uk": "o'brien@example.co.uk",
    "first_last-1@sub.example.org": "first_last-1@sub.example.org",
    "A@B.IO": "a@b.io",
}

BAD_NAMES = ["", "   ", "x" * 201, "tab\there", "line\nbreak", "bell\x07"]


@pytest.mark.parametrize("email", BAD_EMAILS)
async def test_a_bad_email_is_refused_by_every_door(
    database_url: str, make_client, email: str
) -> None:
    with pytest.raises(InvalidInputError) as direct:
        normalise_email(email)
    assert direct.value.field == "email"
    with pytest.raises(InvalidInputError) as bootstrapped:
        await bootstrap_first_admin(
            email=email,
            password="long enough",
            name="N",
            database_url=database_url,
            settings=Settings(environment="test"),
        )
    assert (bootstrapped.value.field, str(bootstrapped.value)) == ("email", str(direct.value))
    assert sum((await row_counts(database_url)).values()) == 0

    await seed("test")
    client = await make_client()
    await login(client)
    created = await create_row(
        client, "user", {"email": email, "name": "N", "emailVerified": False}
    )
    (teacher,) = await fetch(database_url, 'SELECT id FROM "user" WHERE email = $1', TEACHER)
    patched = await client.patch(
        f"/api/tables/user/{teacher['id']}/", json={"email": email}, headers=csrf(client)
    )
    for response in (created, patched):
        if email == "a\x00@example.com":
            assert response.status_code == 400  # refused as text PostgreSQL cannot store
            continue
        assert response.status_code == 422, response.text
        (problem,) = response.json()["detail"]
        assert problem["loc"] == ["body", "email"]
        assert problem["msg"] == str(direct.value)
    assert (await row_counts(database_url))["user"] == len(seeding.FIXTURE_USERS)
    assert (await fetch(database_url, 'SELECT email FROM "user" WHERE id = $1', teacher["id"]))[0][
        "email"
    ] == TEACHER


@pytest.mark.parametrize(("given", "stored"), GOOD_EMAILS.items())
async def test_a_good_email_is_stored_the_same_by_every_door(
    database_url: str, make_client, given: str, stored: str
) -> None:
    assert normalise_email(given) == stored
    report = await bootstrap_first_admin(
        email=given,
        password="long enough",
        name="N",
        database_url=database_url,
        settings=Settings(environment="test"),
    )
    assert report.email == stored
    await fetch(database_url, 'DELETE FROM "user"')
    await seed("test")
    client = await make_client()
    await login(client)
    created = await create_row(
        client, "user", {"email": given, "name": "N", "emailVerified": False}
    )
    assert created.status_code == 201, created.text
    (row,) = await fetch(
        database_url, 'SELECT email FROM "user" WHERE id = $1', created.json()[0]["id"]
    )
    assert row["email"] == stored


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_a_bad_name_is_refused_by_every_door(
    database_url: str, make_client, name: str
) -> None:
    with pytest.raises(InvalidInputError) as direct:
        normalise_name(name)
    with pytest.raises(InvalidInputError, match=re.escape(str(direct.value))):
        await bootstrap_first_admin(
            email="n@example.com",
            password="long enough",
            name=name,
            database_url=database_url,
            settings=Settings(environment="test"),
        )
    with pytest.raises(InvalidInputError) as organization:
        await create_organization(name, slug="some-slug")
    assert organization.value.field == "name"
    await seed("test")
    client = await make_client()
    await login(client)
    for table, values in (
        ("user", {"email": "n@example.com", "name": name, "emailVerified": False}),
        ("organization", {"name": name, "slug": "some-slug"}),
    ):
        response = await create_row(client, table, values)
        assert response.status_code == 422, (table, response.text)
        assert response.json()["detail"][0]["msg"] == str(direct.value)
    assert await fetch(database_url, "SELECT 1 FROM organization WHERE slug = 'some-slug'") == []


async def test_names_and_slugs_are_checked_before_the_database(make_client) -> None:
    await seed("test")
    client = await make_client()
    await login(client)
    bad_slug = await create_row(client, "organization", {"name": "Bad", "slug": "Not A Slug"})
    assert bad_slug.status_code == 422
    assert "is not a slug" in bad_slug.json()["detail"][0]["msg"]
    trimmed = await create_row(client, "organization", {"name": "  Padded  ", "slug": "padded"})
    assert trimmed.status_code == 201


async def test_seeding_holds_its_fixtures_to_the_same_validation(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeding.check_fixtures()  # the shipped fixtures pass
    broken = (*seeding.FIXTURE_USERS, FixtureUser("Mixed@Example.com", "Mixed", Role.TEACHER))
    monkeypatch.setattr(seeding, "FIXTURE_USERS", broken)
    with pytest.raises(InvalidInputError, match=r"must be written as 'mixed@example\.com'"):
        await seed("test")
    assert sum((await row_counts(database_url)).values()) == 0


@pytest.mark.better_auth
def test_every_address_accepted_here_is_accepted_by_better_auths_own_check(node: str) -> None:
    """Better-auth 1.7 runs zod's z.email() at sign-in; an address it refuses could never sign in."""
    candidates = [*BAD_EMAILS, *GOOD_EMAILS, *GOOD_EMAILS.values(), "x" * 64 + "@example.com"]
    candidates += ["a-b@x-y.example", "1@2.example.museum", "_@example.com", "a+@example.com"]
    accepted = []
    for candidate in candidates:
        with contextlib.suppress(InvalidInputError):
            accepted.append(normalise_email(candidate))
    script = (
        "import('zod').then(({ z }) => { const all = JSON.parse(process.argv[1]);"
        " console.log(JSON.stringify(all.filter((e) => !z.email().safeParse(e).success))); })"
    )
    result = subprocess.run(
        [node, "-e", script, json.dumps(accepted)],
        cwd=HARNESS,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert set(GOOD_EMAILS.values()) <= set(accepted)
    assert json.loads(result.stdout) == []
