"""``orgschema dev`` and ``orgschema studio`` as a person runs them: served, then Ctrl-C.

Each test starts the installed console script in a subprocess on a free port
(``--port 0``), waits (bounded) for the URL it prints, talks to it over real
HTTP, then sends SIGINT as Ctrl-C does and expects a clean exit.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from orgschema.seeding import DEVELOPMENT_PASSWORD
from tests.databases import fetch
from tests.rows import row_counts
from tests.serving import STARTUP_TIMEOUT, serve


def sign_in(url: str, email: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    client.get("/")
    response = client.post(
        "/public/login/",
        json={"username": email, "password": password},
        headers={"X-CSRFToken": client.cookies["csrftoken"]},
    )
    assert response.status_code == 200, response.text
    return client


async def test_dev_serves_the_studio_until_ctrl_c_and_keeps_the_data(
    empty_database, tmp_path: Path
) -> None:
    url = await empty_database()
    env = {"DATABASE_URL": url, "PICCOLO_CONF": "", "APP_ENV": ""}
    with serve("dev", "--port", "0", env=env, cwd=tmp_path) as served:
        studio_url = served.wait_for_url()
        assert f"development login: admin@example.com / {DEVELOPMENT_PASSWORD}" in served.stdout
        client = sign_in(studio_url, "admin@example.com", DEVELOPMENT_PASSWORD)
        try:
            users = client.get("/api/tables/user/", params={"email": "teacher"})
            assert [row["email"] for row in users.json()["rows"]] == ["teacher@example.com"]
        finally:
            client.close()
        assert served.interrupt() == 0
    assert "Traceback" not in "\n".join(served.stderr)
    assert any("studio stopped; the data stays" in line for line in served.stderr)
    counts = await row_counts(url)
    assert counts["user"] > 0 and counts["organization"] > 0

    # Next time: nothing added twice, the same login works.
    with serve("dev", "--port", "0", env=env, cwd=tmp_path) as again:
        again_url = again.wait_for_url()
        sign_in(again_url, "admin@example.com", DEVELOPMENT_PASSWORD).close()
        assert again.interrupt() == 0
    assert "fixtures: all there already" in again.stderr
    assert await row_counts(url) == counts


async def test_dev_refuses_a_production_environment(empty_database, tmp_path: Path) -> None:
    url = await empty_database()
    with serve(
        "dev",
        "--port",
        "0",
        env={"DATABASE_URL": url, "PICCOLO_CONF": "", "APP_ENV": "production"},
        cwd=tmp_path,
    ) as served:
        assert served.process.wait(timeout=STARTUP_TIMEOUT) == 7
    assert any(
        line.startswith("error: refusing to seed fixtures in production") for line in served.stderr
    )
    # Refused before anything was written: not even the migrations ran.
    assert await fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []


def test_studio_serves_read_only(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "PICCOLO_CONF": "", "APP_ENV": ""}
    with serve("studio", "--port", "0", "--read-only", env=env, cwd=tmp_path) as served:
        studio_url = served.wait_for_url()
        with httpx.Client(timeout=30) as client:
            meta = client.get(studio_url + "public/meta/").json()
        assert meta["site_name"] == "orgschema studio"
        assert served.interrupt() == 0
    assert "(read-only)" in "\n".join(served.stderr)


def test_studio_warns_before_listening_beyond_loopback(database_url: str, tmp_path: Path) -> None:
    # 192.0.2.1 (TEST-NET-1) is never this machine's, so the studio warns and
    # then cannot listen: the warning is proven without serving beyond loopback.
    env = {"DATABASE_URL": database_url, "PICCOLO_CONF": "", "APP_ENV": ""}
    with serve("studio", "--host", "192.0.2.1", "--port", "0", env=env, cwd=tmp_path) as served:
        assert served.process.wait(timeout=STARTUP_TIMEOUT) == 1
    errors = "\n".join(served.stderr)
    assert "without production mode" in errors
    assert "error: the studio cannot listen on 192.0.2.1" in errors


def test_studio_in_production_needs_allowed_hosts(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url, "PICCOLO_CONF": "", "APP_ENV": "production"}
    with serve("studio", "--port", "0", env=env, cwd=tmp_path) as served:
        assert served.process.wait(timeout=STARTUP_TIMEOUT) == 3
    assert [line for line in served.stderr if line.startswith("error: ")] == [
        "error: the studio in production needs the host names it is served under: pass "
        "allowed_hosts=['studio.example.com'] (orgschema studio --allowed-host ...)"
    ]


def test_studio_on_a_busy_port_says_so(database_url: str, tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"DATABASE_URL": database_url, "PICCOLO_CONF": "", "APP_ENV": ""}
        with serve("studio", "--port", str(port), env=env, cwd=tmp_path) as served:
            assert served.process.wait(timeout=STARTUP_TIMEOUT) == 1
    assert any(
        line.startswith(f"error: the studio cannot listen on 127.0.0.1:{port}")
        for line in served.stderr
    )


@pytest.mark.parametrize("command", ["dev", "studio"])
def test_bad_database_url_gives_one_masked_line_and_exit_3(command: str, tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql://postgres:hunter2@127.0.0.1:1/orgschema",
        "PICCOLO_CONF": "",
    }
    with serve(command, "--port", "0", env=env, cwd=tmp_path) as served:
        assert served.process.wait(timeout=STARTUP_TIMEOUT) == 3
    errors = [line for line in served.stderr if line.startswith("error: ")]
    assert len(errors) == 1 and "cannot connect to" in errors[0]
    assert "hunter2" not in "\n".join(served.stderr + served.stdout)
    assert "Traceback" not in "\n".join(served.stderr)
