"""Ending Better-auth sessions from Python ("sign out everywhere").

Better-auth signs out by deleting the session's row, and its ``getSession``
refuses a token whose row is gone; so do these functions, on Piccolo's engine
like the domain helpers. A TypeScript service that caches sessions in a
cookie (``session.cookieCache``) or in secondary storage still accepts a
revoked session until that cache expires.
"""

from __future__ import annotations

from orgschema._queries import as_user_id, fetch
from orgschema.errors import InvalidInputError


async def revoke_session(token: str) -> bool:
    """End one session.

    :param token: The session's token (``session.token``: the part of the
        cookie before the dot), as Better-auth's ``revokeSession`` takes it.
    :raises InvalidInputError: ``token`` is empty, not a string, or holds
        a character no token can (NUL).
    :returns: Whether a session had this token.
    """
    if not isinstance(token, str) or not token:
        raise InvalidInputError("token must be a session's token (session.token)", field="token")
    (row,) = await fetch(
        "WITH ended AS (DELETE FROM session WHERE token = {} RETURNING 1) "
        "SELECT count(*) AS ended FROM ended",
        token,
    )
    return bool(row["ended"])


async def revoke_sessions(user_id: str) -> int:
    """End every session of a user: signed out on every device.

    :param user_id: The user's id (Better-auth's text id).
    :raises InvalidInputError: ``user_id`` is empty or not a string.
    :returns: How many sessions ended (0 for a user with none, or no such user).
    """
    user = as_user_id(user_id)
    (row,) = await fetch(
        'WITH ended AS (DELETE FROM session WHERE "userId" = {} RETURNING 1) '
        "SELECT count(*) AS ended FROM ended",
        user,
    )
    ended: int = row["ended"]
    return ended
