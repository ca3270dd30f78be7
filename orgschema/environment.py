"""The deployment environments orgschema knows, and what each one allows.

The environment is ``APP_ENV``, else ``NODE_ENV`` (the original system's
variable), read by :class:`~orgschema.settings.Settings`. Only development and
test may hold fixture data; anything else, including an unset or misspelt
environment, is treated like production (fail closed).
"""

from __future__ import annotations

from enum import Enum


class Environment(str, Enum):
    """A deployment environment, as ``APP_ENV``/``NODE_ENV`` spell it."""

    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


#: Environments where fixtures may be seeded.
SEEDABLE = frozenset({Environment.DEVELOPMENT, Environment.TEST})


def parse_environment(value: str | Environment | None) -> Environment | None:
    """The :class:`Environment` ``value`` names, or ``None`` for unset or unknown.

    Surrounding spaces and letter case are ignored (``Production`` is
    production); abbreviations are not (``dev`` is unknown).
    """
    if value is None:
        return None
    if isinstance(value, Environment):
        return value
    try:
        return Environment(value.strip().lower())
    except ValueError:
        return None


def is_seedable(value: str | Environment | None) -> bool:
    """Whether ``value`` is development or test, the only environments fixtures may go to."""
    return parse_environment(value) in SEEDABLE
