"""The roles of the domain: one place where each role string is spelled.

``Role`` is what a profile may hold (platform-wide); ``MembershipRole`` is what
a member may hold inside one organization, which is every role but
``platform_admin``. The tables' CHECK constraints are built from these enums,
so adding a role here and generating a migration is the whole change.

``MembershipRole`` is also the order of roles: its members are declared from
the most authority to the least, and :meth:`MembershipRole.at_least` (used by
``Identity.has_role`` and the Starlette scopes of :mod:`orgschema.auth`) reads
that order and nothing else.
"""

from __future__ import annotations

from enum import Enum

from orgschema.errors import InvalidInputError


class MembershipRole(str, Enum):
    """A member's role inside one organization (``organization_user.role``).

    Declared from the most authority to the least (organization_admin >
    manager > coach > teacher): a new role goes where its authority puts it.
    """

    ORGANIZATION_ADMIN = "organization_admin"
    MANAGER = "manager"
    COACH = "coach"
    TEACHER = "teacher"

    def at_least(self, other: MembershipRole | str) -> bool:
        """Whether this role carries at least the authority of ``other``.

        :param other: A membership role or its value (``"manager"``).
        :raises InvalidInputError: (``field='role'``) ``other`` is not a membership role.
        :returns: ``True`` for ``other`` itself and every role above it.
        """
        try:
            wanted = MembershipRole(other)
        except ValueError:
            raise InvalidInputError(f"{other!r} is not a membership role", field="role") from None
        return _RANK[self] <= _RANK[wanted]

    def and_below(self) -> tuple[MembershipRole, ...]:
        """This role and every role with less authority, from the most to the least."""
        return tuple(role for role in MembershipRole if self.at_least(role))


class Role(str, Enum):
    """A user's platform-wide role (``profile.role``)."""

    PLATFORM_ADMIN = "platform_admin"
    ORGANIZATION_ADMIN = MembershipRole.ORGANIZATION_ADMIN.value
    MANAGER = MembershipRole.MANAGER.value
    COACH = MembershipRole.COACH.value
    TEACHER = MembershipRole.TEACHER.value


# Derived from the declaration order above; never written out a second time.
_RANK = {role: rank for rank, role in enumerate(MembershipRole)}


def role_check_sql(column: str, roles: type[Enum]) -> str:
    """The SQL condition ``"column" IN ('a', 'b', ...)`` allowing exactly ``roles``."""
    allowed = ", ".join(f"'{member.value}'" for member in roles)
    return f'"{column}" IN ({allowed})'
