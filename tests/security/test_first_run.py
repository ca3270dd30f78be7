"""The first-run endpoint fails closed, logs who became admin, and asks one database.

Before: with ``APP_ENV=production`` and ``SETUP_TOKEN`` unset (or empty),
anyone who reached ``POST /api/setup/first-run`` became platform admin, and
nothing was logged. And with settings passed in code, ``POST`` created the
admin in the database of those settings while ``GET`` reread the environment
and kept saying that setup was required (issue 11, section 5). And
``orgschema bootstrap`` asked for a password before saying an admin exists.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from click.testing import CliRunner

from orgschema import Settings, bootstrap_first_admin, first_run_app
from orgschema.cli import main
from tests.rows import row_counts

pytestmark = pytest.mark.usefixtures("clean_tables")

PATH = "/api/setup/first-run"
VALID = {"email": "Founder@Example.com", "password": "correct horse battery", "name": "Founder"}


def client_for(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("203.0.113.50", 4000)),  # type: ignore[arg-type]
        base_url="http://setup.test",
    )


@pytest.mark.parametrize(
    "environ",
    [
        {"APP_ENV": "production"},
        {"APP_ENV": "production", "SETUP_TOKEN": ""},
        {"APP_ENV": "Staging"},
        {"NODE_ENV": "production"},
        {},  # unset: counts as deployed
        {"APP_ENV": "prod"},  # unknown: counts as deployed
    ],
    ids=["production", "empty-token", "staging", "node-env", "unset", "unknown"],
)
async def test_without_a_setup_token_a_deployed_endpoint_refuses_everything(
    database_url: str, caplog: pytest.LogCaptureFixture, environ: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO, logger="orgschema")
    settings = Settings.from_env({"DATABASE_URL": database_url, **environ})
    app = first_run_app(settings=settings)
    (startup,) = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert "SETUP_TOKEN" in startup.getMessage()
    async with client_for(app) as client:
        posted = await client.post(PATH, json=VALID)
        asked = await client.get(PATH)
    for response in (posted, asked):
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "setup_token_required"
        assert "SETUP_TOKEN" in error["message"]
        assert "ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN" in error["message"]
    assert sum((await row_counts(database_url)).values()) == 0


@pytest.mark.parametrize(
    "make_app",
    [
        lambda url: first_run_app(
            settings=Settings(environment="production", database_url=url),
            allow_without_token=True,
        ),
        lambda url: first_run_app(
            settings=Settings.from_env(
                {
                    "APP_ENV": "production",
                    "DATABASE_URL": url,
                    "ORGSCHEMA_SETUP_ALLOW_WITHOUT_TOKEN": "1",
                }
            )
        ),
    ],
    ids=["argument", "environment"],
)
async def test_the_operator_can_opt_out_by_name(
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    make_app,  # type: ignore[no-untyped-def]
) -> None:
    caplog.set_level(logging.INFO, logger="orgschema")
    app = make_app(database_url)
    assert "open without a setup token in production" in caplog.text
    async with client_for(app) as client:
        assert (await client.post(PATH, json=VALID)).status_code == 201


@pytest.mark.parametrize("environment", ["development", "test"])
async def test_development_and_test_need_no_token(database_url: str, environment: str) -> None:
    app = first_run_app(settings=Settings(environment=environment, database_url=database_url))
    async with client_for(app) as client:
        assert (await client.post(PATH, json=VALID)).status_code == 201


async def test_every_first_run_is_logged_without_the_password(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="orgschema")
    app = first_run_app(
        database_url, setup_token="s3t-up", settings=Settings(environment="production")
    )
    async with client_for(app) as client:
        wrong = await client.post(PATH, json=VALID, headers={"authorization": "Bearer nope"})
        created = await client.post(
            PATH,
            json=VALID,
            headers={"authorization": "Bearer s3t-up", "x-forwarded-for": "198.51.100.77"},
        )
    assert (wrong.status_code, created.status_code) == (401, 201)
    (record,) = [r for r in caplog.records if "first platform admin created" in r.getMessage()]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "founder@example.com" in message and created.json()["id"] in message
    assert "203.0.113.50" in message and "198.51.100.77" in message
    assert "a wrong or missing setup token from 203.0.113.50" in caplog.text
    assert VALID["password"] not in caplog.text and "s3t-up" not in caplog.text


async def test_get_and_post_ask_the_same_database(
    database_url: str, empty_database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings given in code name no database: both must then use Piccolo's
    # engine, even though DATABASE_URL now names another database, one
    # whose (stand-in) profile table has no platform admin.
    other = await empty_database()
    import asyncpg

    conn = await asyncpg.connect(other)
    try:
        await conn.execute("CREATE TABLE profile (role text)")
    finally:
        await conn.close()
    monkeypatch.setenv("DATABASE_URL", other)
    app = first_run_app(settings=Settings(environment="test"))
    async with client_for(app) as client:
        assert (await client.get(PATH)).json() == {"setupRequired": True}
        assert (await client.post(PATH, json=VALID)).status_code == 201
        assert (await client.get(PATH)).json() == {"setupRequired": False}
    assert (await row_counts(database_url))["profile"] == 1


def test_bootstrap_says_an_admin_exists_before_asking_for_a_password(database_url: str) -> None:
    import asyncio

    asyncio.run(
        bootstrap_first_admin(
            email="first@example.com",
            password="a long password",
            name="First",
            database_url=database_url,
            settings=Settings(environment="test"),
        )
    )
    result = CliRunner().invoke(
        main,
        ["bootstrap", "--email", "second@example.com", "--name", "Second"],
        input="",
        env={"DATABASE_URL": database_url, "APP_ENV": "test", "ORGSCHEMA_ADMIN_PASSWORD": None},
    )
    assert result.exit_code == 8, result.output
    assert "a platform admin exists already" in result.output
    assert "Password" not in result.output
