"""Which columns hold secrets: the one declaration, and what may be shown of them.

A value in one of these columns lets whoever reads it act as a user: sign in
(a session token), set their password (a reset token), or act at an OAuth
provider. The studio builds its views from :data:`SECRET_COLUMNS`, and
anything that logs, exports or audits rows passes them through
:func:`redact` first.

Two kinds of column are declared:

- **secret**: the whole value is the secret; nothing of it is ever shown.
- **secret-bearing**: the value carries a secret inside a part that is safe to
  show. Better-auth 1.7 keeps the token of a password reset, a magic link, a
  one-time token or an account deletion *in* ``verification.identifier``
  (``reset-password:<token>``, ``delete-account-<token>``), so only the kind
  of verification (``reset-password``) is shown, never the identifier.

The table classes also flag the wholly secret columns with Piccolo's
``secret=True`` (Piccolo's own ``exclude_secrets`` queries then leave them
out); ``verification.identifier`` is declared only here, since flagging it
would change Better-auth's table in the shipped migrations. A test holds the
two together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: What :func:`redact` puts in place of a secret value.
REDACTED = "[secret]"

#: What a verification identifier of no known kind is shown as.
OTHER_KIND = "other"


@dataclass(frozen=True)
class SecretColumn:
    """A column whose value must never be shown, searched, sorted or written outside Better-auth.

    :ivar table: The table's name in the database.
    :ivar column: The column's name in the database.
    :ivar holds: What the value is, and so why it is secret.
    :ivar shown_as: For a secret-bearing column, the name under which its
        safe part is shown (``"kind"``); ``None`` when nothing of it is.
    :ivar show: The safe part of a value, computed in Python (for logs and exports).
    :ivar show_sql: The same, as SQL over the column (for the studio, which
        lists, filters and sorts by it without the value leaving the database).
    """

    table: str
    column: str
    holds: str
    shown_as: str | None = None
    show: Callable[[str | None], str | None] | None = None
    show_sql: Callable[[str], str] | None = None


# Verification kinds that Better-auth 1.7.25 writes as "<kind>-<secret or
# e-mail>" rather than "<kind>:<secret>" (email-otp, phone-number and
# two-factor plugins, account deletion). Longest first: "2fa" is a prefix of
# the other two-factor kinds.
_HYPHENATED_KINDS: tuple[str, ...] = tuple(
    sorted(
        (
            "change-email-otp",
            "email-verification-otp",
            "forget-password-otp",
            "sign-in-otp",
            "phone-number-otp",
            "phone-number-reset",
            "delete-account",
            "trust-device",
            "2fa-attempts",
            "2fa-otp",
            "2fa",
        ),
        key=len,
        reverse=True,
    )
)

# A kind before a colon is shown only if it looks like one (Better-auth's are
# short lower-case words joined by hyphens); anything else might be data.
_MAX_KIND_LENGTH = 64
_KIND_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def secret_column_names(table: str) -> frozenset[str]:
    """The names of ``table``'s secret and secret-bearing columns.

    :param table: A table's name in the database (``"account"``).
    :returns: Its declared columns; empty for a table with none.
    """
    return frozenset(item.column for item in SECRET_COLUMNS if item.table == table)


def is_secret(table: str, column: str) -> bool:
    """Whether ``table.column`` is declared secret or secret-bearing.

    :param table: A table's name in the database.
    :param column: A column's name in the database.
    :returns: ``True`` for a column of :data:`SECRET_COLUMNS`.
    """
    return column in secret_column_names(table)


def verification_kind(identifier: str | None) -> str | None:
    """The kind of a verification row (``reset-password``), never its token.

    :param identifier: A ``verification.identifier``.
    :returns: The part before the first ``:`` when it is a short lower-case
        word (``reset-password``, ``magic-link``, ``one-time-token``...), else
        the kind of a hyphenated identifier Better-auth writes
        (``delete-account``, ``sign-in-otp``...), else ``"other"``;
        ``None`` for ``None``.
    """
    if identifier is None:
        return None
    head, colon, _ = identifier.partition(":")
    if colon and _is_kind(head):
        return head
    for kind in _HYPHENATED_KINDS:
        if identifier.startswith(f"{kind}-"):
            return kind
    return OTHER_KIND


def _is_kind(text: str) -> bool:
    words = text.split("-")
    return len(text) <= _MAX_KIND_LENGTH and all(words) and set(text) <= _KIND_CHARACTERS


def verification_kind_sql(column: str) -> str:
    """SQL computing :func:`verification_kind` of ``column`` in the database.

    It lets the studio list, filter and sort verifications by kind while the
    identifier itself never leaves the database.

    :param column: The identifier column as SQL, e.g. ``"verification"."identifier"``.
    :returns: A ``CASE`` expression of type text.
    """
    head = f"split_part({column}, ':', 1)"
    # translate() compares code points, as _is_kind does; a regex range such
    # as [a-z] could follow the database's collation instead.
    characters = "".join(sorted(_KIND_CHARACTERS))
    hyphenated = " ".join(
        f"WHEN starts_with({column}, '{kind}-') THEN '{kind}'" for kind in _HYPHENATED_KINDS
    )
    return (
        f"(CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN strpos({column}, ':') BETWEEN 2 AND {_MAX_KIND_LENGTH + 1} "
        f"AND translate({head}, '{characters}', '') = '' "
        f"AND {head} NOT LIKE '-%' AND {head} NOT LIKE '%-' AND {head} NOT LIKE '%--%' "
        f"THEN {head} {hyphenated} ELSE '{OTHER_KIND}' END)"
    )


#: Every secret and secret-bearing column of the orgschema tables.
SECRET_COLUMNS: tuple[SecretColumn, ...] = (
    SecretColumn("account", "password", "the credential's scrypt hash, open to offline guessing"),
    SecretColumn(
        "account", "accessToken", "an OAuth access token: acts as the user at the provider"
    ),
    SecretColumn("account", "refreshToken", "an OAuth refresh token: mints new access tokens"),
    SecretColumn("account", "idToken", "an OpenID Connect ID token issued for the user"),
    SecretColumn("session", "token", "the session token, the value of the sign-in cookie"),
    SecretColumn(
        "verification", "value", "what a verification proves: a user id, an OTP, OAuth state"
    ),
    SecretColumn(
        "verification",
        "identifier",
        "the token of a password reset, magic link, one-time token or account deletion",
        shown_as="kind",
        show=verification_kind,
        show_sql=verification_kind_sql,
    ),
)


def redact(table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` that is safe to log, export or audit.

    Each secret column's value becomes :data:`REDACTED` (``None`` stays
    ``None``, so that "no token" still reads as such); a secret-bearing column
    is replaced by its safe part under its own name (``identifier`` becomes
    ``kind``).

    :param table: The row's table, by its name in the database.
    :param row: Column names to values, as the database returns them.
    :returns: The redacted copy; ``row`` itself is left alone.
    """
    declared = {item.column: item for item in SECRET_COLUMNS if item.table == table}
    redacted: dict[str, Any] = {}
    for name, value in row.items():
        column = declared.get(name)
        if column is None:
            redacted[name] = value
        elif column.shown_as is not None and column.show is not None:
            redacted[column.shown_as] = column.show(value)
        else:
            redacted[name] = None if value is None else REDACTED
    return redacted
