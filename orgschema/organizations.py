"""Everyday work on organizations and memberships, as typed async functions.

These run on Piccolo's engine (the service's ``DB``): through its connection
pool when the service has started one, and inside ``async with
DB.transaction():`` when called in one, so several calls can be made atomic.
Every refusal is an :class:`~orgschema.errors.OrgschemaError`: a taken slug
(:class:`~orgschema.errors.SlugTaken`), a member already there
(:class:`~orgschema.errors.AlreadyMember`), an unknown user or organization
(:class:`~orgschema.errors.UnknownUser`,
:class:`~orgschema.errors.UnknownOrganization`), no such membership
(:class:`~orgschema.errors.NotAMember`), or a bad value
(:class:`~orgschema.errors.InvalidInputError`, with ``field`` set). The
database's own constraints decide; these functions translate what it says.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from orgschema._queries import as_user_id, as_uuid, fetch
from orgschema.errors import InvalidInputError, NotAMember, UnknownOrganization
from orgschema.roles import MembershipRole, Role
from orgschema.validation import MAX_EMAIL_LENGTH, check_slug, check_text, normalise_name

#: Most members :func:`list_members` returns in one page.
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class OrganizationRecord:
    """An organization as stored."""

    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


@dataclass(frozen=True)
class Membership:
    """A user's membership of one organization, with that organization's name and slug."""

    organization_id: uuid.UUID
    organization_name: str
    organization_slug: str
    user_id: str
    role: MembershipRole
    created_at: datetime


@dataclass(frozen=True)
class Member:
    """A member of an organization, as listed by :func:`list_members`."""

    user_id: str
    name: str
    email: str
    role: MembershipRole
    joined_at: datetime


@dataclass(frozen=True)
class MemberPage:
    """One page of :func:`list_members`.

    :ivar members: Ordered by e-mail.
    :ivar next_cursor: Pass as ``after`` for the next page; ``None`` on the last page.
    """

    members: tuple[Member, ...]
    next_cursor: str | None


def slugify(name: str) -> str:
    """The slug made from ``name``: ASCII letters and digits, lower-case, joined by single hyphens.

    Accents are dropped (``"École Nord"`` gives ``"ecole-nord"``); anything
    else that is not a letter or digit separates words.

    :param name: An organization's name.
    :returns: The slug; empty for a name with no Latin letters or digits.
    """
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")


def membership_role(role: MembershipRole | str) -> MembershipRole:
    """``role`` as a :class:`~orgschema.roles.MembershipRole`.

    :param role: A membership role or its value (``"teacher"``).
    :returns: The membership role.
    :raises InvalidInputError: (``field='role'``) not a membership role.
    """
    try:
        return MembershipRole(role)
    except ValueError:
        allowed = ", ".join(item.value for item in MembershipRole)
        hint = (
            "; platform_admin is a platform-wide role: use set_profile_role"
            if role == Role.PLATFORM_ADMIN.value
            else ""
        )
        raise InvalidInputError(
            f"{role!r} is not a membership role (one of {allowed}){hint}", field="role"
        ) from None


async def create_organization(name: str, *, slug: str | None = None) -> OrganizationRecord:
    """Create an organization; its slug is made from the name when not given.

    :param name: The display name, trimmed; 1 to 200 characters, no control
        characters (:func:`orgschema.validation.normalise_name`).
    :param slug: Lower-case letters and digits with single hyphens between
        them, at most 200 characters; ``None`` makes one with :func:`slugify`.
    :raises InvalidInputError: a blank or too long ``name``, a malformed
        ``slug``, or a name no slug can be made from (``field`` says which).
    :raises SlugTaken: another organization has the slug; nothing was written.
    :returns: The new organization.
    """
    name = normalise_name(name)
    if slug is None:
        slug = slugify(name)
        if not slug:
            raise InvalidInputError(
                f"no slug can be made from {name!r}; pass slug= (e.g. slug='my-school')",
                field="slug",
            )
    check_slug(slug)
    (row,) = await fetch(
        "INSERT INTO organization (name, slug) VALUES ({}, {}) "
        "RETURNING id, name, slug, created_at",
        name,
        slug,
    )
    return OrganizationRecord(**dict(row))


_MEMBERSHIP_COLUMNS = (
    "m.organization_id, o.name AS organization_name, o.slug AS organization_slug, "
    "m.user_id, m.role, m.created_at"
)


def _membership(row: asyncpg.Record) -> Membership:
    return Membership(
        organization_id=row["organization_id"],
        organization_name=row["organization_name"],
        organization_slug=row["organization_slug"],
        user_id=row["user_id"],
        role=MembershipRole(row["role"]),
        created_at=row["created_at"],
    )


async def add_member(
    organization_id: uuid.UUID | str,
    user_id: str,
    role: MembershipRole | str = MembershipRole.TEACHER,
) -> Membership:
    """Make a user a member of an organization with a role.

    :param organization_id: The organization's id.
    :param user_id: The user's id (Better-auth's text id).
    :param role: A :class:`~orgschema.roles.MembershipRole` or its value.
    :raises InvalidInputError: a malformed id or an unknown role.
    :raises UnknownOrganization: no organization has this id.
    :raises UnknownUser: no user has this id.
    :raises AlreadyMember: the user is a member already (whatever the role).
    :returns: The new membership.
    """
    organization = as_uuid(organization_id, "organization_id")
    user = as_user_id(user_id)
    checked = membership_role(role)
    (row,) = await fetch(
        "WITH m AS (INSERT INTO organization_user (organization_id, user_id, role) "
        "VALUES ({}, {}, {}) RETURNING organization_id, user_id, role, created_at) "
        f"SELECT {_MEMBERSHIP_COLUMNS} FROM m JOIN organization o ON o.id = m.organization_id",
        organization,
        user,
        checked.value,
    )
    return _membership(row)


async def change_member_role(
    organization_id: uuid.UUID | str, user_id: str, role: MembershipRole | str
) -> Membership:
    """Change a member's role in an organization.

    :param organization_id: The organization's id.
    :param user_id: The user's id (Better-auth's text id).
    :param role: A :class:`~orgschema.roles.MembershipRole` or its value.
    :raises InvalidInputError: a malformed id or an unknown role.
    :raises NotAMember: the user is not a member of the organization (or
        either does not exist).
    :returns: The membership with its new role.
    """
    organization = as_uuid(organization_id, "organization_id")
    user = as_user_id(user_id)
    checked = membership_role(role)
    rows = await fetch(
        "WITH m AS (UPDATE organization_user SET role = {} "
        "WHERE organization_id = {} AND user_id = {} "
        "RETURNING organization_id, user_id, role, created_at) "
        f"SELECT {_MEMBERSHIP_COLUMNS} FROM m JOIN organization o ON o.id = m.organization_id",
        checked.value,
        organization,
        user,
    )
    if not rows:
        raise _not_a_member(user, organization)
    return _membership(rows[0])


async def remove_member(organization_id: uuid.UUID | str, user_id: str) -> None:
    """End a user's membership of an organization.

    The user's profile is left alone, even when it names this organization.

    :param organization_id: The organization's id.
    :param user_id: The user's id (Better-auth's text id).
    :raises InvalidInputError: a malformed id.
    :raises NotAMember: the user is not a member of the organization.
    """
    organization = as_uuid(organization_id, "organization_id")
    user = as_user_id(user_id)
    rows = await fetch(
        "DELETE FROM organization_user WHERE organization_id = {} AND user_id = {} RETURNING 1",
        organization,
        user,
    )
    if not rows:
        raise _not_a_member(user, organization)


async def list_memberships(user_id: str) -> list[Membership]:
    """Every membership of a user, ordered by organization name.

    :param user_id: The user's id (Better-auth's text id).
    :returns: An empty list for a user with none (or no such user).
    :raises InvalidInputError: a malformed id.
    """
    user = as_user_id(user_id)
    rows = await fetch(
        f"SELECT {_MEMBERSHIP_COLUMNS} FROM organization_user m "
        "JOIN organization o ON o.id = m.organization_id "
        "WHERE m.user_id = {} ORDER BY o.name, o.id",
        user,
    )
    return [_membership(row) for row in rows]


async def list_members(
    organization_id: uuid.UUID | str, *, limit: int = 50, after: str | None = None
) -> MemberPage:
    """One page of an organization's members, ordered by e-mail.

    :param organization_id: The organization's id.
    :param limit: Members per page, 1 to 500.
    :param after: ``next_cursor`` of the previous page; ``None`` for the first.
    :raises InvalidInputError: a malformed id or ``limit``.
    :raises UnknownOrganization: no organization has this id.
    :returns: Up to ``limit`` members and the cursor of the next page.
    """
    organization = as_uuid(organization_id, "organization_id")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInputError(
            f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}, not {limit!r}", field="limit"
        )
    if after is not None:
        # A cursor is the last e-mail of the previous page.
        check_text(after, "after", max_length=MAX_EMAIL_LENGTH)
    # Keyset pagination: a page costs the same however deep it is, and members
    # joining or leaving between pages never shift the ones not yet seen.
    rows = await fetch(
        "SELECT u.id, u.name, u.email, m.role, m.created_at FROM organization_user m "
        'JOIN "user" u ON u.id = m.user_id '
        "WHERE m.organization_id = {} AND ({}::text IS NULL OR u.email > {}) "
        "ORDER BY u.email LIMIT {}",
        organization,
        after,
        after,
        limit + 1,
    )
    if not rows and after is None:
        exists = await fetch("SELECT 1 FROM organization WHERE id = {}", organization)
        if not exists:
            raise UnknownOrganization(f"no organization has the id {organization}")
    members = tuple(
        Member(
            user_id=row["id"],
            name=row["name"],
            email=row["email"],
            role=MembershipRole(row["role"]),
            joined_at=row["created_at"],
        )
        for row in rows[:limit]
    )
    next_cursor = members[-1].email if len(rows) > limit else None
    return MemberPage(members=members, next_cursor=next_cursor)


def _not_a_member(user_id: str, organization_id: uuid.UUID) -> NotAMember:
    return NotAMember(
        f"user {user_id} is not a member of organization {organization_id}; add_member first"
    )
