"""Profiles: the domain's view of a user (``profile``), one per user.

A profile carries the platform-wide :class:`~orgschema.roles.Role` and,
optionally, the organization the user belongs to first. Deleting an
organization that profiles still point at fails (ON DELETE NO ACTION), as in
the original schema: move or clear those profiles first.
"""

from __future__ import annotations

from piccolo.columns import UUID, ForeignKey, OnDelete, OnUpdate, Text, Timestamp
from piccolo.columns.defaults.timestamp import TimestampNow
from piccolo.columns.defaults.uuid import UUID4
from piccolo.constraints import Check
from piccolo.table import Table

from orgschema.roles import Role, role_check_sql
from orgschema.tables.auth import User
from orgschema.tables.organizations import Organization

_now = TimestampNow()


class Profile(Table, tablename="profile"):
    """A user's role and home organization."""

    id = UUID(primary_key=True, default=UUID4())
    user_id = ForeignKey(
        User,
        null=False,
        unique=True,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.no_action,
        help_text="One profile per user; deleting the user deletes it.",
    )
    role = Text(default=Role.TEACHER.value, choices=Role)
    organization_id = ForeignKey(
        Organization,
        null=True,
        default=None,
        index=True,
        on_delete=OnDelete.no_action,
        on_update=OnUpdate.no_action,
        help_text="Deleting an organization still referenced here fails.",
    )
    created_at = Timestamp(default=_now)
    updated_at = Timestamp(default=_now, auto_update=_now.python)

    profile_role_check = Check(role_check_sql("role", Role))
