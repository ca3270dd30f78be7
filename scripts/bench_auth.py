#!/usr/bin/env python3
"""How fast ``orgschema.auth`` is beside its floors: the raw query, and an unguarded endpoint.

    .venv/bin/python scripts/bench_auth.py [--users 20000] [--calls 2000] [--requests 4000] [--keep]

Builds a throwaway database (on DATABASE_URL's server, else the embedded one)
of U users, each with a profile, a session and 3 memberships, with COPY. Then:

1. ``authenticate(headers)`` for random users' signed cookies, through
   Piccolo's engine with a pool of one connection, as a service runs it,
   interleaved with the floor: ``IDENTITY_QUERY`` for the same tokens on an
   asyncpg pool of one connection. Median and p99; the target is a median
   ratio of 1.3x or less.
2. Requests per second of a FastAPI endpoint guarded by ``require_identity``
   against the same endpoint unguarded (the floor), on a real uvicorn in its
   own process, from 8 keep-alive connections, in alternating rounds. The
   target is a ratio of 0.7x or more. Beside them, the endpoint that runs
   the same query on an asyncpg pool instead of authenticating: what one
   database round trip per request costs on this machine before
   orgschema.auth adds anything.

Prints figures; asserts nothing. The figures move with the machine's load.
"""

# No `from __future__ import annotations`: FastAPI reads the signatures of the
# routes app() makes at runtime, and they name its local dependencies.

import argparse
import asyncio
import os
import random
import socket
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
from _bench import bench_database

SECRET = "orgschema-bench-secret-not-for-production-4c1e9b7a"  # noqa: S105 -- a throwaway database's
ORGANIZATIONS = 300
PER_USER = 3
CONNECTIONS = 8
ROUNDS = 4
COOKIE = "better-auth.session_token"


async def build(url: str, users: int) -> list[str]:
    """The users, profiles, sessions and memberships; returns the sessions' tokens."""
    from orgschema.ids import generate_id

    ids = [generate_id() for _ in range(users)]
    tokens = [generate_id() for _ in range(users)]
    organizations = [uuid.uuid4() for _ in range(ORGANIZATIONS)]
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "organization",
            records=[(org, f"Organization {n}", f"org-{n}") for n, org in enumerate(organizations)],
            columns=("id", "name", "slug"),
        )
        await conn.copy_records_to_table(
            "user",
            records=[(u, "Bench User", f"bench-{n}@example.com", True) for n, u in enumerate(ids)],
            columns=("id", "name", "email", "emailVerified"),
        )
        await conn.copy_records_to_table(
            "profile", records=[(u, "teacher") for u in ids], columns=("user_id", "role")
        )
        await conn.copy_records_to_table(
            "organization_user",
            records=[
                (organizations[(n * 7 + k) % ORGANIZATIONS], u, "teacher")
                for n, u in enumerate(ids)
                for k in range(PER_USER)
            ],
            columns=("organization_id", "user_id", "role"),
        )
        expires = await conn.fetchval("SELECT now() + interval '7 days'")
        now = await conn.fetchval("SELECT now()")
        await conn.copy_records_to_table(
            "session",
            records=[(generate_id(), t, u, expires, now) for u, t in zip(ids, tokens, strict=True)],
            columns=("id", "token", "userId", "expiresAt", "updatedAt"),
        )
        for table in ("user", "session", "profile", "organization", "organization_user"):
            await conn.execute(f'VACUUM ANALYZE "{table}"')
        print(f"users:           {users:,} (a session, a profile and {PER_USER} memberships each)")
    finally:
        await conn.close()
    return tokens


def percentile(seconds: Sequence[float], fraction: float) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def line(label: str, seconds: Sequence[float]) -> str:
    return (
        f"{label:<22} median {statistics.median(seconds) * 1e6:8.1f} us, "
        f"p99 {percentile(seconds, 0.99) * 1e6:8.1f} us"
    )


