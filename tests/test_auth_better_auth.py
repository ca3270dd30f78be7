"""A Python service knows the users a real Better-auth 1.7.25 server signed in, and agrees with it.

Better-auth runs as an HTTP server (``tests/interop/better_auth/server.mjs``)
reading its secret from the environment, as a TypeScript service does; the
Python service is the FastAPI example of docs/auth.md, written out and run
under uvicorn. Credentials go to both over HTTP, and each must answer as the
other does: same user or nobody. Without Node these tests skip loudly
(``ORGSCHEMA_REQUIRE_NODE=1`` makes them fail, as in CI).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from orgschema import (
    MembershipRole,
    Role,
    Session,
    Settings,
    add_member,
    create_organization,
    generate_id,
    set_profile_role,
)
from orgschema.auth import authenticate, revoke_session
from tests.auth_kit import (
    OTHER_SECRET,
    SECRET,
    BetterAuth,
    RawHeaders,
    better_auth,
    python_service,
)

pytestmark = [pytest.mark.better_auth, pytest.mark.usefixtures("clean_tables")]

DOC = Path(__file__).resolve().parent.parent / "docs" / "auth.md"
COOKIE = "better-auth.session_token"
THIRD_SECRET = "orgschema-auth-THIRD-test-secret-93c0d5e81a2b4f76"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """docs/auth.md's FastAPI service, written out as the files it names."""
    directory = tmp_path_factory.mktemp("auth_example")
    files = re.findall(r"```python\n# (\w+\.py)\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert sorted(name for name, _code in files) == ["app.py", "piccolo_conf.py"]
    for name, code in files:
        (directory / name).write_text(code)
    return directory


@pytest.fixture(scope="module")
async def service(example: Path, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The example service under uvicorn, with the same secret as Better-auth."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BETTER_AUTH_", "ORGSCHEMA_AUTH_")) and key != "PICCOLO_CONF"
    }
    env |= {"DATABASE_URL": database_url, "BETTER_AUTH_SECRET": SECRET}
    async with python_service(example, "app:app", env) as http:
        yield http


@pytest.fixture(scope="module")
async def ba(node: str, database_url: str) -> AsyncIterator[BetterAuth]:
    """Better-auth with the bearer plugin as it comes (it accepts unsigned tokens too)."""
    async with better_auth(node, database_url, "--bearer") as server:
        yield server


def cookie(value: str, name: str = COOKIE) -> RawHeaders:
    return [(b"cookie", f"{name}={value}".encode("latin-1"))]


def bearer(value: str) -> RawHeaders:
    return [(b"authorization", f"Bearer {value}".encode("latin-1"))]


async def python_sees(service: httpx.AsyncClient, headers: RawHeaders) -> str | None:
    """The user the Python service's /me sees, or None when it answers 401 (never a 500)."""
    response = await service.get("/me", headers=list(headers))
    assert response.status_code in (200, 401), (response.status_code, response.text)
    if response.status_code == 401:
        assert response.headers["www-authenticate"] == "Bearer"
        return None
    return str(response.json()["id"])


async def both_see(
    ba: BetterAuth, service: httpx.AsyncClient, headers: RawHeaders
) -> tuple[str | None, str | None]:
    return await ba.get_session(headers), await python_sees(service, headers)


def signature(token: str, secret: str = SECRET) -> str:
    digest = hmac.digest(secret.encode(), token.encode(), hashlib.sha256)
    return base64.b64encode(digest).decode()


async def session_with_plus_and_slash(user_id: str) -> tuple[str, str]:
    """A session for ``user_id`` whose signature holds '+' and '/', as Better-auth would store it.

    Better-auth's tokens are random, so whether their signature needs URL-encoding
    is luck; choosing the token makes the encoding cases below deterministic.
    """
    while True:
        token = generate_id()
        sig = signature(token)
        if "+" in sig and "/" in sig:
            break
    now = datetime.now(UTC)
    await Session(
        id=generate_id(),
        token=token,
        userId=user_id,
        expiresAt=now + timedelta(days=7),
        updatedAt=now,
    ).save()
    return token, sig


