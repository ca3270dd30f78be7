"""Better-auth's indexes, under the names Better-auth's own migrations give them.

Piccolo would name a column index ``<table>_<column>`` (``session_userId``);
these carry Better-auth's ``_idx`` names instead, so a database created here and
one created by Better-auth's CLI look the same. The columns stay
``index=False`` in the table classes so that Piccolo never manages (or drops)
them under another name.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine.finder import engine_finder

ID = "2026-11-25T14:17:32:845784"
VERSION = "1.38.0"
DESCRIPTION = "better_auth_indexes"

INDEXES = {
    "session_userId_idx": 'ON "session" ("userId")',
    "account_userId_idx": 'ON "account" ("userId")',
    "verification_identifier_idx": 'ON "verification" ("identifier")',
}


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="orgschema", description=DESCRIPTION
    )

    async def create_indexes():
        engine = engine_finder()
        for name, target in INDEXES.items():
            await engine.run_ddl(f'CREATE INDEX "{name}" {target}')

    async def drop_indexes():
        engine = engine_finder()
        for name in INDEXES:
            await engine.run_ddl(f'DROP INDEX IF EXISTS "{name}"')

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)

    return manager
