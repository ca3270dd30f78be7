"""Organizations and their members (``organization``, ``organization_user``).

Membership is a through table, unique on (organization, user), whose role is
one of :class:`~orgschema.roles.MembershipRole`; the database enforces both, so
no code path can store a duplicate membership or an unknown role.
"""

from __future__ import annotations

from piccolo.columns import UUID, ForeignKey, OnDelete, OnUpdate, Text, Timestamp
from piccolo.columns.defaults.timestamp import TimestampNow
from piccolo.columns.defaults.uuid import UUID4
from piccolo.constraints import Check, Unique
from piccolo.table import Table

from orgschema.roles import MembershipRole, role_check_sql
from orgschema.tables.auth import User

#: Lower-case letters and digits, with single hyphens between them.
SLUG_PATTERN = "^[a-z0-9]+(-[a-z0-9]+)*$"

# The original schema used "timestamp without time zone" here; rows written
# through Piccolo carry the writing process's local time (TimestampNow), so
# run services with TZ=UTC, as the database's now() default assumes.
_now = TimestampNow()


class Organization(Table, tablename="organization"):
    """A school, club or company whose members use the platform."""

    id = UUID(primary_key=True, default=UUID4())
    name = Text(default=None, help_text="Display name.")
    slug = Text(
        unique=True,
        default=None,
        help_text="URL-safe: lower-case letters, digits and single hyphens.",
    )
    created_at = Timestamp(default=_now)
    updated_at = Timestamp(default=_now, auto_update=_now.python)

    organization_slug_check = Check(f"slug ~ '{SLUG_PATTERN}'")


class OrganizationUser(Table, tablename="organization_user"):
    """A user's membership of an organization, with their role in it."""

    id = UUID(primary_key=True, default=UUID4())
    organization_id = ForeignKey(
        Organization,
        null=False,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.no_action,
        help_text="Deleting the organization deletes its memberships.",
    )
    user_id = ForeignKey(
        User,
        null=False,
        index=True,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.no_action,
        help_text="Deleting the user deletes their memberships.",
    )
    role = Text(default=MembershipRole.TEACHER.value, choices=MembershipRole)
    created_at = Timestamp(default=_now)

    # Leads with organization_id, so it also serves as that foreign key's index.
    organization_user_organization_id_user_id_unique = Unique(["organization_id", "user_id"])
    organization_user_role_check = Check(role_check_sql("role", MembershipRole))
