"""A real Better-auth 1.7 server works on the migrated database, with its schema check on.

The Node harness in ``tests/interop/better_auth`` (pinned by its lock file) drives
``auth.handler`` with real requests. Without Node these tests skip, loudly;
with ``ORGSCHEMA_REQUIRE_NODE=1`` (as in CI) they fail instead.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from orgschema import Account, User
from orgschema.passwords import hash_password, verify_password
from tests.better_auth_kit import harness

pytestmark = [pytest.mark.better_auth, pytest.mark.usefixtures("clean_tables")]


def test_sign_up_sign_in_session_sign_out_sign_in_again(node: str, database_url: str) -> None:
    code, lines, stderr = harness(node, database_url, "flow", "Ada.Lovelace@Example.com")
    assert code == 0, stderr
    assert lines[-1]["summary"] == "flow" and lines[-1]["ok"] is True
    steps = [line["step"] for line in lines if "step" in line]
    for step in ("sign-up", "sign-in", "get-session", "sign-out"):
        assert step in steps, steps


def test_better_auth_schema_check_and_migration_plan_find_nothing(
    node: str, database_url: str
) -> None:
    code, lines, stderr = harness(node, database_url, "check-schema")
    assert code == 0, stderr
    assert lines[-1]["ok"] is True


async def test_user_created_in_python_signs_in_through_better_auth(
    node: str, database_url: str
) -> None:
    now = datetime.now(UTC)
    user = User(id=uuid.uuid4().hex, name="Grace", email="grace@example.com", emailVerified=True)
    await user.save().run()
    await (
        Account(
            id=uuid.uuid4().hex,
            accountId=user.id,
            providerId="credential",
            userId=user.id,
            password=await hash_password("correct horse battery"),
            updatedAt=now,
        )
        .save()
        .run()
    )

    code, lines, stderr = harness(
        node, database_url, "sign-in", "Grace@Example.com", "correct horse battery"
    )
    assert code == 0, stderr
    assert lines[-1]["userId"] == user.id
    code, _lines, _stderr = harness(node, database_url, "sign-in", "grace@example.com", "wrong")
    assert code == 1


async def test_user_signed_up_through_better_auth_verifies_in_python(
    node: str, database_url: str
) -> None:
    # Full-width digits: NFKC folds them to ASCII on both sides.
    code, lines, stderr = harness(
        node, database_url, "sign-up", "linus@example.com", "ｐａｓｓｗｏｒｄ１２３", "Linus"
    )
    assert code == 0, stderr
    user_id = lines[-1]["userId"]
    account = (
        await Account.objects()
        .get((Account.userId == user_id) & (Account.providerId == "credential"))
        .run()
    )
    assert await verify_password("password123", account.password)
    assert not await verify_password("password124", account.password)
