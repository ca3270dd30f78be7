"""Real servers for the authentication tests: Better-auth (Node) and Python services (uvicorn).

Each server gets a loopback socket the test binds and listens on first, passed
as an inherited file descriptor: no port can be raced for, and nobody waits
for start-up by sleeping, since the first request queues in the socket's
backlog until the server accepts it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.better_auth_kit import HARNESS

#: Test-only secrets, long and varied enough that Better-auth does not warn.
SECRET = "orgschema-auth-TEST-ONLY-secret-7d41c0b9e2a35f86"
OTHER_SECRET = "orgschema-auth-OTHER-test-secret-1f5e9a0c4b7d2683"

PASSWORD = "correct horse battery staple"

#: What a request's raw headers are here: bytes, so that anything can be sent.
RawHeaders = Sequence[tuple[bytes, bytes]]

_REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class SignedIn:
    """A session Better-auth created, as its HTTP responses show it.

    :ivar cookie_name: The session cookie's name (``[__Secure-]<prefix>.session_token``).
    :ivar cookie_value: Its value exactly as ``Set-Cookie`` sent it (URL-encoded).
    :ivar token: ``session.token`` (the sign-in response's ``token``).
    :ivar bearer: The bearer plugin's ``set-auth-token`` header, when it is on.
    """

    user_id: str
    email: str
    cookie_name: str
    cookie_value: str
    token: str
    bearer: str | None

    @property
    def cookie(self) -> str:
        """The ``Cookie`` header a browser sends back."""
        return f"{self.cookie_name}={self.cookie_value}"


@asynccontextmanager
async def _served(
    command: Sequence[str], env: Mapping[str, str], cwd: Path, *, stdin: bool
) -> AsyncIterator[str]:
    listener = socket.socket()
    # uvicorn --fd takes the socket for a Unix one and never sets TCP_NODELAY on
    # what it accepts; accepted sockets inherit it from here (Linux), sparing
    # each response Nagle's wait for the client's delayed ACK (40 ms).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    with tempfile.TemporaryFile() as log:
        process = await asyncio.create_subprocess_exec(
            *(arg.replace("{fd}", str(fd)) for arg in command),
            cwd=cwd,
            env=dict(env),
            pass_fds=[fd],
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        listener.close()
        try:
            yield f"http://127.0.0.1:{port}"
        except BaseException:
            log.seek(0)
            sys.stderr.write(f"--- {command[0]} output ---\n{log.read().decode(errors='replace')}")
            raise
        finally:
            if process.returncode is None:
                if stdin and process.stdin is not None:
                    process.stdin.close()
                else:
                    process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


class BetterAuth:
    """A real Better-auth server (``server.mjs``) and an HTTP client for its API."""

    def __init__(self, http: httpx.AsyncClient, origin: str) -> None:
        self.http = http
        self.origin = origin

    async def sign_up(self, email: str, name: str, password: str = PASSWORD) -> SignedIn:
        response = await self.http.post(
            "/api/auth/sign-up/email", json={"email": email, "name": name, "password": password}
        )
        return self._signed_in(response)

    async def sign_in(self, email: str, password: str = PASSWORD) -> SignedIn:
        response = await self.http.post(
            "/api/auth/sign-in/email", json={"email": email, "password": password}
        )
        return self._signed_in(response)

    async def get_session(self, headers: RawHeaders) -> str | None:
        """The id of the user Better-auth's getSession sees for these headers, or ``None``."""
        response = await self.http.get("/api/auth/get-session", headers=list(headers))
        assert response.status_code == 200, response.text
        body = response.json()
        return None if body is None else str(body["user"]["id"])

    async def sign_out(self, signed_in: SignedIn) -> None:
        response = await self.http.post(
            "/api/auth/sign-out", json={}, headers={"cookie": signed_in.cookie}
        )
        assert response.status_code == 200 and response.json()["success"] is True, response.text

    async def delete_user(self, signed_in: SignedIn, password: str = PASSWORD) -> None:
        response = await self.http.post(
            "/api/auth/delete-user",
            json={"password": password},
            headers={"cookie": signed_in.cookie},
        )
        assert response.status_code == 200 and response.json()["success"] is True, response.text

    def _signed_in(self, response: httpx.Response) -> SignedIn:
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        name, value = next(
            pair
            for line in response.headers.get_list("set-cookie")
            for pair in [line.split(";", 1)[0].split("=", 1)]
            if pair[0].endswith(".session_token") and pair[1]
        )
        return SignedIn(
            user_id=body["user"]["id"],
            email=body["user"]["email"],
            cookie_name=name,
            cookie_value=value,
            token=body["token"],
            bearer=response.headers.get("set-auth-token"),
        )


@asynccontextmanager
async def better_auth(
    node: str,
    database_url: str,
    *options: str,
    secret: str | None = SECRET,
    secrets: str | None = None,
    base_url: str = "http://localhost:3000",
) -> AsyncIterator[BetterAuth]:
    """Run ``server.mjs`` on the database with these options and secrets.

    :param options: ``--bearer``, ``--bearer-signed``, ``--cookie-prefix P``.
    :param secret: ``BETTER_AUTH_SECRET`` for Better-auth to read itself.
    :param secrets: ``BETTER_AUTH_SECRETS`` likewise.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("BETTER_AUTH_SECRET", "BETTER_AUTH_SECRETS", "AUTH_SECRET", "NODE_ENV")
    }
    env["DATABASE_URL"] = database_url
    if secret is not None:
        env["BETTER_AUTH_SECRET"] = secret
    if secrets is not None:
        env["BETTER_AUTH_SECRETS"] = secrets
    command = [node, "server.mjs", "--fd", "{fd}", "--base-url", base_url, *options]
    async with (
        _served(command, env, HARNESS, stdin=True) as url,
        httpx.AsyncClient(
            base_url=url, headers={"origin": base_url}, timeout=_REQUEST_TIMEOUT
        ) as http,
    ):
        yield BetterAuth(http, base_url)


@asynccontextmanager
async def python_service(
    directory: Path, app: str, env: Mapping[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``uvicorn <app>`` from ``directory`` with ``env`` and yield a client for it."""
    command = [sys.executable, "-m", "uvicorn", app, "--fd", "{fd}", "--no-access-log"]
    async with (
        _served(command, env, directory, stdin=False) as url,
        httpx.AsyncClient(base_url=url, timeout=_REQUEST_TIMEOUT) as http,
    ):
        yield http
