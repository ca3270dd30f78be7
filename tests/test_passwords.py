"""Better-auth-compatible password hashes (the cross-check with Better-auth is in test_better_auth)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from orgschema.passwords import (
    hash_password,
    hash_password_sync,
    verify_password,
    verify_password_sync,
)


def test_format_is_hex_salt_colon_hex_key() -> None:
    stored = hash_password_sync("s3cret-password")
    assert re.fullmatch(r"[0-9a-f]{32}:[0-9a-f]{128}", stored)
    assert hash_password_sync("s3cret-password") != stored  # a fresh salt each time


def test_known_vector_from_better_auth_scheme() -> None:
    # The salt is used as its 32-character hex *text*; the key is scrypt
    # N=16384 r=16 p=1 of the NFKC-normalised password.
    import hashlib

    salt = "00112233445566778899aabbccddeeff"
    key = hashlib.scrypt(
        b"password123", salt=salt.encode(), n=16384, r=16, p=1, dklen=64, maxmem=64 * 2**20
    )
    assert verify_password_sync("ｐａｓｓｗｏｒｄ１２３", f"{salt}:{key.hex()}")


@pytest.mark.parametrize("stored", ["", "nocolon", "salt:", ":abcd", "salt:nothex", "a:b:c"])
def test_malformed_hash_never_verifies(stored: str) -> None:
    assert verify_password_sync("anything", stored) is False


async def test_hashing_does_not_block_the_event_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    stored = await hash_password("correct horse")
    assert await verify_password("correct horse", stored)
    elapsed = time.perf_counter() - started
    task.cancel()
    # Two scrypt runs took `elapsed`; a blocked loop would have ticked ~never.
    assert ticks >= int(elapsed / 0.005) // 4
