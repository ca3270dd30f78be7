"""The database's own record of how it was set up (``environment_marker``).

The first platform admin of a staging or production database is created by
:func:`orgschema.bootstrap_first_admin`, which also writes a row here. Fixture
seeding refuses while any row exists, so a deployed database never receives
fixture users with the published development password, even when a mistaken
``APP_ENV=development`` reaches it.
"""

from __future__ import annotations

from piccolo.columns import Text, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class EnvironmentMarker(Table, tablename="environment_marker"):
    """A database bootstrapped outside development and test: fixtures refuse while a row exists."""

    environment = Text(
        null=True,
        default=None,
        help_text="APP_ENV (else NODE_ENV) when the first admin was created; empty when unset.",
    )
    created_at = Timestamptz(default=TimestamptzNow())