async def time_authenticate(url: str, tokens: list[str], calls: int) -> None:
    from orgschema import Organization, Settings
    from orgschema.auth import authenticate
    from orgschema.auth.credentials import CredentialRules
    from orgschema.auth.identity import IDENTITY_QUERY

    settings = Settings(better_auth_secret=SECRET)
    rules = CredentialRules.from_settings(settings)
    sample = random.Random(7).choices(tokens, k=calls)
    cookies = {
        token: {"cookie": f"{COOKIE}={quote(rules.sign(token), safe='')}"} for token in sample
    }
    floor_sql = IDENTITY_QUERY.replace("{}", "$1")

    engine = Organization._meta.db
    await engine.start_connection_pool(min_size=1, max_size=1)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        first = await authenticate(cookies[sample[0]], settings=settings)
        assert first is not None
        assert len(first.memberships) == PER_USER
        assert len(await pool.fetch(floor_sql, sample[0])) == PER_USER
        ours: list[float] = []
        floor: list[float] = []
        # Interleaved, each going first every other time, so both see the
        # same caches and the same noise.
        for n, token in enumerate(sample):
            for side in (0, 1) if n % 2 else (1, 0):
                started = time.perf_counter()
                if side:
                    await authenticate(cookies[token], settings=settings)
                else:
                    await pool.fetch(floor_sql, token)
                (ours if side else floor).append(time.perf_counter() - started)
    finally:
        await pool.close()
        await engine.close_connection_pool()
    print(f"calls:           {calls:,} per side, pools of one connection")
    print(line("authenticate()", ours))
    print(line("raw asyncpg query", floor) + "  (floor)")
    ratio = statistics.median(ours) / statistics.median(floor)
    print(f"ratio (median):  {ratio:8.2f}x  (target: 1.3x or less)")


def app() -> Any:
    """The benchmarked service (``uvicorn --factory bench_auth:app``)."""
    from contextlib import asynccontextmanager as lifespan_manager
    from typing import Annotated

    from fastapi import Depends, FastAPI, Request

    from orgschema import Organization
    from orgschema.auth import AuthDependencies, Identity
    from orgschema.auth.identity import IDENTITY_QUERY

    auth = AuthDependencies()
    engine = Organization._meta.db
    pools: list[asyncpg.Pool] = []
    floor_sql = IDENTITY_QUERY.replace("{}", "$1")

    @lifespan_manager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await engine.start_connection_pool(min_size=CONNECTIONS, max_size=CONNECTIONS)
        pools.append(
            await asyncpg.create_pool(
                os.environ["DATABASE_URL"], min_size=CONNECTIONS, max_size=CONNECTIONS
            )
        )
        yield
        await pools[0].close()
        await engine.close_connection_pool()

    service = FastAPI(lifespan=lifespan)

    @service.get("/open")
    async def unguarded() -> dict[str, str]:
        return {"user": "anyone"}

    @service.get("/query")
    async def query_only(request: Request) -> dict[str, str]:
        # The token unverified, straight to the query: no orgschema at all.
        token = request.cookies[COOKIE].split(".")[0]
        rows = await pools[0].fetch(floor_sql, token)
        return {"user": rows[0]["user_id"]}

    @service.get("/guarded")
    async def guarded(
        identity: Annotated[Identity, Depends(auth.require_identity)],
    ) -> dict[str, str]:
        return {"user": identity.user_id}

    return service


@asynccontextmanager
async def uvicorn_serving(url: str) -> AsyncIterator[int]:
    """This file's ``app`` under uvicorn, on a loopback socket bound here; yields its port."""
    listener = socket.socket()
    # uvicorn --fd takes the socket for a Unix one and never sets TCP_NODELAY on
    # what it accepts; accepted sockets inherit it from here (Linux), sparing
    # each response Nagle's wait for the client's delayed ACK.
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    env = {**os.environ, "DATABASE_URL": url, "BETTER_AUTH_SECRET": SECRET}
    env["PICCOLO_CONF"] = "orgschema.conf"
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "uvicorn", "--factory", "bench_auth:app"),
        *("--app-dir", str(Path(__file__).parent), "--fd", str(listener.fileno())),
        *("--no-access-log", "--log-level", "warning"),
        env=env,
        pass_fds=[listener.fileno()],
    )
    port = listener.getsockname()[1]
    listener.close()
    try:
        yield port
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=30)


