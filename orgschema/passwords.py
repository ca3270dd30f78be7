"""Password hashes that Better-auth's email-and-password provider accepts, and back.

Better-auth (1.x) stores ``account.password`` as ``salt:key``: the salt is 16
random bytes written as 32 lower-case hex characters and used *as that text*
(not as the bytes), the key is scrypt (N=16384, r=16, p=1, 64 bytes) of the
NFKC-normalised UTF-8 password, in lower-case hex. Matching it byte for byte is
what lets a user created here sign in through Better-auth, and the reverse.

scrypt with these parameters takes tens of milliseconds of CPU, so the async
functions run it in a worker thread instead of blocking the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import unicodedata

_N = 16384
_R = 16
_P = 1
_KEY_LENGTH = 64
# scrypt needs 128 * N * r bytes (32 MiB here); OpenSSL's default cap is exactly
# that, so leave headroom.
_MAX_MEMORY = 64 * 1024 * 1024


def _derive(password: str, salt: str) -> bytes:
    normalised = unicodedata.normalize("NFKC", password)
    return hashlib.scrypt(
        normalised.encode("utf-8"),
        salt=salt.encode("utf-8"),
        n=_N,
        r=_R,
        p=_P,
        dklen=_KEY_LENGTH,
        maxmem=_MAX_MEMORY,
    )


def hash_password_sync(password: str) -> str:
    """Hash ``password`` as Better-auth does (blocking: tens of milliseconds of CPU).

    :param password: The password, any length; NFKC-normalised before hashing.
    :returns: ``salt:key`` in lower-case hex, for ``account.password``.
    """
    salt = secrets.token_hex(16)
    return f"{salt}:{_derive(password, salt).hex()}"


def verify_password_sync(password: str, stored: str) -> bool:
    """Check ``password`` against a Better-auth hash (blocking), in constant time.

    :param password: The password to check.
    :param stored: A ``salt:key`` hash, as in ``account.password``.
    :returns: Whether it matches; ``False`` for a malformed hash, never an error.
    """
    salt, separator, key_hex = stored.partition(":")
    if not separator or not salt or not key_hex:
        return False
    try:
        expected = bytes.fromhex(key_hex)
    except ValueError:
        return False
    # Constant-time, so the comparison leaks nothing about the stored key.
    return hmac.compare_digest(_derive(password, salt), expected)


async def hash_password(password: str) -> str:
    """Hash ``password`` as Better-auth does, in a worker thread so the event loop keeps running.

    :param password: The password, any length; NFKC-normalised before hashing.
    :returns: ``salt:key`` in lower-case hex, for ``account.password``; a
        user with it signs in through Better-auth with ``password``.
    """
    return await asyncio.to_thread(hash_password_sync, password)


async def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a Better-auth hash, in a worker thread, in constant time.

    :param password: The password to check.
    :param stored: A ``salt:key`` hash, as in ``account.password`` (written
        by Better-auth or by :func:`hash_password`).
    :returns: Whether it matches; ``False`` for a malformed hash, never an error.
    """
    return await asyncio.to_thread(verify_password_sync, password, stored)
