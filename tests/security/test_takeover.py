"""The account takeover of issue 9, end to end against a real Better-auth 1.7.25.

Before: a real Better-auth server wrote a password reset for a user; the
studio listed ``verification.identifier`` (``reset-password:<token>``), even
with ``--read-only``; Better-auth's ``/reset-password`` accepted the token and
the new password signed in. Now the token is findable through no route of the
studio, and the same token, read straight from the database here, still
works: the reset was live, so its absence from the studio is what stops the
takeover.
"""

from __future__ import annotations

import pytest

from orgschema.studio import create_studio
from tests.databases import fetch
from tests.security.conftest import RunNode
from tests.security.studio_routes import Planted, walk
from tests.studio_kit import TEACHER, login

pytestmark = [
    pytest.mark.better_auth,
    pytest.mark.usefixtures("clean_tables", "clean_studio_logins", "seeded"),
]

NEW_PASSWORD = "taken over at last"


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
async def test_a_reset_token_is_findable_through_no_studio_route(
    database_url: str, make_client, better_auth: RunNode, read_only: bool
) -> None:
    code, requested = better_auth("password_reset.mjs", "request-reset", TEACHER)
    assert code == 0, requested
    token = requested["mailedToken"]
    (row,) = await fetch(
        database_url, "SELECT identifier FROM verification WHERE identifier LIKE 'reset-password:%'"
    )
    assert row["identifier"] == f"reset-password:{token}"

    app = create_studio(read_only=read_only)
    client = await make_client(app)
    assert (await login(client)).status_code == 200
    shown = (await client.get("/api/tables/verification/")).json()["rows"]
    assert [row["kind"] for row in shown] == ["reset-password"]
    planted = Planted({"reset token": token})
    answers = await walk(client, app, database_url, planted.fragments())

    leaks = [
        (probe.method, probe.path, probe.params)
        for probe, response in answers
        if planted.leaked_in(response.text + str(response.headers))
    ]
    assert leaks == []
    assert [status for _probe, response in answers if (status := response.status_code) >= 500] == []
    # The token was live all along: Better-auth accepts it, and the new password signs in.
    code, reset = better_auth("password_reset.mjs", "reset-password", token, NEW_PASSWORD)
    assert code == 0, reset
    code, signed_in = better_auth("password_reset.mjs", "sign-in", TEACHER, NEW_PASSWORD)
    assert code == 0, signed_in
