"""Text ids shaped like the ones Better-auth generates.

Better-auth gives every row of its tables a 32-character id drawn uniformly
from ``a-z``, ``A-Z`` and ``0-9`` (``generateId``). Rows that orgschema writes
into the same tables use the same shape, so nothing downstream can tell who
wrote them.
"""

from __future__ import annotations

import secrets
import string

from orgschema.errors import InvalidInputError

_ALPHABET = (string.ascii_lowercase + string.ascii_uppercase + string.digits).encode("ascii")
# Bytes at or above the largest multiple of 62 are dropped rather than folded
# in with a modulo, so every character is equally likely (as in Better-auth).
_LIMIT = 256 // len(_ALPHABET) * len(_ALPHABET)
_TO_CHARACTER = bytes(_ALPHABET[byte % len(_ALPHABET)] for byte in range(256))
_REJECTED = bytes(range(_LIMIT, 256))

#: Better-auth's default id length.
ID_LENGTH = 32


def generate_id(length: int = ID_LENGTH) -> str:
    """A random id of ``length`` letters and digits, like Better-auth's ``generateId``.

    :param length: How many characters; Better-auth's default is 32.
    :raises InvalidInputError: ``length`` is less than 1.
    :returns: e.g. ``'V1StGXR8Z5jdHi6BmyTfQx3Wc9LpKe0a'``.
    """
    if length < 1:
        raise InvalidInputError(f"an id needs at least one character, not {length}", field="length")
    characters = b""
    while len(characters) < length:
        # A few spare bytes make a second round (after rejections) very rare.
        characters += secrets.token_bytes(length + 8).translate(_TO_CHARACTER, _REJECTED)
    return characters[:length].decode("ascii")
