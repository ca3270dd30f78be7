"""A user's profile: their platform-wide role and home organization.

Runs on Piccolo's engine, like :mod:`orgschema.organizations`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from orgschema._queries import as_user_id, fetch
from orgschema.errors import InvalidInputError
from orgschema.roles import Role


@dataclass(frozen=True)
class ProfileRecord:
    """A profile as stored."""

    user_id: str
    role: Role
    organization_id: uuid.UUID | None


def platform_role(role: Role | str) -> Role:
    """``role`` as a :class:`~orgschema.roles.Role`.

    :param role: A platform role or its value (``"platform_admin"``).
    :returns: The role.
    :raises InvalidInputError: (``field='role'``) not a platform role.
    """
    try:
        return Role(role)
    except ValueError:
        allowed = ", ".join(item.value for item in Role)
        raise InvalidInputError(
            f"{role!r} is not a role (one of {allowed})", field="role"
        ) from None


async def set_profile_role(user_id: str, role: Role | str) -> ProfileRecord:
    """Set a user's platform-wide role, creating their profile if they have none.

    Granting ``platform_admin`` this way is allowed: it is how an existing
    admin promotes another user.

    :param user_id: The user's id.
    :param role: A :class:`~orgschema.roles.Role` or its value.
    :raises InvalidInputError: a malformed id or an unknown role.
    :raises UnknownUser: no user has this id.
    :returns: The profile with its new role.
    """
    user = as_user_id(user_id)
    checked = platform_role(role)
    (row,) = await fetch(
        "INSERT INTO profile (user_id, role) VALUES ({}, {}) "
        "ON CONFLICT (user_id) DO UPDATE SET role = EXCLUDED.role, updated_at = CURRENT_TIMESTAMP "
        "RETURNING user_id, role, organization_id",
        user,
        checked.value,
    )
    return ProfileRecord(
        user_id=row["user_id"], role=Role(row["role"]), organization_id=row["organization_id"]
    )
