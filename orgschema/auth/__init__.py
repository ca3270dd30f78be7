"""Who is calling a Python service, from Better-auth's own session cookie or bearer token.

A Python service beside the TypeScript service that runs Better-auth reads the
same credential Better-auth sets, checks its signature with the shared secret,
and loads the user, their platform role and their memberships in one query:

- :func:`authenticate` (request or headers → :class:`Identity` or ``None``);
- :class:`BetterAuthBackend` for Starlette's ``AuthenticationMiddleware``;
- :class:`~orgschema.auth.dependencies.AuthDependencies` for FastAPI
  (loaded on first use, so FastAPI is never a requirement of this import);
- :func:`revoke_session` and :func:`revoke_sessions` to sign people out.

Parts: :mod:`~orgschema.auth.credentials` (reading and verifying, no I/O),
:mod:`~orgschema.auth.identity` (the one query), :mod:`~orgschema.auth.backend`,
:mod:`~orgschema.auth.dependencies`, :mod:`~orgschema.auth.revocation`.
See docs/auth.md.
"""

from __future__ import annotations

import typing

from orgschema.auth.backend import BetterAuthBackend, scopes
from orgschema.auth.identity import Identity, authenticate
from orgschema.auth.revocation import revoke_session, revoke_sessions

if typing.TYPE_CHECKING:
    from orgschema.auth.dependencies import AuthDependencies

__all__ = [
    "AuthDependencies",
    "BetterAuthBackend",
    "Identity",
    "authenticate",
    "revoke_session",
    "revoke_sessions",
    "scopes",
]


def __getattr__(name: str) -> typing.Any:
    # FastAPI is imported only by those who use its dependencies (PEP 562).
    if name == "AuthDependencies":
        from orgschema.auth.dependencies import AuthDependencies

        return AuthDependencies
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
