"""Better-auth-compatible password hashes (the cross-check with Better-auth is in test_better_auth)."""

from __future__ import annotations

import asyncio
import re

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


# Literal hashes printed by Better-auth 1.7.25's own `hashPassword` (from
# `better-auth/crypto`, run in tests/interop/better_auth), not recomputed here:
# if our parameters drifted from Better-auth's, these would stop verifying.
BETTER_AUTH_HASHES = [
    (
        "password123",
        "a51e2fea95363dc5cde36e5ab5d0299b:db61fa3cacbe50e7f90ec6d9b889cb3517d91529a43dcec1a5ee"
        "197fbde59fafb24cecf14a80cc0710e367b4cddab60e35ec6a1c10a33721cdcd28ace6c658b2",
    ),
    (
        "ｐａｓｓｗｏｒｄ１２３",
        "58d9dd8f10903029a3309c8f23b53167:b4537ac684c3db832f31cdfbea53b60c0721d2fab6e621749db6"
        "decc9d825f024a69540e341f6630fe0abbb58c3aabbdb836b4d865d6b92d3f06b62f8718b9fc",
    ),
    (
        "correct horse battery staple",
        "37672fefc7cb2ac48d2ee24c55a0db81:b610a28434dc78e02fc607bcc475bc6d1c4e130e628c884edb24"
        "daa6feb42a82cb48aad0756377ad7f2225fd307f12d3eeac1c340311292f65f335ef662d20da",
    ),
    (
        "Ünïcödé-パスワード",
        "8105f414a25686feb46088a082f1612b:a5ac34f87ae2722ff7aa14e80f40943984920105168df6e08c0a"
        "3121f61f69decde33ee9e3a3a546e4490cb186f05c92b1afb5d354133be0e9827bee296d84bc",
    ),
]


@pytest.mark.parametrize(("password", "stored"), BETTER_AUTH_HASHES)
def test_hashes_made_by_better_auth_verify(password: str, stored: str) -> None:
    assert verify_password_sync(password, stored)
    assert not verify_password_sync(password + " ", stored)


def test_passwords_are_nfkc_normalised_as_better_auth_does() -> None:
    # Better-auth hashed the full-width spelling; that the ASCII spelling
    # verifies against it shows Better-auth normalised it (NFKC), as we do.
    full_width_hash = BETTER_AUTH_HASHES[1][1]
    assert verify_password_sync("password123", full_width_hash)


@pytest.mark.parametrize("stored", ["", "nocolon", "salt:", ":abcd", "salt:nothex", "a:b:c"])
def test_malformed_hash_never_verifies(stored: str) -> None:
    assert verify_password_sync("anything", stored) is False


async def test_hashing_does_not_block_the_event_loop() -> None:
    # A hash computed on the event loop would finish within the task's first
    # step, before this coroutine gets control back; off the loop, the task is
    # still waiting for its thread when it does. No timing is involved.
    hashing = asyncio.create_task(hash_password("correct horse"))
    await asyncio.sleep(0)
    assert not hashing.done()
    stored = await hashing

    verifying = asyncio.create_task(verify_password("correct horse", stored))
    await asyncio.sleep(0)
    assert not verifying.done()
    assert await verifying