async def test_the_python_service_sees_better_auth_users_with_their_role_and_memberships(
    ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    ada = await ba.sign_up("ada@example.com", "Ada")
    school = await create_organization("Northgate School")
    club = await create_organization("Northgate Club")
    await add_member(school.id, ada.user_id, MembershipRole.MANAGER)
    await add_member(club.id, ada.user_id, MembershipRole.TEACHER)
    await set_profile_role(ada.user_id, Role.TEACHER)

    expected = {
        "id": ada.user_id,
        "email": "ada@example.com",
        "email_verified": False,
        "role": "teacher",
        "memberships": {str(school.id): "manager", str(club.id): "teacher"},
    }
    for headers in (
        [(b"cookie", ada.cookie.encode())],
        bearer(ada.bearer or ""),
        bearer(ada.cookie_value),  # the URL-encoded cookie value works as a bearer too
    ):
        response = await service.get("/me", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == expected
    assert ada.bearer == f"{ada.token}.{signature(ada.token)}"

    jar = {"cookie": ada.cookie}
    assert (await service.get("/hello", headers=jar)).json() == {"hello": "Ada"}
    assert (await service.get("/hello")).json() == {"hello": "stranger"}
    anonymous = await service.get("/me")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"

    reports = await service.get(f"/organizations/{school.id}/reports", headers=jar)
    assert reports.status_code == 200 and reports.json() == {
        "organization": str(school.id),
        "as": "manager",
    }
    for refused in (club.id, uuid.uuid4(), "not-a-uuid"):  # a teacher there; not a member
        response = await service.get(f"/organizations/{refused}/reports", headers=jar)
        assert response.status_code == 403, (refused, response.text)
    assert (await service.get(f"/organizations/{school.id}/reports")).status_code == 401

    assert (await service.get("/admin/ping", headers=jar)).status_code == 403
    await set_profile_role(ada.user_id, Role.PLATFORM_ADMIN)  # seen by the very next request
    admin = await service.get("/admin/ping", headers=jar)
    assert admin.status_code == 200 and admin.json() == {"admin": "ada@example.com"}


async def test_after_better_auth_signs_out_python_refuses_the_cookie_and_the_bearer(
    ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    await ba.sign_up("grace@example.com", "Grace")
    grace = await ba.sign_in("grace@example.com")
    headers = [(b"cookie", grace.cookie.encode())]
    assert await both_see(ba, service, headers) == (grace.user_id, grace.user_id)
    await ba.sign_out(grace)
    assert await both_see(ba, service, headers) == (None, None)
    assert await both_see(ba, service, bearer(grace.bearer or "")) == (None, None)


async def test_after_better_auth_deletes_the_user_python_refuses_all_their_sessions(
    ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    first = await ba.sign_up("linus@example.com", "Linus")
    second = await ba.sign_in("linus@example.com")
    for session in (first, second):
        assert await python_sees(service, cookie(session.cookie_value)) == first.user_id
    await ba.delete_user(second)
    for session in (first, second):
        assert await both_see(ba, service, cookie(session.cookie_value)) == (None, None)


async def test_an_expired_session_is_refused_by_python_and_by_better_auth(
    ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    barbara = await ba.sign_up("barbara@example.com", "Barbara")
    headers = cookie(barbara.cookie_value)
    assert await python_sees(service, headers) == barbara.user_id
    await Session.update({Session.expiresAt: datetime.now(UTC) - timedelta(minutes=1)}).where(
        Session.token == barbara.token
    )
    # Python first: Better-auth deletes an expired session it is shown.
    assert await python_sees(service, headers) is None
    assert await ba.get_session(headers) is None


async def test_sessions_revoked_from_python_are_refused_by_better_auth(
    ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    first = await ba.sign_up("margaret@example.com", "Margaret")
    second = await ba.sign_in("margaret@example.com")
    other = await ba.sign_up("katherine@example.com", "Katherine")

    ended = await service.post("/sign-out-everywhere", headers={"cookie": first.cookie})
    assert ended.status_code == 200 and ended.json() == {"ended": 2}
    for session in (first, second):
        assert await both_see(ba, service, cookie(session.cookie_value)) == (None, None)
    assert await both_see(ba, service, cookie(other.cookie_value)) == (other.user_id,) * 2

    third = await ba.sign_in("margaret@example.com")
    assert await revoke_session(third.token) is True
    assert await both_see(ba, service, cookie(third.cookie_value)) == (None, None)
    assert await revoke_session(third.token) is False
    assert await both_see(ba, service, cookie(other.cookie_value)) == (other.user_id,) * 2


async def test_malformed_credentials_are_refused_by_both_and_never_answered_with_a_500(
    ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    owner = await ba.sign_up("mallory@example.com", "Mallory")
    token, sig = await session_with_plus_and_slash(owner.user_id)
    signed = f"{token}.{sig}"
    encoded = quote(signed, safe="")
    flipped_token = ("b" if token[0] == "a" else "a") + token[1:]
    flipped_sig = ("B" if sig[0] == "A" else "A") + sig[1:]
    other_sig = signature(token, OTHER_SECRET)
    hex_sig = hmac.digest(SECRET.encode(), token.encode(), hashlib.sha256).hex()
    url_safe = sig.replace("+", "-").replace("/", "_")
    valid_cookie = (b"cookie", f"{COOKIE}={encoded}".encode())
    cases: dict[str, RawHeaders] = {
        "empty value": cookie(""),
        "token without signature": cookie(token),
        "empty signature": cookie(f"{token}."),
        "empty token": cookie(quote(f".{sig}", safe="")),
        "signature missing a digit": cookie(quote(f"{token}.{sig[:41]}{sig[42:]}", safe="")),
        "padding replaced": cookie(quote(f"{token}.{sig[:-2]}=", safe="")),
        "padding doubled": cookie(quote(f"{signed}=", safe="")),
        "unpadded signature": cookie(quote(f"{token}.{sig[:-1]}", safe="")),
        "URL-safe signature": cookie(f"{token}.{url_safe}"),
        "flipped token byte": cookie(quote(f"{flipped_token}.{sig}")),
        "flipped signature byte": cookie(quote(f"{token}.{flipped_sig}", safe="")),
        "other secret": cookie(quote(f"{token}.{other_sig}", safe="")),
        "hex signature": cookie(f"{token}.{hex_sig}"),
        "signature all A": cookie(f"{token}.{'A' * 43}="),
        "token cut": cookie(quote(f"{token[:-1]}.{sig}", safe="")),
        "token extended": cookie(quote(f"{token}x.{sig}", safe="")),
        "double URL-encoded": cookie(quote(encoded, safe="")),
        "trailing lone percent": cookie(f"{encoded}%"),
        "bad escape": cookie(f"{token}%ZZ.{quote(sig, safe='')}"),
        "escape of invalid UTF-8": cookie(f"{token}%C3%28.{quote(sig, safe='')}"),
        "NUL in token": cookie(f"{token}%00.{quote(sig, safe='')}"),
        "unicode token": cookie(quote(f"tök{token}.{sig}", safe="")),
        "raw Latin-1 byte": [(b"cookie", f"{COOKIE}=\xe9{encoded}".encode("latin-1"))],
        "raw UTF-8 emoji": [(b"cookie", f"{COOKIE}={token}🔑.{sig}".encode())],
        "space inside signature": cookie(f"{token}.{sig[:10]} {sig[11:]}"),
        "extra dot segment": cookie(quote(f"{signed}.x", safe="")),
        "signature twice": cookie(quote(f"{signed}.{sig}", safe="")),
        "4,000-character token, signed": cookie(quote(f"{'a' * 4000}.{signature('a' * 4000)}")),
        "opening quote only": cookie(f'"{encoded}'),
        "semicolon inside": [(b"cookie", f"{COOKIE}={token};.{quote(sig, safe='')}".encode())],
        "name in other case": cookie(encoded, name="Better-Auth.session_token"),
        "__Host- prefix": cookie(encoded, name=f"__Host-{COOKIE}"),
        "no prefix": cookie(encoded, name="session_token"),
        "session_data cookie": cookie(encoded, name="better-auth.session_data"),
        "empty name": [(b"cookie", f"={encoded}".encode())],
        "bad cookie first": [(b"cookie", f"{COOKIE}=x.{sig}; {COOKIE}={encoded}".encode())],
        "Bearer without token": [(b"authorization", b"Bearer")],
        "Basic credentials": [(b"authorization", b"Basic " + base64.b64encode(b"a:b"))],
        "Bearer with a tab": [(b"authorization", f"Bearer\t{signed}".encode())],
        "BearerX": [(b"authorization", f"BearerX {signed}".encode())],
        "Token scheme": [(b"authorization", f"Token {signed}".encode())],
        "bearer other secret": bearer(f"{token}.{other_sig}"),
        "bearer flipped": bearer(f"{token}.{flipped_sig}"),
        "bearer cut": bearer(signed[:-5]),
        "bearer extra segment": bearer(f"{signed}.x"),
        "bearer bad escape": bearer(f"%ZZ.{sig}"),
        "bearer garbage": bearer("not-a-token"),
        # These pass the bearer plugin's looser check, so they replace the
        # (valid) cookie, and then fail the cookie's check: nobody.
        "URL-safe bearer over a valid cookie": [*bearer(f"{token}.{url_safe}"), valid_cookie],
        "unpadded bearer over a valid cookie": [*bearer(signed[:-1]), valid_cookie],
    }
    assert len(cases) >= 25
    seen = {name: await both_see(ba, service, headers) for name, headers in cases.items()}
    assert {name: verdicts for name, verdicts in seen.items() if verdicts != (None, None)} == {}
    # And the credential they were all made from is good for both.
    assert await both_see(ba, service, [valid_cookie]) == (owner.user_id, owner.user_id)


async def test_near_misses_that_better_auth_accepts_are_accepted_too(
    ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    owner = await ba.sign_up("ida@example.com", "Ida")
    token, sig = await session_with_plus_and_slash(owner.user_id)
    signed = f"{token}.{sig}"
    encoded = quote(signed, safe="")
    # The last base64 digit carries 2 bits of the signature and 4 spare ones,
    # which atob ignores; so does orgschema.
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(sig[42])
    spare = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last ^ 0b0001]
    cases: dict[str, RawHeaders] = {
        "URL-encoded, as Set-Cookie sends it": cookie(encoded),
        "not encoded at all": cookie(signed),
        "partly encoded": cookie(signed.replace("=", "%3D")),
        "in quotes": cookie(f'"{encoded}"'),
        "spaces around": [(b"cookie", f"{COOKIE}=  {encoded}  ; a=1".encode())],
        "among other cookies": [(b"cookie", f"a=1; {COOKIE}={encoded}; b=2".encode())],
        "good cookie first": [(b"cookie", f"{COOKIE}={encoded}; {COOKIE}=x.{sig}".encode())],
        "in a second Cookie header": [
            (b"cookie", b"a=1"),
            (b"cookie", f"{COOKIE}={encoded}".encode()),
        ],
        "spare bits of the last digit": cookie(quote(f"{token}.{sig[:42]}{spare}=", safe="")),
        "bearer": bearer(signed),
        "bearer URL-encoded": bearer(encoded),
        "lower-case bearer": [(b"authorization", f"bearer {signed}".encode())],
        "bearer with two spaces": [(b"authorization", f"Bearer  {signed}".encode())],
        "bad bearer falls back to the cookie": [*bearer(f"{token}.{'A' * 43}!"), *cookie(encoded)],
    }
    seen = {name: await both_see(ba, service, headers) for name, headers in cases.items()}
    expected = (owner.user_id, owner.user_id)
    assert {name: verdicts for name, verdicts in seen.items() if verdicts != expected} == {}


async def test_better_auth_secrets_rotation_signs_and_verifies_with_the_current_secret_only(
    node: str, database_url: str
) -> None:
    rotated = f"2:{SECRET}, 1:{OTHER_SECRET}"
    env = {"BETTER_AUTH_SECRETS": rotated, "BETTER_AUTH_SECRET": THIRD_SECRET}
    async with (
        better_auth(node, database_url, secret=OTHER_SECRET) as before,
        better_auth(node, database_url, secret=THIRD_SECRET, secrets=rotated) as after,
    ):
        old = await before.sign_up("rosalind@example.com", "Rosalind")
        new = await after.sign_in("rosalind@example.com")
        assert new.cookie_value == quote(f"{new.token}.{signature(new.token, SECRET)}", safe="")

        rotation = Settings.from_env(env)
        only_old = Settings.from_env({"BETTER_AUTH_SECRET": OTHER_SECRET})
        for session, rotated_sees, old_sees in ((new, new.user_id, None), (old, None, old.user_id)):
            headers = cookie(session.cookie_value)
            assert await after.get_session(headers) == rotated_sees
            assert await who(headers, rotation) == rotated_sees
            assert await before.get_session(headers) == old_sees
            assert await who(headers, only_old) == old_sees


async def who(headers: RawHeaders, settings: Settings) -> str | None:
    """The user ``authenticate`` sees for raw headers, with ``settings``."""
    mapping = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
    identity = await authenticate(mapping, settings=settings)
    return None if identity is None else identity.user_id


async def test_a_custom_cookie_prefix_is_read_when_configured_and_only_then(
    node: str, database_url: str, ba: BetterAuth
) -> None:
    async with better_auth(node, database_url, "--cookie-prefix", "acme") as acme:
        hedy = await acme.sign_up("hedy@example.com", "Hedy")
        assert hedy.cookie_name == "acme.session_token"
        headers = [(b"cookie", hedy.cookie.encode())]
        prefixed = Settings(better_auth_secret=SECRET, auth_cookie_prefix="acme")
        assert (await acme.get_session(headers), await who(headers, prefixed)) == (
            hedy.user_id,
        ) * 2
        default = Settings(better_auth_secret=SECRET)
        assert (await ba.get_session(headers), await who(headers, default)) == (None, None)


async def test_the_secure_prefixed_cookie_of_an_https_better_auth_is_read(
    node: str, database_url: str, ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    async with better_auth(node, database_url, base_url="https://app.example.test") as https:
        joan = await https.sign_up("joan@example.com", "Joan")
        assert joan.cookie_name == f"__Secure-{COOKIE}"
        secure = [(b"cookie", joan.cookie.encode())]
        assert await https.get_session(secure) == joan.user_id
        assert await python_sees(service, secure) == joan.user_id
        # Better-auth behind http reads only the plain name; orgschema reads both
        # (docs/auth.md), and prefers __Secure- when a request has both.
        assert await ba.get_session(secure) is None
        plain = cookie(joan.cookie_value)
        assert await python_sees(service, plain) == joan.user_id
        bad_secure = f"__Secure-{COOKIE}={joan.token}.{'A' * 43}="
        both = [(b"cookie", f"{bad_secure}; {COOKIE}={joan.cookie_value}".encode())]
        assert (await https.get_session(both), await python_sees(service, both)) == (None, None)


async def test_an_unsigned_bearer_token_counts_only_where_it_is_allowed(
    node: str, database_url: str, ba: BetterAuth, service: httpx.AsyncClient
) -> None:
    alan = await ba.sign_up("alan@example.com", "Alan")
    unsigned = bearer(alan.token)
    # Better-auth's bearer plugin accepts a bare token unless requireSignature is set.
    assert await ba.get_session(unsigned) == alan.user_id
    assert await python_sees(service, unsigned) is None
    allowed = Settings(better_auth_secret=SECRET, auth_accept_unsigned_bearer=True)
    assert await who(unsigned, allowed) == alan.user_id
    async with better_auth(node, database_url, "--bearer-signed") as strict:
        assert await strict.get_session(unsigned) is None
        assert await strict.get_session(bearer(alan.bearer or "")) == alan.user_id
    assert await who(bearer(alan.bearer or ""), Settings(better_auth_secret=SECRET)) == alan.user_id
