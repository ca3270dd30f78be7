"""Small pieces of PostgreSQL plumbing shared by seeding, the bootstrap and the domain helpers."""

from __future__ import annotations

import asyncpg

from orgschema.errors import ConfigurationError
from orgschema.roles import Role

#: Key of the transaction-level advisory lock that seeding and the first-admin
#: bootstrap take, so that neither can interleave with the other: "is there a
#: platform admin (or a marker)? then write" must be one step. The bytes spell
#: "orgsetup"; any constant works as long as it never changes between releases.
SETUP_LOCK_KEY = int.from_bytes(b"orgsetup", "big")


def schema_missing(exc: asyncpg.UndefinedTableError) -> ConfigurationError:
    """The error for a database that the migrations have not created the tables in."""
    return ConfigurationError(
        f"the database has no orgschema tables yet ({exc}): run `orgschema dev` or "
        "`piccolo migrations forwards all` first"
    )


async def platform_admin_exists(conn: asyncpg.Connection) -> bool:
    """Whether any profile has the role ``platform_admin``."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM profile WHERE role = $1)", Role.PLATFORM_ADMIN.value
        )
    )
