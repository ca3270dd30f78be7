"""The one declaration of secret columns, and what may be shown of a secret-bearing one.

Before: ``verification.identifier``, where Better-auth 1.7 keeps the tokens of
password resets, magic links, one-time tokens and account deletions, was not
declared secret anywhere; only Piccolo's ``secret=True`` flags existed, and
each use read them on its own. :mod:`orgschema.secret_columns` is now the one
declaration the studio, logs and exports use.
"""

from __future__ import annotations

import pytest

from orgschema import SECRET_COLUMNS, redact
from orgschema.secret_columns import (
    OTHER_KIND,
    REDACTED,
    is_secret,
    verification_kind,
    verification_kind_sql,
)
from orgschema.tables import ALL_TABLES
from tests.databases import fetch
from tests.studio_kit import ISSUE_SECRETS


def test_the_declaration_is_the_issues_list_and_covers_every_flagged_column() -> None:
    declared = {(item.table, item.column) for item in SECRET_COLUMNS}
    assert declared == ISSUE_SECRETS
    flagged = {
        (table._meta.tablename, column._meta.db_column_name)
        for table in ALL_TABLES
        for column in table._meta.columns
        if column._meta.secret
    }
    # Piccolo's secret=True is the part of the declaration Piccolo itself
    # understands; identifier is secret-bearing and declared only there.
    assert flagged == declared - {("verification", "identifier")}
    columns = {
        (table._meta.tablename, column._meta.db_column_name)
        for table in ALL_TABLES
        for column in table._meta.columns
    }
    assert declared <= columns
    assert all(is_secret(table, column) for table, column in declared)


@pytest.mark.parametrize(
    ("identifier", "kind"),
    [
        ("reset-password:Xy9-token", "reset-password"),
        ("magic-link:abc", "magic-link"),
        ("one-time-token:abc:def", "one-time-token"),
        ("auth-state:abc", "auth-state"),
        ("siwe:nonce", "siwe"),
        ("revoke-unproven-account-access:user1", "revoke-unproven-account-access"),
        ("delete-account-Xy9token", "delete-account"),
        ("sign-in-otp-ada@example.com", "sign-in-otp"),
        ("email-verification-otp-ada@example.com", "email-verification-otp"),
        ("phone-number-otp-+15550100", "phone-number-otp"),
        ("2fa-otp-key", "2fa-otp"),
        ("2fa-attempts-2fa-abc", "2fa-attempts"),
        ("2fa-abcdef", "2fa"),
        ("trust-device-abc", "trust-device"),
        # Anything else could be data: never shown.
        ("Reset-Password:token", OTHER_KIND),
        ("-reset:token", OTHER_KIND),
        ("reset--password:token", OTHER_KIND),
        ("ada@example.com:token", OTHER_KIND),
        (":token", OTHER_KIND),
        ("k" * 65 + ":token", OTHER_KIND),
        ("bare-hashed-identifier", OTHER_KIND),
        ("réset:token", OTHER_KIND),
        ("", OTHER_KIND),
        (None, None),
    ],
)
async def test_the_kind_is_the_same_in_python_and_in_sql(
    database_url: str, identifier: str | None, kind: str | None
) -> None:
    assert verification_kind(identifier) == kind
    (row,) = await fetch(
        database_url, f"SELECT {verification_kind_sql('$1::text')} AS kind", identifier
    )
    assert row["kind"] == kind


def test_redact_hides_secrets_and_shows_only_the_kind() -> None:
    row = {"id": "v1", "identifier": "reset-password:tok", "value": "user-1", "expiresAt": None}
    assert redact("verification", row) == {
        "id": "v1",
        "kind": "reset-password",
        "value": REDACTED,
        "expiresAt": None,
    }
    account = {"id": "a1", "password": "salt:key", "accessToken": None, "scope": "email"}
    assert redact("account", account) == {
        "id": "a1",
        "password": REDACTED,
        "accessToken": None,
        "scope": "email",
    }
    assert row["identifier"] == "reset-password:tok"  # the original is left alone
