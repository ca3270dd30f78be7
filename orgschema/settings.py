"""Configuration read from the environment, validated once, in one place.

Only this module reads ``os.environ``. Every public function that needs
configuration takes ``settings: Settings | None = None`` and calls
:meth:`Settings.from_env` only when none is given, so nothing is read at
import time.
"""

from __future__ import annotations

import math
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

#: Seconds a migration's statement may wait for a table lock before its
#: transaction is rolled back and retried (PostgreSQL's ``lock_timeout``).
DEFAULT_DDL_LOCK_TIMEOUT = 5.0

#: How many times a migration that timed out on a lock is tried again.
DEFAULT_DDL_RETRIES = 4

#: Seconds to wait for a server before saying it cannot be reached.
DEFAULT_CONNECT_TIMEOUT = 10.0

#: The longest PostgreSQL accepts for its millisecond settings (INT_MAX ms).
MAX_TIMEOUT_SECONDS = 2147483.647

MAX_DDL_RETRIES = 100

# Each timeout: how the message names it (its CLI option and variable), and
# whether 0 is allowed (0 is "no limit" to PostgreSQL, "do not wait" for the
# migrator's lock).
_TIMEOUTS = {
    "lock_timeout": ("--lock-timeout / ORGSCHEMA_LOCK_TIMEOUT", True),
    "ddl_lock_timeout": ("--ddl-lock-timeout / ORGSCHEMA_DDL_LOCK_TIMEOUT", True),
    "statement_timeout": ("--statement-timeout / ORGSCHEMA_STATEMENT_TIMEOUT", True),
    "connect_timeout": ("ORGSCHEMA_CONNECT_TIMEOUT", False),
}

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
    :param ddl_lock_timeout: Seconds each migration statement may wait for a
        table lock (PostgreSQL's ``lock_timeout``; 0 waits without limit).
    :param ddl_retries: How many times a migration that timed out on a lock
        is retried (with backoff and jitter) before the run gives up.
    :param statement_timeout: Seconds any one migration statement may run
        (PostgreSQL's ``statement_timeout``); ``None`` leaves the server's.
    :param connect_timeout: Seconds to wait for the server when connecting;
        ``None`` means the engine's own setting, else 10.

    Every timeout must be a finite number of seconds within PostgreSQL's
    range (0 to 2147483.647); anything else raises ``ConfigurationError``.

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
    ddl_lock_timeout: float = DEFAULT_DDL_LOCK_TIMEOUT
    ddl_retries: int = DEFAULT_DDL_RETRIES
    statement_timeout: float | None = None
    connect_timeout: float | None = None

    def __post_init__(self) -> None:
        for url in (self.database_url, self.migration_database_url):
            if url is not None:
                validate_database_url(url)
        _validate_auth(self)
        for name, (label, zero_allowed) in _TIMEOUTS.items():
            value = getattr(self, name)
            if value is not None:
                _check_seconds(label, value, zero_allowed=zero_allowed)
        retries = self.ddl_retries
        if (
            isinstance(retries, bool)
            or not isinstance(retries, int)
            or not 0 <= retries <= MAX_DDL_RETRIES
        ):
            raise ConfigurationError(
                f"--ddl-retries / ORGSCHEMA_DDL_RETRIES must be a whole number from 0 to "
                f"{MAX_DDL_RETRIES}, not {retries!r}"
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
        ``ORGSCHEMA_AUTH_COOKIE_PREFIX``, ``ORGSCHEMA_AUTH_UNSIGNED_BEARER``,
        ``ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN``, ``ORGSCHEMA_DDL_LOCK_TIMEOUT``,
        ``ORGSCHEMA_DDL_RETRIES``, ``ORGSCHEMA_STATEMENT_TIMEOUT`` and
        ``ORGSCHEMA_CONNECT_TIMEOUT``.

        A variable set to the empty string counts as unset.

        :param environ: The mapping to read; defaults to ``os.environ``.
        :raises ConfigurationError: ``DATABASE_URL`` is not a PostgreSQL URI,
            a timeout or retry count is not a number in range, ``BETTER_AUTH_SECRETS``
            is not ``version:secret,...``, the cookie prefix is not a cookie
            name, or ``ORGSCHEMA_AUTH_UNSIGNED_BEARER`` or
            ``ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN`` is not a yes or a no.
        :returns: The settings.
        """
        env = os.environ if environ is None else environ
        embedded_dir = env.get("ORGSCHEMA_EMBEDDED_DIR")
        retries = env.get("ORGSCHEMA_DDL_RETRIES")
        try:
            ddl_retries = int(retries) if retries else DEFAULT_DDL_RETRIES
        except ValueError as exc:
            raise ConfigurationError(
                f"ORGSCHEMA_DDL_RETRIES must be a whole number, not {retries!r}"
            ) from exc
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            embedded_dir=Path(embedded_dir) if embedded_dir else DEFAULT_EMBEDDED_DIR,
            migration_database_url=env.get("MIGRATION_DATABASE_URL") or None,
            environment=env.get("APP_ENV") or env.get("NODE_ENV") or None,
            setup_token=env.get("SETUP_TOKEN") or None,
            lock_timeout=_or(_seconds_from(env, "ORGSCHEMA_LOCK_TIMEOUT"), DEFAULT_LOCK_TIMEOUT),
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
            ddl_lock_timeout=_or(
                _seconds_from(env, "ORGSCHEMA_DDL_LOCK_TIMEOUT"), DEFAULT_DDL_LOCK_TIMEOUT
            ),
            ddl_retries=ddl_retries,
            statement_timeout=_seconds_from(env, "ORGSCHEMA_STATEMENT_TIMEOUT"),
            connect_timeout=_seconds_from(env, "ORGSCHEMA_CONNECT_TIMEOUT"),
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


def _seconds_from(env: Mapping[str, str], name: str) -> float | None:
    """The number of seconds variable ``name`` holds (``None`` when unset); range-checked later."""
    value = env.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number of seconds, not {value!r}") from exc


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _check_seconds(label: str, value: float, *, zero_allowed: bool) -> None:
    """Refuse a timeout PostgreSQL (or common sense) would not take: inf, nan, negative, too big."""
    low = "from 0" if zero_allowed else "above 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_allowed)
        or value > MAX_TIMEOUT_SECONDS
    ):
        raise ConfigurationError(
            f"{label} must be a number of seconds {low} up to {MAX_TIMEOUT_SECONDS} "
            f"(PostgreSQL's limit), not {value!r}"
        )


def milliseconds(seconds: float) -> int:
    """``seconds`` as whole milliseconds for a PostgreSQL setting, never rounded down to 0.

    PostgreSQL reads 0 as "no limit", so a positive value of less than a
    millisecond becomes 1.
    """
    return math.ceil(seconds * 1000) if seconds > 0 else 0


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