async def keep_alive_client(
    port: int, path: str, headers: list[dict[str, str]], count: int
) -> None:
    """``count`` GETs on one keep-alive connection; each answer must be a 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for n in range(count):
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers[n % len(headers)].items())
            writer.write(f"GET {path} HTTP/1.1\r\nhost: bench\r\n{extra}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(
                int(h.split(b":", 1)[1])
                for h in head.split(b"\r\n")
                if h.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
    finally:
        writer.close()
        await writer.wait_closed()


async def time_requests(url: str, tokens: list[str], requests: int) -> None:
    from orgschema import Settings
    from orgschema.auth.credentials import CredentialRules

    rules = CredentialRules.from_settings(Settings(better_auth_secret=SECRET))
    sample = random.Random(11).sample(tokens, k=min(len(tokens), 500))
    cookies = [{"cookie": f"{COOKIE}={quote(rules.sign(token), safe='')}"} for token in sample]
    per_connection = max(1, requests // ROUNDS // CONNECTIONS)
    elapsed = {"/open": 0.0, "/query": 0.0, "/guarded": 0.0}
    async with uvicorn_serving(url) as port:
        # Warm-up: the first request waits for start-up; the pool fills.
        for path in elapsed:
            await asyncio.gather(
                *(keep_alive_client(port, path, cookies, 5) for _ in range(CONNECTIONS))
            )
        for _round in range(ROUNDS):
            for path in elapsed:
                started = time.perf_counter()
                await asyncio.gather(
                    *(
                        keep_alive_client(port, path, cookies, per_connection)
                        for _ in range(CONNECTIONS)
                    )
                )
                elapsed[path] += time.perf_counter() - started
    done = per_connection * CONNECTIONS * ROUNDS
    rate = {path: done / seconds for path, seconds in elapsed.items()}
    print(
        f"requests:        {done:,} per endpoint, {CONNECTIONS} keep-alive connections, "
        f"{ROUNDS} alternating rounds, one uvicorn worker"
    )
    print(f"guarded by require_identity {rate['/guarded']:8.0f} requests/s")
    print(f"unguarded                   {rate['/open']:8.0f} requests/s  (floor)")
    print(f"ratio:           {rate['/guarded'] / rate['/open']:8.2f}x  (target: 0.7x or more)")
    print(
        f"the query alone, raw asyncpg {rate['/query']:7.0f} requests/s  "
        f"({rate['/query'] / rate['/open']:.2f}x the floor; guarded is "
        f"{rate['/guarded'] / rate['/query']:.2f}x of it)"
    )


async def main(users: int, calls: int, requests: int, keep: bool) -> None:
    async with bench_database(keep) as url:
        started = time.perf_counter()
        tokens = await build(url, users)
        print(f"built in:        {time.perf_counter() - started:8.1f} s")
        await time_authenticate(url, tokens, calls)
        await time_requests(url, tokens, requests)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000, help="users with a session [20000]")
    parser.add_argument(
        "--calls", type=int, default=2_000, help="timed authenticate() calls [2000]"
    )
    parser.add_argument(
        "--requests", type=int, default=4_000, help="HTTP requests per endpoint [4000]"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    arguments = parser.parse_args()
    for name in ("users", "calls", "requests"):
        if getattr(arguments, name) < 1:
            parser.error(f"--{name} must be 1 or more")
    asyncio.run(main(arguments.users, arguments.calls, arguments.requests, arguments.keep))
