"""FastAPI's side: dependencies that answer 401 and 403 for Better-auth users.

The only module of orgschema that imports FastAPI; ``import orgschema`` and
``import orgschema.auth`` never load it. Make one :class:`AuthDependencies`
when the app is built and use its members with ``Depends``::

    auth = AuthDependencies()

    @app.get("/me")
    async def me(identity: Annotated[Identity, Depends(auth.require_identity)]) -> ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request

from orgschema.auth.credentials import CredentialRules
from orgschema.auth.identity import Identity, identify
from orgschema.errors import ConfigurationError, DatabaseUnavailable
from orgschema.organizations import membership_role
from orgschema.roles import MembershipRole
from orgschema.settings import Settings

#: Sent with every 401, as HTTP asks; the bearer token is one way in.
WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}


class AuthDependencies:
    """FastAPI dependencies for Better-auth's session cookie and bearer token.

    :param settings: The Better-auth secret and cookie rules; read from the
        environment when ``None``.
    :raises ConfigurationError: no Better-auth secret is configured (raised
        here, when the app is built, not at the first request).

    :ivar current_identity: The caller's :class:`Identity`, or ``None``.
    :ivar require_identity: The caller's identity; 401 without one.
    :ivar require_platform_admin: The identity of a platform admin; 401
        without an identity, 403 for anyone else.

    Each request is authenticated once however many of these it uses (FastAPI
    caches a dependency per request), and not at all when
    :class:`~orgschema.auth.BetterAuthBackend` has done it already. A database
    that cannot be reached answers 503.
    """

    current_identity: Callable[[Request], Awaitable[Identity | None]]
    require_identity: Callable[[Request], Awaitable[Identity]]
    require_platform_admin: Callable[[Request], Awaitable[Identity]]

    def __init__(self, settings: Settings | None = None) -> None:
        rules = CredentialRules.from_settings(settings or Settings.from_env())
        # Each dependency takes the request itself (one level of FastAPI's
        # dependency solving, which costs more than the lookup) and shares the
        # request's identity through the ASGI scope, under a key of this object.
        memo = f"orgschema.auth.identity.{id(self)}"

        async def current_identity(request: Request) -> Identity | None:
            scope = request.scope
            if memo in scope:
                known: Identity | None = scope[memo]
                return known
            identity = scope.get("user")
            if not isinstance(identity, Identity):
                try:
                    identity = await identify(rules, request)
                except DatabaseUnavailable as exc:
                    raise HTTPException(
                        503, "the database is unavailable; try again shortly"
                    ) from exc
            scope[memo] = identity
            return identity

        async def require_identity(request: Request) -> Identity:
            identity = await current_identity(request)
            if identity is None:
                raise HTTPException(
                    401,
                    "not signed in: send Better-auth's session cookie or its bearer token",
                    headers=WWW_AUTHENTICATE,
                )
            return identity

        async def require_platform_admin(request: Request) -> Identity:
            identity = await require_identity(request)
            if not identity.is_platform_admin:
                raise HTTPException(403, "only platform admins may do this")
            return identity

        self.current_identity = current_identity
        self.require_identity = require_identity
        self.require_platform_admin = require_platform_admin

    def require_membership(
        self,
        organization_from: str = "organization_id",
        at_least: MembershipRole | str = MembershipRole.TEACHER,
    ) -> Callable[[Request], Awaitable[Identity]]:
        """A dependency passing members of the organization a path parameter names.

        :param organization_from: The path parameter holding the
            organization's id (``"org_id"`` for ``/orgs/{org_id}/...``).
        :param at_least: The least role that passes (organization_admin >
            manager > coach > teacher); by default any member passes.
        :raises InvalidInputError: ``at_least`` is not a membership role.
        :returns: The dependency; it gives the identity, answers 401 without
            one and 403 to anyone who is not a member with that role
            (including for an id that is not a UUID). On a route without that
            path parameter it raises :class:`ConfigurationError`.
        """
        least = membership_role(at_least)
        require_identity = self.require_identity

        async def require_membership(request: Request) -> Identity:
            identity = await require_identity(request)
            try:
                organization = request.path_params[organization_from]
            except KeyError:
                raise ConfigurationError(
                    f"require_membership(organization_from={organization_from!r}) is used on "
                    f"{request.url.path}, whose route has no path parameter {organization_from!r}"
                ) from None
            if not identity.has_role(organization, at_least=least):
                raise HTTPException(
                    403, f"only members of this organization with the role {least.value} or above"
                )
            return identity

        return require_membership
