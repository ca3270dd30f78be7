"""Configuration read from the environment, validated once, in one place.

Only this module reads ``os.environ``. Every public function that needs
configuration takes ``settings: Settings | None = None`` and calls
:meth:`Settings.from_env` only when none is given, so nothing is read at
import time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from orgschema.errors import ConfigurationError

#: Where the embedded PostgreSQL keeps its data when ``DATABASE_URL`` is unset.
DEFAULT_EMBEDDED_DIR = Path(".orgschema") / "pgdata"

#: Seconds a migrator waits for another migrator's lock by default.
DEFAULT_LOCK_TIMEOUT = 60.0

#: Better-auth's cookie prefix unless its ``advanced.cookiePrefix`` says otherwise.
DEFAULT_AUTH_COOKIE_PREFIX = "better-auth"

_POSTGRES_SCHEMES = ("postgres", "postgresql")

# RFC 7230 token characters: what Better-auth accepts in a cookie name.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

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
    :param better_auth_secret: ``BETTER_AUTH_SECRET``, else ``AUTH_SECRET``:
        the secret the TypeScript service's Better-auth signs session cookies
        with, when ``better_auth_secrets`` is empty.
    :param better_auth_secrets: ``BETTER_AUTH_SECRETS`` (``version:secret,...``)
        as ``(version, secret)`` pairs, current first. When set, Better-auth
        signs and verifies session cookies with the first one alone.
    :param auth_cookie_prefix: ``ORGSCHEMA_AUTH_COOKIE_PREFIX``: Better-auth's
        ``advanced.cookiePrefix``; the session cookie is
        ``<prefix>.session_token``.
    :param auth_accept_unsigned_bearer: ``ORGSCHEMA_AUTH_UNSIGNED_BEARER``:
        accept ``Authorization: Bearer <token>`` without a signature, as
        Better-auth's bearer plugin does unless ``requireSignature`` is set.
    :param setup_allow_without_token: ``ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN``:
        serve the first-run endpoint without ``SETUP_TOKEN`` even outside
        development and test (where it otherwise refuses with 503).

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
    better_auth_secret: str | None = field(default=None, repr=False)
    better_auth_secrets: tuple[tuple[int, str], ...] = field(default=(), repr=False)
    auth_cookie_prefix: str = DEFAULT_AUTH_COOKIE_PREFIX
    auth_accept_unsigned_bearer: bool = False
    setup_allow_without_token: bool = False

    def __post_init__(self) -> None:
        for url in (self.database_url, self.migration_database_url):
            if url is not None:
                validate_database_url(url)
        _validate_auth(self)
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
        ``ORGSCHEMA_LOCK_TIMEOUT``, ``ORGSCHEMA_ADMIN_PASSWORD``,
        ``BETTER_AUTH_SECRET``/``AUTH_SECRET``, ``BETTER_AUTH_SECRETS``,
        ``ORGSCHEMA_AUTH_COOKIE_PREFIX``, ``ORGSCHEMA_AUTH_UNSIGNED_BEARER`` and
        ``ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN``.

        A variable set to the empty string counts as unset.

        :param environ: The mapping to read; defaults to ``os.environ``.
        :raises ConfigurationError: ``DATABASE_URL`` is not a PostgreSQL URI,
            ``ORGSCHEMA_LOCK_TIMEOUT`` is not a number, ``BETTER_AUTH_SECRETS``
            is not ``version:secret,...``, the cookie prefix is not a cookie
            name, or ``ORGSCHEMA_AUTH_UNSIGNED_BEARER`` or
            ``ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN`` is not a yes or a no.
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
            # Better-auth's own variables and precedence, so that both services
            # can share one environment.
            better_auth_secret=env.get("BETTER_AUTH_SECRET") or env.get("AUTH_SECRET") or None,
            better_auth_secrets=parse_better_auth_secrets(env.get("BETTER_AUTH_SECRETS") or ""),
            auth_cookie_prefix=env.get("ORGSCHEMA_AUTH_COOKIE_PREFIX")
            or DEFAULT_AUTH_COOKIE_PREFIX,
            auth_accept_unsigned_bearer=_flag(
                "ORGSCHEMA_AUTH_UNSIGNED_BEARER", env.get("ORGSCHEMA_AUTH_UNSIGNED_BEARER")
            ),
            setup_allow_without_token=_flag(
                "ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN",
                env.get("ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN"),
            ),
        )


def parse_better_auth_secrets(value: str) -> tuple[tuple[int, str], ...]:
    """``BETTER_AUTH_SECRETS`` as Better-auth 1.7 reads it: ``version:secret`` entries
    separated by commas, the current one first, each trimmed.

    :param value: The variable's value; empty means unset.
    :raises ConfigurationError: an entry without a colon, a version that is not
        a non-negative whole number, an empty secret or a repeated version
        (Better-auth refuses to start on each); the message never shows a secret.
    :returns: ``(version, secret)`` pairs in the order given; empty when unset.
    """
    if not value:
        return ()
    pairs = []
    for position, entry in enumerate(value.split(","), start=1):
        version, colon, secret = entry.strip().partition(":")
        if not colon:
            raise ConfigurationError(
                f"BETTER_AUTH_SECRETS entry {position} is not <version>:<secret>; "
                'write e.g. BETTER_AUTH_SECRETS="2:new-secret,1:old-secret"'
            )
        if not version.strip().isdigit() or not version.strip().isascii():
            raise ConfigurationError(
                f"BETTER_AUTH_SECRETS entry {position} has a version that is not a "
                "non-negative whole number"
            )
        pairs.append((int(version), secret.strip()))
    return tuple(pairs)


def _validate_auth(settings: Settings) -> None:
    secrets = [("BETTER_AUTH_SECRET", settings.better_auth_secret)]
    seen: set[int] = set()
    for version, versioned in settings.better_auth_secrets:
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ConfigurationError(
                f"a BETTER_AUTH_SECRETS version must be a non-negative whole number, not {version!r}"
            )
        if version in seen:
            raise ConfigurationError(
                f"BETTER_AUTH_SECRETS names version {version} twice; give each secret its own version"
            )
        seen.add(version)
        if not versioned:
            raise ConfigurationError(
                f"the secret of version {version} in BETTER_AUTH_SECRETS is empty"
            )
        secrets.append((f"version {version} of BETTER_AUTH_SECRETS", versioned))
    for name, secret in secrets:
        if secret is None:
            continue
        if not isinstance(secret, str) or not secret:
            raise ConfigurationError(f"{name} must be a non-empty string; unset it instead")
        try:
            secret.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigurationError(
                f"{name} is not valid UTF-8; set it to the exact text the TypeScript service uses"
            ) from None
    if not isinstance(settings.auth_cookie_prefix, str) or not _COOKIE_NAME.fullmatch(
        settings.auth_cookie_prefix
    ):
        raise ConfigurationError(
            f"the auth cookie prefix {settings.auth_cookie_prefix!r} cannot start a cookie name; "
            "use Better-auth's advanced.cookiePrefix exactly (letters, digits, '-', '_', '.')"
        )


def _flag(name: str, value: str | None) -> bool:
    if not value:
        return False
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be 1 or 0 (true or false), not {value!r}")


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
