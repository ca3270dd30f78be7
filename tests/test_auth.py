"""orgschema.auth on its own: configuration, parsing, the one query, Starlette and FastAPI.

Sessions here are written by Python in Better-auth's shape and signed with
Better-auth's rule; tests/test_auth_better_auth.py checks the same code against
a real Better-auth server.
"""

# No `from __future__ import annotations`: FastAPI reads the signatures of the
# routes made inside fastapi_app() at runtime, and they name local dependencies.

import os
import re
import subprocess
import sys
import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
import pytest
from piccolo.engine.finder import engine_finder
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import orgschema.auth.identity
from orgschema import (
    ConfigurationError,
    InvalidInputError,
    MembershipRole,
    Role,
    Session,
    Settings,
    User,
    add_member,
    create_organization,
    generate_id,
    set_profile_role,
)
from orgschema.auth import (
    BetterAuthBackend,
    Identity,
    authenticate,
    revoke_session,
    revoke_sessions,
    scopes,
)
from orgschema.auth.credentials import CredentialRules, parse_cookies
from orgschema.auth.identity import IDENTITY_QUERY
from tests.auth_kit import OTHER_SECRET, SECRET, python_service

SETTINGS = Settings(better_auth_secret=SECRET)
RULES = CredentialRules.from_settings(SETTINGS)
COOKIE = "better-auth.session_token"


async def new_user(email: str, name: str = "Test User") -> str:
    user = User(id=generate_id(), name=name, email=email, emailVerified=True)
    await user.save()
    return str(user.id)


async def new_session(user_id: str, expires_in: timedelta = timedelta(days=7)) -> str:
    """A session row as Better-auth writes one; returns its token."""
    now = datetime.now(UTC)
    token = generate_id()
    await Session(
        id=generate_id(), token=token, userId=user_id, expiresAt=now + expires_in, updatedAt=now
    ).save()
    return token


def cookie_for(token: str, name: str = COOKIE) -> dict[str, str]:
    return {"cookie": f"{name}={quote(RULES.sign(token), safe='')}"}


# ---------------------------------------------------------------- settings


def test_secrets_come_from_better_auths_variables_with_its_precedence() -> None:
    assert Settings.from_env({"AUTH_SECRET": "a"}).better_auth_secret == "a"
    assert (
        Settings.from_env({"AUTH_SECRET": "a", "BETTER_AUTH_SECRET": "b"}).better_auth_secret == "b"
    )
    both = Settings.from_env(
        {"BETTER_AUTH_SECRET": OTHER_SECRET, "BETTER_AUTH_SECRETS": f"3:{SECRET}"}
    )
    assert both.better_auth_secrets == ((3, SECRET),)
    token = "t0ken"
    assert CredentialRules.from_settings(both).sign(token) == RULES.sign(token)


