"""Who gets into the studio, and for how long.

A person signs in with the e-mail and password of a platform admin: the same
Better-auth credential the application uses (``account.password``, see
:mod:`orgschema.passwords`) and a profile whose role is ``platform_admin``.
There is no second password.

Piccolo Admin keeps its sessions in Piccolo's ``sessions`` table, each
pointing at a row of ``piccolo_user``. The studio writes one such row per
Better-auth user, a *mirror*, that grants nothing anywhere else (not active,
not admin, a password nothing hashes to) and records whose it is:

- ``username`` ``orgschema-studio-<hash of the user id>`` and ``email``
  ``<same hash>@studio.orgschema.invalid`` (unique, and never a real address);
- ``first_name``: the Better-auth user id the mirror belongs to;
- ``last_name``: a fingerprint of the versions of that user's ``user`` and
  ``profile`` rows at sign-in (PostgreSQL's ``xmin``, which every UPDATE of
  a row renews).

Every request checks, in one query, that the user still exists, is still a
platform admin, and that neither row has changed since sign-in. Deleting the
user, demoting them (even if they are promoted again before their next
click) or changing their e-mail (even back again) therefore ends every
studio session they had, for good: the sessions are deleted, and only a new
sign-in with the password starts one. So does any other change to those two
rows, such as a new name: signing in again is the price of never missing one.

A session ends after ``session_expiry`` without a request (each request
starts that time again) and at ``max_session_expiry`` after sign-in at the
latest.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from piccolo.apps.user.tables import BaseUser
from piccolo_api.session_auth.tables import SessionsBase
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
)
from starlette.authentication import BaseUser as StarletteUser
from starlette.requests import HTTPConnection

from orgschema.errors import InvalidInputError
from orgschema.passwords import verify_password
from orgschema.roles import Role
from orgschema.validation import MAX_EMAIL_LENGTH, check_text

logger = logging.getLogger("orgschema.studio")

#: The cookie Piccolo Admin keeps its session token in.
SESSION_COOKIE = "id"

#: Longest password looked at; Better-auth's own limit is 128 characters, but
#: a credential set some other way may be longer.
MAX_PASSWORD_INPUT = 1024

# A well-formed Better-auth hash that no password produces. When an e-mail has
# no credential, the password is checked against this instead, so an unknown
# e-mail costs the same scrypt as a known one with a wrong password.
_NO_CREDENTIAL = "0" * 32 + ":" + "0" * 128

_MIRROR_PREFIX = "orgschema-studio-"
_MIRROR_DOMAIN = "@studio.orgschema.invalid"
# piccolo_user.first_name, where the Better-auth user id is kept, is varchar(255).
_MAX_USER_ID_LENGTH = 255

# Piccolo's sessions table stores naive local time (datetime.now()), as its own
# create_session writes it; a module attribute so tests can move time.
_now = datetime.now


@dataclass(frozen=True)
class _Admin:
    """A platform admin as they are now: who, and the fingerprint their sessions carry."""

    user_id: str
    fingerprint: str


def _storable(text: str, max_length: int) -> bool:
    try:
        check_text(text, "text", max_length=max_length)
    except InvalidInputError:
        return False
    return True


def _fingerprint(user_id: str, user_version: str, profile_version: str) -> str:
    # The versions are the rows' xmin: any UPDATE of a row (a demotion or an
    # e-mail change, even one undone since) gives it a new one.
    return hashlib.sha256(f"{user_id}\0{user_version}\0{profile_version}".encode()).hexdigest()


def _mirror_key(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:32]


async def _platform_admin(email: str, password: str) -> _Admin | None:
    """The platform admin whose Better-auth e-mail and password these are, else ``None``.

    Every path runs exactly one scrypt derivation (the stored hash, or
    :data:`_NO_CREDENTIAL`), so the answer's timing tells nothing about which
    check failed.
    """
    email = email.strip().lower()
    row: dict[str, Any] | None = None
    # The HTTP layer refuses these with a reason; a direct caller gets a plain
    # "no" after the same scrypt.
    if _storable(email, MAX_EMAIL_LENGTH):
        rows = await BaseUser.raw(
            "SELECT u.id, u.email, a.password, p.role, u.xmin::text AS user_version, "
            'p.xmin::text AS profile_version FROM "user" u '
            'LEFT JOIN account a ON a."userId" = u.id AND a."providerId" = \'credential\' '
            "LEFT JOIN profile p ON p.user_id = u.id "
            'WHERE u.email = {} ORDER BY a."createdAt" LIMIT 1',
            email,
        ).run()
        row = rows[0] if rows else None
    stored = row["password"] if row and row["password"] else _NO_CREDENTIAL
    usable = _storable(password, MAX_PASSWORD_INPUT)
    matches = await verify_password(password if usable else "", stored)
    if not matches or not usable or row is None or row["role"] != Role.PLATFORM_ADMIN.value:
        return None
    return _Admin(
        user_id=row["id"],
        fingerprint=_fingerprint(row["id"], row["user_version"], row["profile_version"]),
    )


async def can_sign_in(email: str, password: str) -> bool:
    """Whether the studio would let ``email`` and ``password`` in.

    That is: they are the Better-auth credential of a user whose profile is
    ``platform_admin``. Costs one scrypt, like a sign-in.

    :param email: The e-mail, as typed (trimmed and lower-cased here).
    :param password: The password.
    :returns: Whether the studio would accept them.
    """
    return await _platform_admin(email, password) is not None


def _unusable_password() -> str:
    """Shaped like Piccolo's hashes, so Piccolo's own login parses it, but random: nothing matches."""
    return f"pbkdf2_sha256$600000${secrets.token_hex(16)}${secrets.token_hex(32)}"


class StudioLogin(BaseUser, tablename="piccolo_user"):
    """Piccolo Admin's ``piccolo_user``, signed into with a platform admin's Better-auth credential.

    Piccolo Admin calls :meth:`login` with what was typed into its form; the
    row it returns the id of is the admin's mirror, which its ``sessions``
    rows point at.
    """

    @classmethod
    async def login(cls, username: str, password: str) -> int | None:
        """Check ``username`` (an e-mail) and ``password`` against Better-auth's tables.

        The studio's HTTP layer has already refused anything that is not a
        short string, so every call here costs one scrypt.

        :param username: What was typed as the user name: a platform admin's e-mail.
        :param password: Their Better-auth password.
        :returns: The id of the admin's mirror row, or ``None`` for any other
            user, a wrong password or an unknown e-mail alike.
        """
        admin = await _platform_admin(username, password)
        if admin is None:
            return None
        if len(admin.user_id) > _MAX_USER_ID_LENGTH:
            logger.error(
                "studio sign-in refused: user id %r is longer than %d characters",
                admin.user_id[:40],
                _MAX_USER_ID_LENGTH,
            )
            return None
        return await cls._mirror(admin)

    @classmethod
    async def _mirror(cls, admin: _Admin) -> int | None:
        key = _mirror_key(admin.user_id)
        username, email = f"{_MIRROR_PREFIX}{key}", f"{key}{_MIRROR_DOMAIN}"
        # One statement, not a StudioLogin instance: BaseUser hashes any
        # password it is given that does not look hashed already (600,000
        # PBKDF2 rounds), and its default, "", does not.
        await cls.raw(
            "INSERT INTO piccolo_user (username, password, email, first_name, last_name, "
            "active, admin, superuser) VALUES ({}, {}, {}, {}, {}, false, false, false) "
            "ON CONFLICT DO NOTHING",
            username,
            _unusable_password(),
            email,
            admin.user_id,
            admin.fingerprint,
        ).run()
        async with cls._meta.db.transaction():
            rows = await cls.raw(
                "SELECT id, email, first_name, last_name FROM piccolo_user "
                "WHERE username = {} FOR UPDATE",
                username,
            ).run()
            if not rows or (rows[0]["email"], rows[0]["first_name"]) != (email, admin.user_id):
                logger.error(
                    "studio sign-in refused: piccolo_user %r exists but is not the studio's "
                    "mirror of user %s; delete that row",
                    username,
                    admin.user_id,
                )
                return None
            mirror_id = int(rows[0]["id"])
            if rows[0]["last_name"] != admin.fingerprint:
                # Sessions from before a demotion or an e-mail change stay dead.
                await SessionsBase.delete().where(SessionsBase.user_id == mirror_id).run()
            await (
                cls.update({cls.last_name: admin.fingerprint, cls.last_login: datetime.now()})
                .where(cls.id == mirror_id)
                .run()
            )
            # Sessions are never deleted when they lapse; tidy this admin's own
            # lapsed ones (only theirs: the table may be a service's too).
            await (
                SessionsBase.delete()
                .where(
                    (SessionsBase.user_id == mirror_id)
                    & (SessionsBase.max_expiry_date < datetime.now())
                )
                .run()
            )
        return mirror_id


@dataclass(frozen=True)
class Mirror:
    """A mirror row as Piccolo Admin reads it from ``request.user.user``.

    Not a :class:`StudioLogin` instance: building one without a password
    hashes the default one, 600,000 PBKDF2 rounds (0.15 s), on every request.
    """

    id: int
    username: str
    email: str
    active: bool = False
    admin: bool = False
    superuser: bool = False


class StudioUser(StarletteUser):
    """The platform admin behind a studio request (``request.user``)."""

    def __init__(self, mirror: Mirror, user_id: str, email: str) -> None:
        #: The mirror row, where Piccolo Admin looks for ``request.user.user``.
        self.user = mirror
        #: The Better-auth user id.
        self.better_auth_user_id = user_id
        #: The admin's e-mail, now.
        self.email = email

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.email

    @property
    def identity(self) -> str:
        return self.better_auth_user_id

    @property
    def user_id(self) -> int:
        """The mirror row's id, which Piccolo Admin reports as the user's."""
        return int(self.user.id)


class StudioSessions(AuthenticationBackend):
    """The studio's session check: a live session of a platform admin who is still the same one.

    :param session_expiry: A session ends after this long without a request.
    """

    def __init__(self, session_expiry: timedelta) -> None:
        self.session_expiry = session_expiry
        # Extending on every request would write on every click; extending
        # when less than this is left keeps the idle limit within a tenth of
        # itself (a minute at most) of the configured one, and never above it.
        self.refresh_below = session_expiry - min(session_expiry / 10, timedelta(minutes=1))

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, StarletteUser] | None:
        token = conn.cookies.get(SESSION_COOKIE)
        if not token:
            raise AuthenticationError("no session cookie")
        rows = await SessionsBase.raw(
            "SELECT s.id AS session_id, s.expiry_date, s.max_expiry_date, m.id AS mirror_id, "
            "m.username, m.email AS mirror_email, m.first_name AS user_id, "
            "m.last_name AS fingerprint, m.active, m.admin, u.email, p.role, "
            "u.xmin::text AS user_version, p.xmin::text AS profile_version FROM sessions s "
            "JOIN piccolo_user m ON m.id = s.user_id "
            'LEFT JOIN "user" u ON u.id = m.first_name '
            "LEFT JOIN profile p ON p.user_id = u.id "
            "WHERE s.token = {}",
            token,
        ).run()
        if not rows:
            raise AuthenticationError("no such session")
        row = rows[0]
        now = _now()
        if row["expiry_date"] <= now or row["max_expiry_date"] <= now:
            await SessionsBase.delete().where(SessionsBase.id == row["session_id"]).run()
            raise AuthenticationError("the session has lapsed")
        user_id = row["user_id"] or ""
        key = _mirror_key(user_id)
        if (
            row["username"] != f"{_MIRROR_PREFIX}{key}"
            or row["mirror_email"] != f"{key}{_MIRROR_DOMAIN}"
            or row["active"]
            or row["admin"]
        ):
            # A session of some other piccolo_user (a service's own admin,
            # or a mirror from before sessions were bound to a user id).
            raise AuthenticationError("not a studio session")
        if (
            row["email"] is None
            or row["role"] != Role.PLATFORM_ADMIN.value
            or _fingerprint(user_id, row["user_version"], row["profile_version"])
            != row["fingerprint"]
        ):
            await SessionsBase.delete().where(SessionsBase.user_id == row["mirror_id"]).run()
            raise AuthenticationError("platform admins only")
        if row["expiry_date"] - now < self.refresh_below:
            await (
                SessionsBase.update(
                    {
                        SessionsBase.expiry_date: min(
                            now + self.session_expiry, row["max_expiry_date"]
                        )
                    }
                )
                .where(SessionsBase.id == row["session_id"])
                .run()
            )
        mirror = Mirror(id=row["mirror_id"], username=row["username"], email=row["mirror_email"])
        return AuthCredentials(scopes=["authenticated"]), StudioUser(mirror, user_id, row["email"])
