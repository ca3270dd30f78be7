"""The studio in a real browser: Debian's Chromium driven by Playwright.

``orgschema studio`` runs in a subprocess against the session's database;
Chromium (``/usr/bin/chromium``, never Playwright's own download) signs in,
searches, creates and edits, and every page and API response it receives is
checked for secrets. Screenshots are kept in ``tests/artifacts/``.

Without Chromium these tests skip, loudly, unless ``ORGSCHEMA_REQUIRE_BROWSER=1``
(set by ``.ci/run``), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orgschema.bootstrap import bootstrap_first_admin
from orgschema.seeding import DEVELOPMENT_PASSWORD, seed
from orgschema.settings import Settings
from tests.databases import fetch
from tests.security.studio_routes import plant_secrets
from tests.serving import Served, serve

try:
    from playwright.async_api import expect
except ImportError:  # reported by require_browser, which skips or fails the module
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_tables", "clean_studio_logins")]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TIMEOUT_MS = 20_000

ADMIN = "ops@example.com"
ADMIN_PASSWORD = "ops admin password 1"


def _browser_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    if expect is None:
        return "Playwright for Python is missing (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module", autouse=True)
def require_browser() -> None:
    missing = _browser_missing()
    if missing is None:
        return
    if os.environ.get("ORGSCHEMA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here but {missing}")
    pytest.skip(
        f"BROWSER TESTS SKIPPED: {missing}; set ORGSCHEMA_REQUIRE_BROWSER=1 to fail instead"
    )


@pytest.fixture(scope="module")
def studio_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``orgschema studio`` on a free port, on the session's database, for the whole module."""
    env = {"DATABASE_URL": database_url, "PICCOLO_CONF": "", "APP_ENV": ""}
    with serve("studio", "--port", "0", env=env, cwd=tmp_path_factory.mktemp("studio")) as served:
        yield served.wait_for_url()
        assert served.interrupt() == 0, served.stderr
    _assert_clean_log(served)


def _assert_clean_log(served: Served) -> None:
    assert "Traceback" not in "\n".join(served.stderr), "\n".join(served.stderr)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A fresh browser context per test; its last screen is kept as an artifact."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    tab = await context.new_page()
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    await tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    await context.close()


@pytest.fixture
async def people(database_url: str, clean_tables: None) -> str:
    """A bootstrapped platform admin, plus the development fixtures (who are signed in as nobody here)."""
    await bootstrap_first_admin(
        email=ADMIN,
        password=ADMIN_PASSWORD,
        name="Ops Admin",
        settings=Settings(environment="test"),
    )
    await seed("test")
    return database_url


async def sign_in(page: Any, studio_url: str, email: str, password: str) -> int:
    """Fill the login form as a person would; returns the status of the login request."""
    await page.goto(studio_url)
    await page.fill("input[name=username]", email)
    await page.fill("input[name=password]", password)
    async with page.expect_response(lambda r: r.url.endswith("/public/login/")) as answer:
        await page.click("[data-uitest=login_button]")
    return (await answer.value).status


