"""No route of the studio returns, orders by, counts by or matches on a secret.

Before: ``verification.identifier``, where Better-auth 1.7 keeps reset,
magic-link, one-time and delete-account tokens, was listed, searched and
filtered like any text, read-only or not; ``__order[]=password`` and
``__order=userId.password`` were 500s. The declaration of secret columns now
lives in :mod:`orgschema.secret_columns`, and the studio's views, the
redaction of logs and exports, and these tests all use it.
"""

from __future__ import annotations

import logging

import pytest

from orgschema.secret_columns import (
    OTHER_KIND,
)
from orgschema.studio import create_studio
from tests.databases import fetch
from tests.security.studio_routes import (
    ROUTES,
    plant_secrets,
    route_templates,
    secret_columns_now,
    walk,
)
from tests.studio_kit import TEACHER, csrf, login

pytestmark = pytest.mark.usefixtures("clean_tables", "clean_studio_logins", "seeded")


def test_the_walk_knows_every_route_piccolo_admin_and_piccolo_api_serve() -> None:
    assert route_templates(create_studio()) == ROUTES


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
async def test_no_route_returns_orders_counts_or_matches_on_a_secret(
    database_url: str, make_client, read_only: bool
) -> None:
    planted = await plant_secrets(database_url)
    before = await secret_columns_now(database_url)
    app = create_studio(read_only=read_only)
    client = await make_client(app)
    assert (await login(client)).status_code == 200

    answers = await walk(client, app, database_url, planted.fragments())

    assert len(answers) > 1000
    leaks = {
        (probe.method, probe.path, probe.params): planted.leaked_in(
            response.text + str(response.headers)
        )
        for probe, response in answers
    }
    assert {where: names for where, names in leaks.items() if names} == {}
    failures = [
        (probe, response.status_code, response.text[:200])
        for probe, response in answers
        if response.status_code >= 500
        or response.status_code == 401  # the walk stays signed in until its last probe
        or (probe.refused and not 400 <= response.status_code < 500)
    ]
    assert failures == []
    # A search for a token's characters finds nothing: no count, no row, no id.
    for probe, response in answers:
        if probe.path.endswith("/count/") and probe.params and not probe.refused:
            assert response.json()["count"] == 0, probe
        if probe.path.endswith("/ids/") and probe.params and not probe.refused:
            assert response.json() == {}, probe
    after = await secret_columns_now(database_url)
    expected = before if read_only else _without_deleted(before)
    assert after == expected


def _without_deleted(
    columns: dict[str, list[tuple[object, ...]]],
) -> dict[str, list[tuple[object, ...]]]:
    deleted = {"planted-reset", "planted-session"}
    return {
        table: [row for row in rows if row[0] not in deleted] for table, rows in columns.items()
    }


async def test_verifications_show_their_kind_and_expiry_only(
    database_url: str, make_client
) -> None:
    planted = await plant_secrets(database_url)
    client = await make_client()
    await login(client)
    listing = await client.get("/api/tables/verification/", params={"__order": "kind"})
    assert listing.status_code == 200
    rows = listing.json()["rows"]
    assert sorted(row["kind"] for row in rows) == sorted(
        [
            "auth-state",
            "delete-account",
            "magic-link",
            "one-time-token",
            OTHER_KIND,
            "reset-password",
        ]
    )
    assert all(set(row) == {"id", "kind", "expiresAt", "createdAt", "updatedAt"} for row in rows)
    resets = await client.get(
        "/api/tables/verification/", params={"kind": "reset-password", "kind__match": "exact"}
    )
    assert [row["id"] for row in resets.json()["rows"]] == ["planted-reset"]
    assert planted.leaked_in(listing.text + resets.text) == set()
    schema = (await client.get("/api/tables/verification/schema/")).json()
    assert {"identifier", "value"}.isdisjoint(schema["properties"])


async def test_a_verification_is_revoked_by_deleting_it_never_rewritten(
    database_url: str, make_client
) -> None:
    await plant_secrets(database_url)
    client = await make_client()
    await login(client)
    path = "/api/tables/verification/planted-reset/"
    from tests.studio_kit import csrf

    patched = await client.patch(path, json={"kind": "other"}, headers=csrf(client))
    assert patched.status_code == 405 and "Better-auth only" in patched.text
    created = await client.post(
        "/api/tables/verification/", json={"kind": "reset-password"}, headers=csrf(client)
    )
    assert created.status_code == 405
    assert (await client.delete(path, headers=csrf(client))).status_code == 204
    assert await fetch(database_url, "SELECT 1 FROM verification WHERE id = 'planted-reset'") == []


async def test_database_errors_show_and_log_no_secret(
    database_url: str, make_client, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL's DETAIL of a NOT NULL violation is the whole failing row, secrets included.

    Before: piccolo-api logged it with its traceback, so a PATCH that set
    account.accountId to null wrote the account's password hash and OAuth
    tokens into the log.
    """
    planted = await plant_secrets(database_url)
    client = await make_client()
    await login(client)
    (account,) = await fetch(
        database_url,
        'SELECT a.id FROM account a JOIN "user" u ON u.id = a."userId" WHERE u.email = $1',
        TEACHER,
    )
    # The CLI quiets this logger in its process (tests may run after it): turn it up here.
    caplog.set_level(logging.DEBUG, logger="piccolo_api.crud.exceptions")
    for path, values in (
        (f"/api/tables/account/{account['id']}/", {"accountId": None}),
        ("/api/tables/session/planted-session/", {"expiresAt": None}),
    ):
        response = await client.patch(path, json=values, headers=csrf(client))
        assert response.status_code == 422, response.text
        assert "not-null constraint" in response.json()["db_error"]
        assert planted.leaked_in(response.text) == set()
    assert planted.leaked_in(caplog.text) == set()
    assert "DETAIL withheld" in caplog.text
