"""Every route the studio serves, and secrets planted where Better-auth keeps them.

:func:`route_templates` reads the routes off the app itself, so a route that a
new piccolo-admin or piccolo-api version adds fails the walk until it is
exercised too. :func:`plant_secrets` fills every secret and secret-bearing
column with values that must never come back; :func:`walk` sends a request
to every route, with every parameter piccolo-api understands, and returns
what came back.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from piccolo_api.crud.endpoints import MATCH_TYPES, OPERATOR_MAP
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.routing import BaseRoute, Mount

from orgschema.studio import engine_pool
from orgschema.tables import ALL_TABLES
from tests.databases import fetch
from tests.studio_kit import ISSUE_SECRETS, TEACHER, csrf

TABLES = {table._meta.tablename: table for table in ALL_TABLES}

SECRET_NAMES = frozenset(column for _table, column in ISSUE_SECRETS)

#: Every route of the studio (see :func:`route_templates`); :func:`walk` requests each.
ROUTES = {
    ("GET", "/"),
    ("*", "/assets"),
    ("GET", "/openapi.json"),
    ("GET", "/api/openapi.json"),
    ("*", "/api/docs/"),
    ("*", "/api/docs/oauth2-redirect/"),
    ("GET", "/api/tables/"),
    ("GET", "/api/tables/grouped/"),
    ("GET", "/api/tables/{table}/"),
    ("POST", "/api/tables/{table}/"),
    ("GET", "/api/tables/{table}/count/"),
    ("GET", "/api/tables/{table}/ids/"),
    ("GET", "/api/tables/{table}/new/"),
    ("GET", "/api/tables/{table}/references/"),
    ("GET", "/api/tables/{table}/schema/"),
    ("GET", "/api/tables/{table}/{row_id:str}/"),
    ("PATCH", "/api/tables/{table}/{row_id:str}/"),
    ("PUT", "/api/tables/{table}/{row_id:str}/"),
    ("DELETE", "/api/tables/{table}/{row_id:str}/"),
    ("GET", "/api/links/"),
    ("GET", "/api/forms/"),
    ("GET", "/api/forms/grouped/"),
    ("GET", "/api/forms/{form_slug:str}/"),
    ("GET", "/api/forms/{form_slug:str}/schema/"),
    ("POST", "/api/forms/{form_slug:str}/"),
    ("GET", "/api/user/"),
    ("POST", "/api/change-password/"),
    ("POST", "/api/media/"),
    ("POST", "/api/media/generate-file-url/"),
    ("GET", "/public/openapi.json"),
    ("*", "/public/docs/"),
    ("*", "/public/docs/oauth2-redirect/"),
    ("*", "/public/login"),
    ("POST", "/public/logout/"),
    ("GET", "/public/meta/"),
    ("GET", "/public/translations/"),
    ("GET", "/public/translations/{language_code:str}/"),
}


def route_templates(app: Starlette) -> set[tuple[str, str]]:
    """``(method, path)`` of every route, table names written ``{table}``; mounts of files or whole apps get ``*``."""
    found: set[tuple[str, str]] = set()

    def visit(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                inner = route.app
                if isinstance(inner, AuthenticationMiddleware):
                    inner = inner.app
                children = getattr(inner, "routes", None)
                if children is None:
                    found.add(("*", prefix + route.path))
                else:
                    visit(children, prefix + route.path)
                continue
            path = prefix + getattr(route, "path", "")
            for table in TABLES:
                path = path.replace(f"/tables/{table}/", "/tables/{table}/")
            for method in getattr(route, "methods", None) or {"*"}:
                if method != "HEAD":
                    found.add((method, path))

    visit(app.routes, "")
    return found


@dataclass(frozen=True)
class Planted:
    """The secrets planted, by name."""

    values: dict[str, str]

    def leaked_in(self, text: str) -> set[str]:
        """Which planted secrets, or a telling part of one, ``text`` contains."""
        return {
            name
            for name, value in self.values.items()
            if value in text or (len(value) >= 24 and value[-16:] in text)
        }

    def fragments(self) -> list[str]:
        """Parts of the secrets an attacker would search for."""
        return [value[-16:] for value in self.values.values()]


async def plant_secrets(url: str) -> Planted:
    """Fill every secret column (and the tokens inside verification identifiers) with known values.

    Needs the development fixtures (``seeded``) in the database.
    """
    values = {
        name: f"{name}-{secrets.token_hex(16)}"
        for name in (
            "access",
            "refresh",
            "id",
            "session",
            "value",
            "reset",
            "magic",
            "onetime",
            "delete",
            "state",
            "hashed",
        )
    }
    (user,) = await fetch(url, 'SELECT id FROM "user" WHERE email = $1', TEACHER)
    await fetch(
        url,
        'UPDATE account SET "accessToken" = $1, "refreshToken" = $2, "idToken" = $3',
        values["access"],
        values["refresh"],
        values["id"],
    )
    await fetch(
        url,
        'INSERT INTO session (id, "expiresAt", token, "updatedAt", "userId") '
        "VALUES ('planted-session', now() + interval '1 day', $1, now(), $2)",
        values["session"],
        user["id"],
    )
    identifiers = {
        "reset": f"reset-password:{values['reset']}",
        "magic": f"magic-link:{values['magic']}",
        "onetime": f"one-time-token:{values['onetime']}",
        "delete": f"delete-account-{values['delete']}",
        "state": f"auth-state:{values['state']}",
        "hashed": values["hashed"],  # storeIdentifier: "hashed" keeps no prefix at all
    }
    for name, identifier in identifiers.items():
        await fetch(
            url,
            'INSERT INTO verification (id, identifier, value, "expiresAt") '
            "VALUES ($1, $2, $3, now() + interval '1 hour')",
            f"planted-{name}",
            identifier,
            values["value"],
        )
    for number, row in enumerate(await fetch(url, "SELECT password FROM account")):
        values[f"hash{number}"] = row["password"]
    return Planted(values)


async def secret_columns_now(url: str) -> dict[str, list[tuple[object, ...]]]:
    """The values of every secret column, to prove a walk changed none of them."""
    found: dict[str, list[tuple[object, ...]]] = {}
    for table in sorted({table for table, _column in ISSUE_SECRETS}):
        columns = ", ".join(f'"{column}"' for t, column in sorted(ISSUE_SECRETS) if t == table)
        rows = await fetch(url, f'SELECT id, {columns} FROM "{table}" ORDER BY id')
        found[table] = [tuple(row) for row in rows]
    return found


@dataclass(frozen=True)
class Probe:
    """One request of the walk; ``refused`` ones must get a 4xx."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: object = None
    refused: bool = False


