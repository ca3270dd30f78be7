"""Who is calling: :class:`Identity`, loaded in one query from a verified session token.

:func:`authenticate` reads the credential (:mod:`orgschema.auth.credentials`),
then :func:`load_identity` fetches the session, its user, the profile's role
and every membership in one statement on Piccolo's engine, the same path as
the domain helpers (:mod:`orgschema._queries`): the service's pool when it has
started one, its transaction when called inside one. Nothing is written:
Better-auth extends a session's expiry on its own requests only.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from starlette.authentication import BaseUser
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection

from orgschema._queries import fetch
from orgschema.auth.credentials import CredentialRules
from orgschema.organizations import Membership
from orgschema.roles import MembershipRole, Role
from orgschema.settings import Settings

#: The one statement :func:`load_identity` runs (``{}`` is the token). A row
#: per membership (one row with NULL membership columns for none); no row when
#: the token is unknown, the session has expired or its user is gone.
IDENTITY_QUERY = (
    'SELECT s.id AS session_id, s."expiresAt" AS session_expires_at, u.id AS user_id, '
    'u.email, u.name, u."emailVerified" AS email_verified, p.role AS platform_role, '
    "m.organization_id, o.name AS organization_name, o.slug AS organization_slug, "
    "m.role AS membership_role, m.created_at AS membership_created_at "
    'FROM session s JOIN "user" u ON u.id = s."userId" '
    "LEFT JOIN profile p ON p.user_id = u.id "
    "LEFT JOIN (organization_user m JOIN organization o ON o.id = m.organization_id) "
    "ON m.user_id = u.id "
    # Better-auth's getSession refuses a session once expiresAt < now.
    'WHERE s.token = {} AND s."expiresAt" >= statement_timestamp() '
    "ORDER BY o.name, o.id"
)

# Faster than calling the enums, on the path of every request; the database's
# CHECK constraints hold the columns to these values.
_ROLES = {role.value: role for role in Role}
_MEMBERSHIP_ROLES = {role.value: role for role in MembershipRole}


@dataclass(frozen=True)
class Identity(BaseUser):
    """A signed-in Better-auth user, with their platform role and memberships.

    It is also a Starlette user: ``request.user`` under
    :class:`~orgschema.auth.BetterAuthBackend`, with ``identity`` (Starlette's
    name for the id) equal to :attr:`user_id`.

    :ivar user_id: ``user.id``.
    :ivar email: ``user.email`` (lower-case).
    :ivar name: ``user.name``.
    :ivar email_verified: ``user.emailVerified``.
    :ivar role: The profile's platform-wide role; ``None`` without a profile.
    :ivar memberships: Every membership, ordered by organization name.
    :ivar session_id: ``session.id`` (the token itself is not kept, so an
        identity can be logged or returned as JSON).
    :ivar session_expires_at: When the session expires unless Better-auth
        extends it.
    """

    user_id: str
    email: str
    name: str
    email_verified: bool
    role: Role | None
    memberships: tuple[Membership, ...]
    session_id: str
    session_expires_at: datetime

    @property
    def is_authenticated(self) -> bool:
        """Always ``True`` (Starlette's ``BaseUser``)."""
        return True

    @property
    def display_name(self) -> str:
        """The user's name, else their e-mail (Starlette's ``BaseUser``)."""
        return self.name or self.email

    @property
    def identity(self) -> str:
        """The user's id (Starlette's ``BaseUser``)."""
        return self.user_id

    @property
    def is_platform_admin(self) -> bool:
        """Whether the profile's role is ``platform_admin``."""
        return self.role is Role.PLATFORM_ADMIN

    def membership(self, organization_id: uuid.UUID | str) -> Membership | None:
        """The membership of one organization.

        :param organization_id: The organization's id, as a UUID or its text.
        :returns: ``None`` when the user is not a member, or for text that is
            not a UUID (nobody is a member of that).
        """
        if not isinstance(organization_id, uuid.UUID):
            try:
                organization_id = uuid.UUID(str(organization_id))
            except ValueError:
                return None
        for membership in self.memberships:
            if membership.organization_id == organization_id:
                return membership
        return None

    def role_in(self, organization_id: uuid.UUID | str) -> MembershipRole | None:
        """The user's role in one organization; ``None`` when not a member.

        A platform admin who is not a member has no role here: check
        :attr:`is_platform_admin` too where admins should pass.
        """
        membership = self.membership(organization_id)
        return None if membership is None else membership.role

    def has_role(
        self,
        organization_id: uuid.UUID | str,
        at_least: MembershipRole | str = MembershipRole.TEACHER,
    ) -> bool:
        """Whether the user is a member of the organization with at least a role.

        :param organization_id: The organization's id.
        :param at_least: The least role that passes (organization_admin >
            manager > coach > teacher); by default any membership passes.
        :raises InvalidInputError: ``at_least`` is not a membership role.
        """
        role = self.role_in(organization_id)
        return role is not None and role.at_least(at_least)


async def authenticate(
    request_or_headers: HTTPConnection | Mapping[str, str],
    *,
    settings: Settings | None = None,
) -> Identity | None:
    """Who sent a request, from Better-auth's session cookie or bearer token.

    Reads ``[__Secure-]better-auth.session_token`` (with the configured
    prefix) or ``Authorization: Bearer``, checks the signature in constant
    time, and loads the identity in one query. Only reads.

    :param request_or_headers: A Starlette/FastAPI request (or websocket), or
        the request's headers as a mapping (names in any letter case).
    :param settings: The Better-auth secret and cookie rules; read from the
        environment when ``None``.
    :raises ConfigurationError: no Better-auth secret is configured, or the
        database has no orgschema tables.
    :raises DatabaseUnavailable: the database cannot be reached.
    :returns: The identity, or ``None`` for a missing, malformed, tampered,
        unsigned (unless allowed), expired or signed-out credential, or one
        whose user was deleted.
    """
    rules = _rules(settings or Settings.from_env())
    return await identify(rules, request_or_headers)


@functools.lru_cache(maxsize=8)
def _rules(settings: Settings) -> CredentialRules:
    return CredentialRules.from_settings(settings)


async def identify(
    rules: CredentialRules, request_or_headers: HTTPConnection | Mapping[str, str]
) -> Identity | None:
    """:func:`authenticate` with rules made already (what the backend and dependencies hold)."""
    headers = (
        request_or_headers.headers
        if isinstance(request_or_headers, HTTPConnection)
        else request_or_headers
    )
    if isinstance(headers, Headers):
        cookies = headers.getlist("cookie")
        authorization = headers.get("authorization")
    else:
        cookies = []
        authorization = None
        for name, value in headers.items():
            lowered = name.lower()
            if lowered == "cookie":
                cookies.append(value)
            elif lowered == "authorization" and authorization is None:
                authorization = value
    token = rules.session_token(cookies, authorization)
    return None if token is None else await load_identity(token)


async def load_identity(token: str) -> Identity | None:
    """The identity of a session token (``session.token``), in one query.

    :param token: A token whose signature was checked already.
    :returns: ``None`` for an unknown or expired session.
    """
    rows = await _identity_rows(token)
    if not rows:
        return None
    first = rows[0]
    return Identity(
        user_id=first["user_id"],
        email=first["email"],
        name=first["name"],
        email_verified=first["email_verified"],
        role=None if first["platform_role"] is None else _ROLES[first["platform_role"]],
        memberships=tuple(
            Membership(
                organization_id=row["organization_id"],
                organization_name=row["organization_name"],
                organization_slug=row["organization_slug"],
                user_id=first["user_id"],
                role=_MEMBERSHIP_ROLES[row["membership_role"]],
                created_at=row["membership_created_at"],
            )
            for row in rows
            if row["organization_id"] is not None
        ),
        session_id=first["session_id"],
        session_expires_at=first["session_expires_at"],
    )


async def _identity_rows(token: str) -> Sequence[asyncpg.Record]:
    # The only database access of authentication: one statement, on the engine.
    return await fetch(IDENTITY_QUERY, token)
