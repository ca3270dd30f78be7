"""A freshly migrated database holds exactly the contract, read from the catalog."""

from __future__ import annotations

from orgschema.catalog import SchemaSnapshot
from tests import contract
from tests.catalog import ORGSCHEMA_TABLES, read_schema


def assert_matches_contract(schema: SchemaSnapshot) -> None:
    """Shared with the consumer and migrator tests, which migrate by other routes."""
    assert schema.tables == set(ORGSCHEMA_TABLES)
    assert schema.columns == {table: tuple(cols) for table, cols in contract.COLUMNS.items()}
    assert schema.constraints == contract.CONSTRAINTS
    assert schema.indexes == contract.INDEXES
    unindexed = [
        (table, name)
        for table, name, columns in schema.foreign_keys
        if not any(index[: len(columns)] == columns for index in schema.indexed_columns[table])
    ]
    assert unindexed == [], "every foreign-key column must lead some index"


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
