"""The studio: Piccolo Admin over every orgschema table, for platform admins only.

:func:`create_studio` returns an ASGI app that a service can mount under a path
of its own; :func:`serve_studio` runs one with uvicorn (``orgschema studio``,
``orgschema dev``). This package is the only part of orgschema that imports
``piccolo_admin`` and ``piccolo_api``. Its parts:

- :mod:`~orgschema.studio._access`: who gets in (a platform admin's own
  Better-auth credential) and how long a session lasts, bound to one
  Better-auth user id;
- :mod:`~orgschema.studio._views`: what it shows (views without the secret
  columns of :mod:`orgschema.secret_columns`) and how written values are
  checked (:mod:`orgschema.validation`);
- :mod:`~orgschema.studio._guard`: the HTTP edge (hosts, sizes, input shape,
  the sign-in rate limit, cookies and headers);
- :mod:`~orgschema.studio._limits`: the limits and whose address counts;
- :mod:`~orgschema.studio._app` and :mod:`~orgschema.studio._serve`: the app
  and the server.

docs/studio.md states what is hidden, limited and refused.
"""

from orgschema.studio._access import StudioLogin, StudioUser, can_sign_in
from orgschema.studio._app import (
    DEFAULT_MAX_SESSION_EXPIRY,
    DEFAULT_SESSION_EXPIRY,
    DEFAULT_SITE_NAME,
    create_studio,
    engine_pool,
    is_production,
)
from orgschema.studio._limits import StudioLimits
from orgschema.studio._serve import DEFAULT_HOST, DEFAULT_PORT, serve_studio

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_SESSION_EXPIRY",
    "DEFAULT_PORT",
    "DEFAULT_SESSION_EXPIRY",
    "DEFAULT_SITE_NAME",
    "StudioLimits",
    "StudioLogin",
    "StudioUser",
    "can_sign_in",
    "create_studio",
    "engine_pool",
    "is_production",
    "serve_studio",
]

# The names are documented, and shown in reprs and tracebacks, as
# orgschema.studio's (as httpx does for its own), not as their private modules'.
for _name in (
    "StudioLimits",
    "StudioUser",
    "can_sign_in",
    "create_studio",
    "engine_pool",
    "is_production",
    "serve_studio",
):
    globals()[_name].__module__ = __name__