def _secret_probes(table: str, fragment: str) -> list[Probe]:
    """Every way piccolo-api's grammar could name a secret column of ``table`` or of a table it points at."""
    real = TABLES[table]
    hidden = sorted(column for t, column in ISSUE_SECRETS if t == table)
    foreign_keys = [column._meta.name for column in real._meta.foreign_key_columns]
    variants: list[tuple[tuple[str, str], ...]] = []
    for name in hidden:
        variants += [
            ((name, fragment),),
            ((f"{name}[]", fragment),),
            *(((f"{name}__operator", operator),) for operator in OPERATOR_MAP),
            *(((name, fragment), (f"{name}__match", match)) for match in MATCH_TYPES),
            (("__order", name),),
            (("__order", f"-{name}"),),
            (("__order[]", name),),
            (("__order", f"id,{name}"),),
            (("__order", "id"), ("__order", name)),
            (("__visible_fields", name),),
            (("__visible_fields[]", name),),
            (("__visible_fields", f"id,{name}"),),
        ]
    # Through a foreign key: `userId.password` and the like (max_joins is 0,
    # but a 500 or a leak there was the issue's finding).
    for dotted in sorted(f"{fk}.{secret}" for fk in foreign_keys for secret in SECRET_NAMES):
        variants += [
            ((dotted, fragment),),
            (("__order", dotted),),
            (("__order[]", f"-{dotted}"),),
            (("__visible_fields", dotted),),
        ]
    probes = [
        Probe("GET", path, variant, refused=True)
        for path in (f"/api/tables/{table}/", f"/api/tables/{table}/count/")
        for variant in variants
    ]
    probes += [
        Probe("GET", f"/api/tables/{table}/ids/", ((name, fragment),), refused=True)
        for name in hidden
    ]
    return probes


