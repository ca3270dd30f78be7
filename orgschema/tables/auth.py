"""Better-auth's four tables: ``user``, ``session``, ``account``, ``verification``.

These must match what Better-auth 1.7 expects on PostgreSQL, because a
TypeScript service runs Better-auth against the same database and checks the
schema before every request. Hence the camelCase Python attribute names: they
are the real column names, and Piccolo Admin cannot save or filter columns
declared through ``db_column_name``. Better-auth inserts only its own columns,
so no column here may be NOT NULL without a default unless Better-auth always
sends it; nullable text says ``default=None`` so that it really defaults to
NULL, not Piccolo's ``''``.

The indexes Better-auth names (``session_userId_idx``, ``account_userId_idx``,
``verification_identifier_idx``) are created by a raw-SQL migration, since
Piccolo would name them ``session_userId`` and so on.
"""

from __future__ import annotations

import warnings

from piccolo.columns import Boolean, ForeignKey, OnDelete, OnUpdate, Text, Timestamptz
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Check
from piccolo.table import Table

# Better-auth's table is called "user", a reserved word. Piccolo quotes it in
# every query but warns at class creation; the name is not ours to change.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*`user` is a reserved keyword")

    class User(Table, tablename="user"):
        """A person who can sign in (Better-auth's ``user``)."""

        id = Text(primary_key=True, default=None, help_text="Better-auth's id (text).")
        name = Text(default=None, help_text="Display name.")
        email = Text(
            unique=True,
            default=None,
            help_text="Unique; stored lower-case, as Better-auth normalises it.",
        )
        emailVerified = Boolean(default=None, help_text="Set by Better-auth.")
        image = Text(null=True, default=None, help_text="Avatar URL.")
        createdAt = Timestamptz(default=TimestamptzNow())
        updatedAt = Timestamptz(default=TimestamptzNow())

        # Better-auth lower-cases emails before every insert and lookup; a
        # mixed-case row written around it could never sign in.
        user_email_lower_check = Check("email = lower(email)")


class Session(Table, tablename="session"):
    """A signed-in browser session (Better-auth's ``session``)."""

    id = Text(primary_key=True, default=None)
    expiresAt = Timestamptz(default=None)
    token = Text(unique=True, default=None, secret=True)
    createdAt = Timestamptz(default=TimestamptzNow())
    updatedAt = Timestamptz(default=None)
    ipAddress = Text(null=True, default=None)
    userAgent = Text(null=True, default=None)
    userId = ForeignKey(
        User,
        null=False,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.no_action,
        help_text="Deleting the user ends their sessions.",
    )


class Account(Table, tablename="account"):
    """A way to sign in: a password credential or an OAuth link (Better-auth's ``account``)."""

    id = Text(primary_key=True, default=None)
    accountId = Text(
        default=None,
        help_text="The provider's id for the user; the user's id for 'credential'.",
    )
    providerId = Text(default=None, help_text="'credential' for email and password.")
    userId = ForeignKey(
        User,
        null=False,
        on_delete=OnDelete.cascade,
        on_update=OnUpdate.no_action,
        help_text="Deleting the user deletes their accounts.",
    )
    accessToken = Text(null=True, default=None, secret=True)
    refreshToken = Text(null=True, default=None, secret=True)
    idToken = Text(null=True, default=None, secret=True)
    accessTokenExpiresAt = Timestamptz(null=True, default=None)
    refreshTokenExpiresAt = Timestamptz(null=True, default=None)
    scope = Text(null=True, default=None)
    password = Text(null=True, default=None, secret=True, help_text="scrypt 'salt:key'.")
    createdAt = Timestamptz(default=TimestamptzNow())
    updatedAt = Timestamptz(default=None)


class Verification(Table, tablename="verification"):
    """A pending verification such as an email-confirmation token (Better-auth's ``verification``)."""

    id = Text(primary_key=True, default=None)
    identifier = Text(default=None)
    value = Text(default=None, secret=True)
    expiresAt = Timestamptz(default=None)
    createdAt = Timestamptz(default=TimestamptzNow())
    updatedAt = Timestamptz(default=TimestamptzNow())
