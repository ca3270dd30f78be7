"""Configuration read from the environment, validated once, in one place.

Only this module reads ``os.environ``. Every public function that needs
configuration takes ``settings: Settings | None = None`` and calls
:meth:`Settings.from_env` only when none is given, so nothing is read at
import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from orgschema.errors import ConfigurationError

#: Where the embedded PostgreSQL keeps its data when ``DATABASE_URL`` is unset.
DEFAULT_EMBEDDED_DIR = Path(".orgschema") / "pgdata"

#: Seconds a migrator waits for another migrator's lock by default.
DEFAULT_LOCK_TIMEOUT = 60.0

_POSTGRES_SCHEMES = ("postgres", "postgresql")

# Fields whose value is a URL that may carry a password.
_URL_FIELDS = frozenset({"database_url", "migration_database_url"})


@dataclass(frozen=True)
class Settings:
    """What orgschema needs to know about its surroundings.

    :param database_url: A PostgreSQL URI (``postgresql://user:pass@host/db``),
        or ``None`` to use the embedded development server.
    :param embedded_dir: The embedded server's data directory.
    :param migration_database_url: The URI the migrator uses instead of
        ``database_url``: it needs a session-level connection (not a
        transaction-mode pooler) for its advisory lock.
    :param environment: ``APP_ENV``, else ``NODE_ENV``, as given (``None`` when
        neither is set); what it allows is decided where it matters.
    :param setup_token: ``SETUP_TOKEN``: when set, the first-run endpoint
        requires it as a bearer token.
    :param lock_timeout: Seconds a migrator waits for another one's lock.
    :param admin_password: ``ORGSCHEMA_ADMIN_PASSWORD``: the password
        ``orgschema bootstrap`` gives the first platform admin instead of
        prompting for one.

    Its ``repr`` masks the passwords in the URLs and leaves the secrets out,
    so settings can be logged.
    """

    database_url: str | None = None
    embedded_dir: Path = DEFAULT_EMBEDDED_DIR
    migration_database_url: str | None = None
    environment: str | None = None
    setup_token: str | None = field(default=None, repr=False)
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    admin_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for url in (self.database_url, self.migration_database_url):
            if url is not None:
                validate_database_url(url)
        if self.lock_timeout < 0:
            raise ConfigurationError(
                f"lock timeout must be zero or more seconds, not {self.lock_timeout}"
            )

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            if not item.repr:
                continue
            value = getattr(self, item.name)
            if item.name in _URL_FIELDS and value is not None:
                value = mask_password(value)
            shown.append(f"{item.name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``DATABASE_URL``, ``MIGRATION_DATABASE_URL``,
        ``APP_ENV``/``NODE_ENV``, ``SETUP_TOKEN``, ``ORGSCHEMA_EMBEDDED_DIR``,
        ``ORGSCHEMA_LOCK_TIMEOUT`` and ``ORGSCHEMA_ADMIN_PASSWORD``.

        A variable set to the empty string counts as unset.

        :param environ: The mapping to read; defaults to ``os.environ``.
        :raises ConfigurationError: ``DATABASE_URL`` is not a PostgreSQL URI,
            or ``ORGSCHEMA_LOCK_TIMEOUT`` is not a number.
        :returns: The settings.
        """
        env = os.environ if environ is None else environ
        embedded_dir = env.get("ORGSCHEMA_EMBEDDED_DIR")
        lock_timeout = env.get("ORGSCHEMA_LOCK_TIMEOUT")
        try:
            timeout = float(lock_timeout) if lock_timeout else DEFAULT_LOCK_TIMEOUT
        except ValueError as exc:
            raise ConfigurationError(
                f"ORGSCHEMA_LOCK_TIMEOUT must be a number of seconds, not {lock_timeout!r}"
            ) from exc
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            embedded_dir=Path(embedded_dir) if embedded_dir else DEFAULT_EMBEDDED_DIR,
            migration_database_url=env.get("MIGRATION_DATABASE_URL") or None,
            environment=env.get("APP_ENV") or env.get("NODE_ENV") or None,
            setup_token=env.get("SETUP_TOKEN") or None,
            lock_timeout=timeout,
            admin_password=env.get("ORGSCHEMA_ADMIN_PASSWORD") or None,
        )


def validate_database_url(url: str) -> None:
    """Refuse anything that is not a PostgreSQL URI naming a database.

    :param url: The URI to check.
    :raises ConfigurationError: with the URL's password masked.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ConfigurationError(
            f"DATABASE_URL {mask_password(url)!r} is not a valid URI ({exc}); "
            "expected postgresql://user:password@host:5432/database"
        ) from exc
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise ConfigurationError(
            f"DATABASE_URL {mask_password(url)!r} is not a PostgreSQL URI; "
            "expected postgresql://user:password@host:5432/database"
        )
    if not parts.path.strip("/"):
        raise ConfigurationError(
            f"DATABASE_URL {mask_password(url)!r} names no database; "
            "add one after the host, e.g. postgresql://user@host:5432/mydb"
        )


def mask_password(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and logs.

    :param url: Any URI; one that cannot be parsed comes back as
        ``<unparseable URL>``, so nothing of it is shown.
    :returns: The URI with its password masked.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL>"
    if not password:
        return url
    netloc = parts.netloc.replace(f":{password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
