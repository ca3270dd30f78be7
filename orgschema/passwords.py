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
    """Hash ``password`` as Better-auth does; returns ``salt:key`` in hex."""
    salt = secrets.token_hex(16)
    return f"{salt}:{_derive(password, salt).hex()}"


def verify_password_sync(password: str, stored: str) -> bool:
    """Whether ``password`` matches a ``salt:key`` hash; ``False`` for a malformed hash."""
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
    """Hash ``password`` as Better-auth does, off the event loop; returns ``salt:key``."""
    return await asyncio.to_thread(hash_password_sync, password)


async def verify_password(password: str, stored: str) -> bool:
    """Check ``password`` against a Better-auth ``salt:key`` hash, off the event loop."""
    return await asyncio.to_thread(verify_password_sync, password, stored)
