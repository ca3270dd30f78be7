"""Starlette's side: an ``AuthenticationBackend`` so that ``request.user`` is the caller.

Install it with Starlette's ``AuthenticationMiddleware``; ``request.user`` is
then an :class:`~orgschema.auth.Identity` (or Starlette's unauthenticated
user) and ``request.auth.scopes`` follow the roles, so ``@requires`` works:

- ``authenticated`` for every signed-in user;
- ``email_verified`` when Better-auth has verified the e-mail;
- ``platform_admin`` for a platform admin;
- ``organization:<id>:<role>`` for each organization the user is a member of,
  for their role and every role below it (a manager also gets
  ``organization:<id>:coach`` and ``organization:<id>:teacher``), so a
  scope names the least role that passes.
"""

from __future__ import annotations

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from orgschema.auth.credentials import CredentialRules
from orgschema.auth.identity import Identity, identify
from orgschema.settings import Settings


class BetterAuthBackend(AuthenticationBackend):
    """Authenticates Better-auth's session cookie or bearer token (see :func:`authenticate`).

    :param settings: The Better-auth secret and cookie rules; read from the
        environment when ``None``.
    :raises ConfigurationError: no Better-auth secret is configured (raised
        here, when the backend is made, not at the first request).

    A database that cannot be reached raises
    :class:`~orgschema.errors.DatabaseUnavailable` out of the middleware.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self._rules = CredentialRules.from_settings(settings or Settings.from_env())

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The caller's scopes and identity, or ``None`` for an anonymous request."""
        identity = await identify(self._rules, conn)
        if identity is None:
            return None
        return AuthCredentials(scopes(identity)), identity


def scopes(identity: Identity) -> list[str]:
    """The Starlette scopes of an identity (listed in this module's docstring)."""
    granted = ["authenticated"]
    if identity.email_verified:
        granted.append("email_verified")
    if identity.is_platform_admin:
        granted.append("platform_admin")
    for membership in identity.memberships:
        granted += (
            f"organization:{membership.organization_id}:{role.value}"
            for role in membership.role.and_below()
        )
    return granted