async def _probes(client: httpx.AsyncClient, url: str, fragments: Iterable[str]) -> list[Probe]:
    fragments = list(fragments)
    me = (await client.get("/api/user/")).json()["username"]
    own_rows = {
        str(value)
        for row in await fetch(
            url,
            'SELECT u.id AS user_id, p.id AS profile_id FROM "user" u '
            "JOIN profile p ON p.user_id = u.id WHERE u.email = $1",
            me,
        )
        for value in row.values()
    }
    probes = [
        Probe("GET", path)
        for path in (
            "/",
            "/openapi.json",
            "/api/openapi.json",
            "/api/docs/",
            "/api/docs/oauth2-redirect/",
            "/api/tables/",
            "/api/tables/grouped/",
            "/api/links/",
            "/api/forms/",
            "/api/forms/grouped/",
            "/api/forms/any/",
            "/api/forms/any/schema/",
            "/api/user/",
            "/public/openapi.json",
            "/public/docs/",
            "/public/docs/oauth2-redirect/",
            "/public/login/",
            "/public/meta/",
            "/public/translations/",
            "/public/translations/en/",
        )
    ]
    page = (await client.get("/")).text
    assets = [piece.partition('"')[0] for piece in page.split("/assets/")[1:]]
    assert assets, "the studio's page links no assets"
    probes += [Probe("GET", f"/assets/{asset}") for asset in assets]
    probes += [
        Probe("POST", "/api/forms/any/", json={}, refused=True),
        Probe("POST", "/api/change-password/", json={}, refused=True),
        Probe("POST", "/api/media/", refused=True),
        Probe(
            "POST",
            "/api/media/generate-file-url/",
            json={"table_name": "account", "column_name": "password", "file_key": "x"},
            refused=True,
        ),
    ]
    for table in TABLES:
        base = f"/api/tables/{table}/"
        everything = (("__readable", "true"), ("__page_size", "1000"))
        probes += [
            Probe("GET", base),
            # What the studio's CSV export asks for: every column, readable, big pages.
            Probe("GET", base, everything),
            Probe("GET", f"{base}count/"),
            Probe("GET", f"{base}ids/"),
            Probe("GET", f"{base}new/"),
            Probe("GET", f"{base}schema/"),
            Probe("GET", f"{base}references/"),
            Probe("POST", base, json={}),
        ]
        probes += [Probe("GET", f"{base}ids/", (("search", fragment),)) for fragment in fragments]
        probes += _secret_probes(table, fragments[0])
        if table == "verification":
            for fragment in fragments:
                probes += [
                    Probe("GET", f"{base}count/", (("kind", fragment), ("kind__match", match)))
                    for match in MATCH_TYPES
                ]
        rows = (await client.get(base, params={"__page_size": "1000"})).json()["rows"]
        for row in rows:
            if row["id"] in own_rows:
                continue  # editing your own rows ends your session (test_sessions.py)
            detail = f"{base}{row['id']}/"
            values = {key: value for key, value in row.items() if key != "id"}
            probes += [
                Probe("GET", detail),
                Probe("GET", detail, (("__readable", "true"),)),
                # The edit form sends every field back, as the bulk update does one.
                Probe("PATCH", detail, json=values),
                Probe("PUT", detail, json=values, refused=True),
                *(
                    Probe("PATCH", detail, json={secret: fragments[0]}, refused=True)
                    for t, secret in sorted(ISSUE_SECRETS)
                    if t == table
                ),
            ]
        probes += [
            Probe("POST", base, json={secret: fragments[0]}, refused=True)
            for t, secret in sorted(ISSUE_SECRETS)
            if t == table
        ]
        probes.append(Probe("DELETE", base, refused=True))  # no bulk delete
    # Deleting a verification revokes it; the response must not show it either.
    probes += [
        Probe("DELETE", "/api/tables/verification/planted-reset/"),
        Probe("DELETE", "/api/tables/session/planted-session/"),
        Probe("POST", "/public/logout/"),
    ]
    return probes


async def walk(
    client: httpx.AsyncClient, app: Starlette, url: str, fragments: Iterable[str]
) -> list[tuple[Probe, httpx.Response]]:
    """Send every probe, signed in as ``client``; what came back, for each.

    :raises AssertionError: the app serves a route :data:`ROUTES` does not know.
    """
    unknown = route_templates(app) - ROUTES
    assert unknown == set(), f"routes the walk does not exercise: {sorted(unknown)}"
    answers = []
    # The pool the studio's lifespan would open: without it every query of
    # thousands opens a connection of its own.
    async with engine_pool():
        probes = await _probes(client, url, fragments)
        for probe in probes:
            response = await client.request(
                probe.method,
                probe.path,
                params=list(probe.params),
                json=probe.json,
                headers=csrf(client),
            )
            answers.append((probe, response))
    return answers
