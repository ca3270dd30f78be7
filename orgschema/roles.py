"""The roles of the domain: one place where each role string is spelled.

``Role`` is what a profile may hold (platform-wide); ``MembershipRole`` is what
a member may hold inside one organization, which is every role but
``platform_admin``. The tables' CHECK constraints are built from these enums,
so adding a role here and generating a migration is the whole change.
"""

from __future__ import annotations

from enum import Enum


class MembershipRole(str, Enum):
    """A member's role inside one organization (``organization_user.role``)."""

    ORGANIZATION_ADMIN = "organization_admin"
    MANAGER = "manager"
    COACH = "coach"
    TEACHER = "teacher"


class Role(str, Enum):
    """A user's platform-wide role (``profile.role``)."""

    PLATFORM_ADMIN = "platform_admin"
    ORGANIZATION_ADMIN = MembershipRole.ORGANIZATION_ADMIN.value
    MANAGER = MembershipRole.MANAGER.value
    COACH = MembershipRole.COACH.value
    TEACHER = MembershipRole.TEACHER.value


def role_check_sql(column: str, roles: type[Enum]) -> str:
    """The SQL condition ``"column" IN ('a', 'b', ...)`` allowing exactly ``roles``."""
    allowed = ", ".join(f"'{member.value}'" for member in roles)
    return f'"{column}" IN ({allowed})'
