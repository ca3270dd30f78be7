"""A freshly migrated database holds exactly the contract, read from the catalog."""

from __future__ import annotations

from tests.catalog import assert_matches_contract, read_schema


async def test_migrated_database_matches_contract(database_url: str) -> None:
    assert_matches_contract(await read_schema(database_url))


async def test_better_auth_tables_have_no_required_column_without_default(
    database_url: str,
) -> None:
    """Better-auth inserts only the columns it knows; these are the ones it always sends."""
    sent_by_better_auth = {
        "user": {"id", "name", "email", "emailVerified"},
        "session": {"id", "expiresAt", "token", "updatedAt", "userId"},
        "account": {"id", "accountId", "providerId", "userId", "updatedAt"},
        "verification": {"id", "identifier", "value", "expiresAt"},
    }
    schema = await read_schema(database_url)
    for table, sent in sent_by_better_auth.items():
        required = {
            name
            for name, _type, nullable, default in schema.columns[table]
            if not nullable and default is None
        }
        assert required == sent, table