async def test_admin_finds_a_user_then_creates_and_renames_an_organization(
    page: Any, studio_url: str, people: str
) -> None:
    assert await sign_in(page, studio_url, ADMIN, ADMIN_PASSWORD) == 200
    await page.wait_for_selector(f"#user[title='{ADMIN}']")

    # The users table, searched by e-mail.
    await page.click("a[href='#/user/']")
    await page.wait_for_selector("text=teacher@example.com")
    await page.click("[data-uitest=filter_button]")
    await page.fill("input[name=email]", "teach")
    async with page.expect_response(
        lambda r: "/api/tables/user/?" in r.url and "email=teach" in r.url
    ):
        await page.click("[data-uitest=submit_filter_button]")
    rows = page.locator(".table_wrapper tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("teacher@example.com")
    await page.screenshot(path=str(_artifact("studio-users-search.png")))

    # A new organization...
    # The form fills itself with the new row's defaults when `new/` answers;
    # typing before that lands in a field the defaults then overwrite. A
    # loaded server answers late: make it late here, every time.
    async def late(route: Any) -> None:
        await asyncio.sleep(1)
        await route.continue_()

    await page.route("**/api/tables/organization/new/", late)
    async with page.expect_response(lambda r: r.url.endswith("/api/tables/organization/new/")):
        await page.goto(studio_url + "#/organization/add/")
    await page.evaluate("() => new Promise(requestAnimationFrame)")
    await page.locator("textarea[name=name]").first.fill("Lakeside School")
    await page.locator("textarea[name=slug]").first.fill("lakeside-school")
    await expect(page.locator("textarea[name=name]").first).to_have_value("Lakeside School")
    async with page.expect_response(
        lambda r: r.url.endswith("/api/tables/organization/") and r.request.method == "POST"
    ) as created:
        await page.click("[data-uitest=create_button]")
    assert (await created.value).status == 201
    (organization,) = await fetch(
        people, "SELECT id, name FROM organization WHERE slug = 'lakeside-school'"
    )
    assert organization["name"] == "Lakeside School"

    # ... renamed from its edit page.
    await page.goto(studio_url + "#/organization/")
    await page.click("text=Lakeside School")
    await page.wait_for_selector("[data-uitest=save_button]")
    name = page.locator("textarea[name=name]").first
    assert await name.input_value() == "Lakeside School"
    await name.fill("Lakeside Community School")
    async with page.expect_response(
        lambda r: (
            f"/api/tables/organization/{organization['id']}/" in r.url
            and r.request.method == "PATCH"
        )
    ) as saved:
        await page.click("[data-uitest=save_button]")
    assert (await saved.value).status == 200
    (after,) = await fetch(
        people, "SELECT name, updated_at FROM organization WHERE id = $1", organization["id"]
    )
    assert after["name"] == "Lakeside Community School"

    await page.goto(studio_url + "#/organization/")
    await page.wait_for_selector("text=Lakeside Community School")
    await page.screenshot(path=str(_artifact("studio-organizations.png")))

    # Memberships read as people and organizations, not as ids (docs/studio.png).
    await page.goto(studio_url + "#/organization_user/")
    await page.reload()
    rows = page.locator(".table_wrapper tbody tr")
    await expect(rows.first).to_contain_text("@example.com")
    await expect(page.locator(".table_wrapper")).to_contain_text("Northwind Academy")
    await page.screenshot(path=str(_artifact("studio-memberships.png")))


async def test_camel_case_columns_are_edited_and_filtered(
    page: Any, studio_url: str, people: str
) -> None:
    """Better-auth's columns (``emailVerified``) save and filter: why they are not db_column_name."""
    assert await sign_in(page, studio_url, ADMIN, ADMIN_PASSWORD) == 200
    await page.wait_for_selector("#user")
    (teacher,) = await fetch(
        people, 'SELECT id FROM "user" WHERE email = $1', "teacher@example.com"
    )
    await page.goto(studio_url + f"#/user/{teacher['id']}/")
    await page.wait_for_selector("[data-uitest=save_button]")
    await page.select_option("select[name=emailVerified]", "false")
    async with page.expect_response(lambda r: r.request.method == "PATCH") as saved:
        await page.click("[data-uitest=save_button]")
    assert (await saved.value).status == 200
    (row,) = await fetch(people, 'SELECT "emailVerified" FROM "user" WHERE id = $1', teacher["id"])
    assert row["emailVerified"] is False

    await page.goto(studio_url + "#/user/")
    await page.click("[data-uitest=filter_button]")
    await page.select_option("select[name=emailVerified]", "false")
    async with page.expect_response(
        lambda r: "emailVerified=false" in r.url and "/count/" not in r.url
    ):
        await page.click("[data-uitest=submit_filter_button]")
    unverified = [
        row["email"]
        for row in await fetch(
            people, 'SELECT email FROM "user" WHERE NOT "emailVerified" ORDER BY email'
        )
    ]
    assert "teacher@example.com" in unverified and "admin@example.com" not in unverified
    rows = page.locator(".table_wrapper tbody tr")
    await expect(rows).to_have_count(len(unverified))
    shown = [(await row.locator("td").nth(1).inner_text()).strip() for row in await rows.all()]
    assert sorted(shown) == unverified


@pytest.mark.parametrize(
    ("email", "password"),
    [("teacher@example.com", DEVELOPMENT_PASSWORD), (ADMIN, "not the password")],
    ids=["not-a-platform-admin", "wrong-password"],
)
async def test_non_admins_and_wrong_passwords_are_refused(
    page: Any, studio_url: str, people: str, email: str, password: str
) -> None:
    assert await sign_in(page, studio_url, email, password) == 401
    await page.wait_for_selector("text=Problem logging in")
    assert await page.locator("#user").count() == 0
    assert await page.locator("[data-uitest=login_button]").is_visible()
    await page.goto(studio_url + "#/user/")
    await page.wait_for_selector("[data-uitest=login_button]")
    assert await page.locator("text=teacher@example.com").count() == 0


async def test_no_secret_reaches_the_browser(page: Any, studio_url: str, people: str) -> None:
    planted = await plant_secrets(people)
    seen: list[str] = []

    async def keep(response: Any) -> None:
        # Redirects and aborted requests have no body.
        with contextlib.suppress(Exception):
            seen.append(await response.text())

    page.on("response", keep)
    assert await sign_in(page, studio_url, ADMIN, ADMIN_PASSWORD) == 200
    await page.wait_for_selector("#user")
    for table in (
        "user",
        "session",
        "account",
        "verification",
        "organization",
        "organization_user",
        "profile",
    ):
        await page.goto(studio_url + f"#/{table}/")
        await page.wait_for_selector(".table_wrapper tbody tr")
        seen.append(await page.content())
        for row_id in [
            row["id"] for row in await fetch(people, f'SELECT id FROM "{table}" LIMIT 3')
        ]:
            await page.goto(studio_url + f"#/{table}/{row_id}/")
            await page.wait_for_selector("[data-uitest=save_button]")
            seen.append(await page.content())
    await page.goto(studio_url + "#/account/")
    await page.wait_for_selector(".table_wrapper tbody tr")
    await page.wait_for_load_state("networkidle")
    assert len(seen) > 40
    assert set().union(*(planted.leaked_in(text) for text in seen)) == set()


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