def test_repr_never_shows_a_secret() -> None:
    settings = Settings.from_env(
        {
            "BETTER_AUTH_SECRET": "first-secret-value",
            "BETTER_AUTH_SECRETS": "2:second-secret,1:third-secret",
        }
    )
    shown = repr(settings) + str(settings)
    for secret in ("first-secret-value", "second-secret", "third-secret"):
        assert secret not in shown
    assert "auth_cookie_prefix='better-auth'" in shown


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("s3cret", "entry 1 is not <version>:<secret>"),
        ("2:new-secret,", "entry 2 is not <version>:<secret>"),
        ("v2:s3cret", "not a non-negative whole number"),
        ("-1:s3cret", "not a non-negative whole number"),
        ("1:", "the secret of version 1 in BETTER_AUTH_SECRETS is empty"),
        ("1:s3cret,1:other", "names version 1 twice"),
    ],
)
def test_a_malformed_better_auth_secrets_is_refused_without_showing_it(
    value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as raised:
        Settings.from_env({"BETTER_AUTH_SECRETS": value})
    assert raised.value.exit_code == 3
    assert "s3cret" not in str(raised.value) and "other" not in str(raised.value)


@pytest.mark.parametrize(
    "settings",
    [
        {"auth_cookie_prefix": ""},
        {"auth_cookie_prefix": "my app"},
        {"auth_cookie_prefix": "a;b"},
        {"better_auth_secret": ""},
        {"better_auth_secrets": ((1, ""),)},
        {"better_auth_secrets": ((-1, "x"),)},
        {"better_auth_secret": "\udcff"},
    ],
)
def test_bad_auth_settings_are_configuration_errors(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**settings)


def test_the_unsigned_bearer_switch_is_off_unless_clearly_on() -> None:
    read = Settings.from_env
    assert read({}).auth_accept_unsigned_bearer is False
    assert read({"ORGSCHEMA_AUTH_UNSIGNED_BEARER": "1"}).auth_accept_unsigned_bearer is True
    assert read({"ORGSCHEMA_AUTH_UNSIGNED_BEARER": "True"}).auth_accept_unsigned_bearer is True
    assert read({"ORGSCHEMA_AUTH_UNSIGNED_BEARER": "off"}).auth_accept_unsigned_bearer is False
    with pytest.raises(ConfigurationError, match="ORGSCHEMA_AUTH_UNSIGNED_BEARER must be 1 or 0"):
        read({"ORGSCHEMA_AUTH_UNSIGNED_BEARER": "maybe"})
    assert read({"ORGSCHEMA_AUTH_COOKIE_PREFIX": "acme"}).auth_cookie_prefix == "acme"


async def test_without_a_secret_every_entry_point_refuses_at_once() -> None:
    from orgschema.auth.dependencies import AuthDependencies

    message = "no Better-auth secret to verify session cookies with: set BETTER_AUTH_SECRET"
    with pytest.raises(ConfigurationError, match=message):
        BetterAuthBackend(Settings())
    with pytest.raises(ConfigurationError, match=message):
        AuthDependencies(Settings())
    with pytest.raises(ConfigurationError, match=message):
        await authenticate({}, settings=Settings())


# ---------------------------------------------------------------- parsing


def test_cookies_are_parsed_as_better_call_parses_them() -> None:
    assert parse_cookies("a=1; b=2; a=3") == {"a": "1", "b": "2"}  # the first one wins
    assert parse_cookies(' a = " x y " ;b="q') == {"a": " x y ", "b": ""}
    assert parse_cookies("a=%E2%82%AC; b=%zz; c=%C3; d=x%41y") == {
        "a": "€",
        "b": "%zz",
        "c": "%C3",
        "d": "xAy",
    }
    assert parse_cookies("a=%ED%A0%80; b=%C0%80") == {"a": "%ED%A0%80", "b": "%C0%80"}
    assert parse_cookies("junk; a=1; ;=2") == {"a": "1", "": "2"}
    assert parse_cookies("a=1;b") == {"a": "1"}
    assert parse_cookies("\xa0a=1\u3000") == {"a": "1"}  # JavaScript's trim, not Python's
    assert parse_cookies("\x1fa=1") == {"\x1fa": "1"}


def test_a_signature_is_standard_padded_base64_of_hmac_sha256() -> None:
    signed = RULES.sign("abc")
    token, signature = signed.split(".")
    assert token == "abc" and len(signature) == 44 and signature.endswith("=")
    assert RULES.session_token([f"{COOKIE}={quote(signed, safe='')}"], None) == "abc"
    assert RULES.session_token([f"{COOKIE}={signed}"], None) == "abc"
    assert RULES.session_token([], f"Bearer {signed}") == "abc"


def test_the_secure_cookie_wins_over_the_plain_one() -> None:
    good, bad = RULES.sign("good"), "bad." + "A" * 43 + "="
    assert RULES.session_token([f"{COOKIE}={good}; __Secure-{COOKIE}={bad}"], None) is None
    assert RULES.session_token([f"{COOKIE}={bad}; __Secure-{COOKIE}={good}"], None) == "good"
    assert RULES.session_token([f"__Secure-{COOKIE}=; {COOKIE}={good}"], None) == "good"


def test_a_token_postgresql_text_cannot_hold_is_nobody() -> None:
    rules = CredentialRules.from_settings(
        Settings(better_auth_secret=SECRET, auth_accept_unsigned_bearer=True)
    )
    with_nul = quote(rules.sign("a\x00b"))
    assert rules.session_token([f"{COOKIE}={with_nul}"], None) is None
    assert rules.session_token([], "Bearer a\x00b") is None
    assert rules.session_token([], "Bearer \udcff") is None
    assert rules.session_token([], "Bearer plain") == "plain"


# ---------------------------------------------------------------- roles


def test_the_order_of_roles_is_their_declaration_order() -> None:
    assert [role.value for role in MembershipRole] == [
        "organization_admin",
        "manager",
        "coach",
        "teacher",
    ]
    assert MembershipRole.ORGANIZATION_ADMIN.at_least(MembershipRole.MANAGER)
    assert MembershipRole.MANAGER.at_least("manager")
    assert not MembershipRole.COACH.at_least(MembershipRole.MANAGER)
    assert MembershipRole.MANAGER.and_below() == (
        MembershipRole.MANAGER,
        MembershipRole.COACH,
        MembershipRole.TEACHER,
    )
    with pytest.raises(InvalidInputError, match="'platform_admin' is not a membership role"):
        MembershipRole.TEACHER.at_least("platform_admin")


# ---------------------------------------------------------------- the identity


@pytest.fixture
async def member() -> tuple[str, uuid.UUID, uuid.UUID]:
    """A user managing one organization and teaching in another, with a session."""
    user_id = await new_user("ada@example.com", "Ada")
    zeta = await create_organization("Zeta Academy")
    alpha = await create_organization("Alpha School")
    await add_member(zeta.id, user_id, MembershipRole.MANAGER)
    await add_member(alpha.id, user_id, MembershipRole.TEACHER)
    return await new_session(user_id), zeta.id, alpha.id


@pytest.mark.usefixtures("clean_tables")
async def test_authenticate_loads_the_user_role_and_memberships(
    member: tuple[str, uuid.UUID, uuid.UUID],
) -> None:
    token, zeta, alpha = member
    identity = await authenticate(cookie_for(token), settings=SETTINGS)
    assert identity is not None
    assert (identity.email, identity.name, identity.email_verified) == (
        "ada@example.com",
        "Ada",
        True,
    )
    assert identity.role is None and not identity.is_platform_admin  # no profile yet
    assert [m.organization_name for m in identity.memberships] == ["Alpha School", "Zeta Academy"]
    assert identity.role_in(zeta) is MembershipRole.MANAGER
    assert identity.role_in(str(alpha)) is MembershipRole.TEACHER
    assert identity.role_in(uuid.uuid4()) is None and identity.role_in("zeta-academy") is None
    assert identity.has_role(zeta, at_least=MembershipRole.MANAGER)
    assert identity.has_role(zeta, at_least="coach") and identity.has_role(alpha)
    assert not identity.has_role(alpha, at_least=MembershipRole.COACH)
    assert not identity.has_role("not-a-uuid")
    # Starlette's BaseUser, and safe to log or return as JSON: no token inside.
    assert identity.is_authenticated and identity.identity == identity.user_id
    assert identity.display_name == "Ada"
    assert token not in repr(identity) and token not in str(asdict(identity))

    await set_profile_role(identity.user_id, Role.PLATFORM_ADMIN)
    again = await authenticate({"Cookie": cookie_for(token)["cookie"]}, settings=SETTINGS)
    assert again is not None and again.is_platform_admin and again.role is Role.PLATFORM_ADMIN


@pytest.mark.usefixtures("clean_tables")
async def test_a_user_without_memberships_has_none() -> None:
    token = await new_session(await new_user("solo@example.com"))
    identity = await authenticate(cookie_for(token), settings=SETTINGS)
    assert (
        identity is not None
        and identity.memberships == ()
        and scopes(identity)
        == [
            "authenticated",
            "email_verified",
        ]
    )


@pytest.mark.usefixtures("clean_tables")
async def test_expired_unknown_and_revoked_sessions_are_nobody() -> None:
    user_id = await new_user("grace@example.com")
    expired = await new_session(user_id, expires_in=timedelta(seconds=-1))
    revoked = await new_session(user_id)
    kept = await new_session(user_id)
    assert await authenticate(cookie_for(expired), settings=SETTINGS) is None
    assert await authenticate(cookie_for(generate_id()), settings=SETTINGS) is None
    assert await revoke_session(revoked) is True
    assert await authenticate(cookie_for(revoked), settings=SETTINGS) is None
    assert await authenticate(cookie_for(kept), settings=SETTINGS) is not None
    assert await revoke_sessions(user_id) == 2  # the kept one and the expired one
    assert await authenticate(cookie_for(kept), settings=SETTINGS) is None
    assert await revoke_sessions(user_id) == 0
    assert await revoke_session(kept) is False


@pytest.mark.usefixtures("clean_tables")
async def test_a_session_whose_user_is_gone_is_nobody() -> None:
    # The foreign key cascades, so only a bypass of it can leave such a row;
    # the query's join refuses it all the same, as Better-auth's findSession does.
    engine = engine_finder()
    assert engine is not None
    token = generate_id()
    async with engine.transaction() as transaction:
        await transaction.connection.execute("SET LOCAL session_replication_role = replica")
        await transaction.connection.execute(
            'INSERT INTO session (id, token, "userId", "expiresAt", "updatedAt") '
            "VALUES ($1, $2, 'no-such-user', now() + interval '1 day', now())",
            generate_id(),
            token,
        )
    assert await Session.exists().where(Session.token == token)
    assert await authenticate(cookie_for(token), settings=SETTINGS) is None


@pytest.mark.usefixtures("clean_tables")
async def test_authenticate_runs_one_statement_and_writes_nothing(
    member: tuple[str, uuid.UUID, uuid.UUID],
) -> None:
    token, _zeta, _alpha = member
    engine = engine_finder()
    assert engine is not None
    statements: list[str] = []
    async with engine.transaction() as transaction:
        connection = transaction.connection
        # A read-only transaction refuses any write, so this also proves none is made.
        await connection.execute("SET TRANSACTION READ ONLY")

        def log(record: Any) -> None:
            statements.append(record.query)

        connection.add_query_logger(log)
        identity = await authenticate(cookie_for(token), settings=SETTINGS)
        connection.remove_query_logger(log)
    assert identity is not None and len(identity.memberships) == 2
    assert statements == [IDENTITY_QUERY.replace("{}", "$1")]


@pytest.mark.parametrize("bad", ["", None, 7])
async def test_revocation_refuses_what_cannot_be_a_token_or_user(bad: Any) -> None:
    with pytest.raises(InvalidInputError):
        await revoke_session(bad)
    with pytest.raises(InvalidInputError):
        await revoke_sessions(bad)


def test_import_stays_light_and_fastapi_loads_only_for_its_dependencies() -> None:
    code = (
        "import sys, orgschema, orgschema.auth; "
        "light = 'fastapi' not in sys.modules; "
        "from orgschema import authenticate, Identity, BetterAuthBackend, revoke_sessions; "
        "light = light and 'fastapi' not in sys.modules; "
        "from orgschema import AuthDependencies; "
        "print(light, 'fastapi' in sys.modules, AuthDependencies.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["True", "True", "orgschema.auth.dependencies"]


# ---------------------------------------------------------------- Starlette


@requires("authenticated")
async def whoami(request: Request) -> JSONResponse:
    assert isinstance(request.user, Identity)
    return JSONResponse({"email": request.user.email, "scopes": request.auth.scopes})


@requires("platform_admin")
async def admin_only(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def starlette_app() -> Starlette:
    return Starlette(
        routes=[Route("/me", whoami), Route("/admin", admin_only)],
        middleware=[Middleware(AuthenticationMiddleware, backend=BetterAuthBackend(SETTINGS))],
    )


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.usefixtures("clean_tables")
async def test_starlette_backend_sets_the_user_and_scopes_that_follow_the_roles(
    member: tuple[str, uuid.UUID, uuid.UUID],
) -> None:
    token, zeta, alpha = member
    async with client(starlette_app()) as http:
        me = await http.get("/me", headers=cookie_for(token))
        assert me.status_code == 200
        assert me.json() == {
            "email": "ada@example.com",
            "scopes": [
                "authenticated",
                "email_verified",
                f"organization:{alpha}:teacher",
                f"organization:{zeta}:manager",
                f"organization:{zeta}:coach",
                f"organization:{zeta}:teacher",
            ],
        }
        assert (await http.get("/admin", headers=cookie_for(token))).status_code == 403
        assert (await http.get("/me")).status_code == 403  # @requires' default status
        assert (await http.get("/me", headers={"cookie": f"{COOKIE}=junk"})).status_code == 403


# ---------------------------------------------------------------- FastAPI


@pytest.fixture
def counted_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens the identity query is run for (the real query still runs)."""
    calls: list[str] = []
    real = orgschema.auth.identity._identity_rows

    async def counting(token: str) -> Any:
        calls.append(token)
        return await real(token)

    monkeypatch.setattr(orgschema.auth.identity, "_identity_rows", counting)
    return calls


def fastapi_app(*, with_backend: bool = False) -> Any:
    from fastapi import Depends, FastAPI

    from orgschema.auth.dependencies import AuthDependencies

    auth = AuthDependencies(SETTINGS)
    middleware = (
        [Middleware(AuthenticationMiddleware, backend=BetterAuthBackend(SETTINGS))]
        if with_backend
        else []
    )
    app = FastAPI(middleware=middleware)
    manager = auth.require_membership(organization_from="org", at_least=MembershipRole.MANAGER)

    @app.get("/orgs/{org}")
    async def organization(
        identity: Annotated[Identity, Depends(manager)],
        again: Annotated[Identity, Depends(auth.require_identity)],
        maybe: Annotated[Identity | None, Depends(auth.current_identity)],
    ) -> dict[str, str]:
        assert identity is again is maybe
        return {"email": identity.email}

    @app.get("/admin")
    async def admin(identity: Annotated[Identity, Depends(auth.require_platform_admin)]) -> str:
        return identity.email

    @app.get("/misconfigured")
    async def misconfigured(identity: Annotated[Identity, Depends(manager)]) -> str:
        return identity.email

    return app


@pytest.mark.usefixtures("clean_tables")
@pytest.mark.parametrize("with_backend", [False, True], ids=["alone", "after the backend"])
async def test_fastapi_dependencies_answer_401_403_and_authenticate_once_a_request(
    member: tuple[str, uuid.UUID, uuid.UUID], counted_queries: list[str], with_backend: bool
) -> None:
    token, zeta, alpha = member
    async with client(fastapi_app(with_backend=with_backend)) as http:
        response = await http.get(f"/orgs/{zeta}", headers=cookie_for(token))
        assert response.status_code == 200, response.text
        assert counted_queries == [token]
        for refused in (alpha, uuid.uuid4(), "zeta-academy"):
            assert (
                await http.get(f"/orgs/{refused}", headers=cookie_for(token))
            ).status_code == 403
        anonymous = await http.get(f"/orgs/{zeta}")
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
        assert anonymous.json() == {
            "detail": "not signed in: send Better-auth's session cookie or its bearer token"
        }
        assert (await http.get("/admin", headers=cookie_for(token))).status_code == 403
        assert (await http.get("/admin")).status_code == 401


@pytest.mark.usefixtures("clean_tables")
async def test_require_membership_on_a_route_without_the_parameter_says_so(
    member: tuple[str, uuid.UUID, uuid.UUID],
) -> None:
    token, _zeta, _alpha = member
    async with client(fastapi_app()) as http:
        with pytest.raises(ConfigurationError, match="whose route has no path parameter 'org'"):
            await http.get("/misconfigured", headers=cookie_for(token))


def test_require_membership_refuses_an_unknown_role_when_made() -> None:
    from orgschema.auth.dependencies import AuthDependencies

    with pytest.raises(InvalidInputError, match="platform_admin is a platform-wide role"):
        AuthDependencies(SETTINGS).require_membership(at_least="platform_admin")


UNREACHABLE_APP = """
from typing import Annotated
from fastapi import Depends, FastAPI
from orgschema.auth import AuthDependencies, Identity

auth = AuthDependencies()
app = FastAPI()

@app.get("/me")
async def me(identity: Annotated[Identity, Depends(auth.require_identity)]) -> str:
    return identity.email
"""


async def test_an_unreachable_database_answers_503_not_401(tmp_path: Path) -> None:
    (tmp_path / "unreachable.py").write_text(UNREACHABLE_APP)
    (tmp_path / "piccolo_conf.py").write_text(
        "from orgschema.database import QuietPostgresEngine\n"
        "DB = QuietPostgresEngine(config={'dsn': 'postgresql://nobody@127.0.0.1:9/none'})\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PICCOLO_CONF"}
    env["BETTER_AUTH_SECRET"] = SECRET
    async with python_service(tmp_path, "unreachable:app", env) as http:
        response = await http.get("/me", headers=cookie_for("some-token"))
        assert response.status_code == 503, response.text
        assert response.json() == {"detail": "the database is unavailable; try again shortly"}
        assert (await http.get("/me")).status_code == 401  # no credential: no query


@pytest.mark.usefixtures("clean_tables")
async def test_the_starlette_example_of_the_docs_runs(
    member: tuple[str, uuid.UUID, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "auth.md").read_text()
    (example,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", doc, flags=re.DOTALL)
        if "BetterAuthBackend()" in block
    ]
    monkeypatch.setenv("BETTER_AUTH_SECRET", SECRET)
    namespace: dict[str, Any] = {}
    exec(example, namespace)  # noqa: S102 -- our own documentation
    token, _zeta, _alpha = member
    async with client(namespace["app"]) as http:
        me = await http.get("/me", headers=cookie_for(token))
        assert me.status_code == 200 and me.json() == {"email": "ada@example.com"}
        assert (await http.get("/admin", headers=cookie_for(token))).status_code == 403
        assert (await http.get("/me")).status_code == 403
