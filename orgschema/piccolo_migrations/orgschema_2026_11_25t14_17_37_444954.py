"""Refuse mixed-case e-mails at the database (``user_email_lower_check``).

Kept apart from the initial migrations on purpose: the first two migrations
create exactly the schema of the original system (which had no such check),
so ``orgschema migrate --baseline`` can adopt a database it created, and this
one then runs like any other. It fails, changing nothing, if a stored e-mail
is not lower-case: lower-case those rows first.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.constraints import Check

ID = "2026-11-25T14:17:37:444954"
VERSION = "1.38.0"
DESCRIPTION = "user_email_lowercase"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="orgschema", description=DESCRIPTION
    )

    manager.add_constraint(
        table_class_name="User",
        tablename="user",
        constraint_name="user_email_lower_check",
        constraint_class=Check,
        params={"condition": "email = lower(email)"},
        schema=None,
    )

    return manager
