#!/usr/bin/env python3
"""How long a studio sign-in takes on each path, so refusals cannot be told apart by timing.

    .venv/bin/python scripts/bench_studio_login.py [--rounds 20]

Builds a throwaway database (on DATABASE_URL's server, else the embedded one)
with the development fixtures, then times ``StudioLogin.login`` for: the
platform admin, a wrong password, a user who is not a platform admin, and an
unknown e-mail, interleaved. The target: every refusal's median within 20 % of
the wrong-password median (each runs one scrypt). Prints figures; asserts
nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import warnings

from _bench import bench_database

CASES = {
    "platform admin, right password": ("admin@example.com", None),
    "wrong password": ("admin@example.com", "not the password"),
    "not a platform admin": ("teacher@example.com", None),
    "unknown e-mail": ("nobody@example.com", None),
}


async def main(rounds: int) -> None:
    # Better-auth names its table "user"; Piccolo warns about the reserved word.
    warnings.filterwarnings("ignore", message=".*`user` is a reserved keyword")
    async with bench_database():
        from orgschema.seeding import DEVELOPMENT_PASSWORD, seed
        from orgschema.studio import StudioLogin

        await seed("development")
        timings: dict[str, list[float]] = {case: [] for case in CASES}
        for _ in range(rounds):
            for case, (email, password) in CASES.items():
                started = time.perf_counter()
                await StudioLogin.login(email, password or DEVELOPMENT_PASSWORD)
                timings[case].append(time.perf_counter() - started)
        floor = statistics.median(timings["wrong password"])
        print(f"rounds: {rounds}; the floor is the wrong-password median (one scrypt)")
        print(
            f"{'case':<32} {'median ms':>10} {'ratio to floor':>15}   (target: refusals 0.80x to 1.20x)"
        )
        for case, seconds in timings.items():
            median = statistics.median(seconds)
            print(f"{case:<32} {median * 1e3:10.1f} {median / floor:14.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed sign-ins per case [20]")
    rounds = parser.parse_args().rounds
    if rounds < 1:
        parser.error("--rounds must be 1 or more")
    asyncio.run(main(rounds))
