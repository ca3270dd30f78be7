"""Development and test data: a fixed set of fixtures, and as many synthetic users as asked.

:func:`seed` writes only where the environment is development or test, and
never into a database that was bootstrapped as a deployed one (see
:mod:`orgschema.bootstrap`). Everything it writes, fixtures and bulk users,
goes in one transaction: a refusal or a failure leaves the database exactly as
it was. Running it again adds nothing and changes nothing: fixtures have fixed
ids and are inserted only where missing, and ``users=N`` tops the synthetic
users up to N rather than adding N more.

Every fixture user and every synthetic user signs in through Better-auth with
:data:`DEVELOPMENT_PASSWORD`. :func:`ensure_development_admin` gives such a
database its platform admin back (:data:`DEVELOPMENT_ADMIN`) when none is left.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import asyncpg

from orgschema._postgres import SETUP_LOCK_KEY, platform_admin_exists, schema_missing
from orgschema.bootstrap import bootstrap_first_admin
from orgschema.database import connection
from orgschema.environment import SEEDABLE, Environment, parse_environment
from orgschema.errors import AlreadyBootstrapped, EnvironmentRefused, InvalidInputError
from orgschema.ids import ID_LENGTH, generate_id
from orgschema.passwords import hash_password
from orgschema.roles import MembershipRole, Role
from orgschema.settings import Settings
from orgschema.validation import check_slug, normalise_email, normalise_name

#: The password of every seeded user. Published on purpose: it exists only in
#: development and test databases.
DEVELOPMENT_PASSWORD = "orgschema-dev-password"  # noqa: S105 -- published on purpose

#: ``progress(done, total)``: called as synthetic users are written.
Progress = Callable[[int, int], None]

#: Synthetic users written per COPY round (and per progress report).
DEFAULT_BATCH_SIZE = 10_000

#: Synthetic user ``n`` has the e-mail ``synthetic-<n, 6 digits>@example.com``.
SYNTHETIC_EMAIL = "synthetic-{:06d}@example.com"


@dataclass(frozen=True)
class FixtureOrganization:
    """An organization the fixtures create."""

    name: str
    slug: str


@dataclass(frozen=True)
class FixtureUser:
    """A user the fixtures create, with their platform role and memberships.

    :ivar memberships: ``(organization slug, role)`` pairs; the first
        organization is also the profile's organization.
    """

    email: str
    name: str
    role: Role
    memberships: tuple[tuple[str, MembershipRole], ...] = ()


#: The fixture organizations.
FIXTURE_ORGANIZATIONS: tuple[FixtureOrganization, ...] = (
    FixtureOrganization(name="Northwind Academy", slug="northwind-academy"),
    FixtureOrganization(name="Riverside Sports Club", slug="riverside-sports-club"),
    FixtureOrganization(name="Hillcrest College", slug="hillcrest-college"),
)

#: One fixture user for every :class:`~orgschema.roles.Role`.
FIXTURE_USERS: tuple[FixtureUser, ...] = (
    FixtureUser("admin@example.com", "Ada Admin", Role.PLATFORM_ADMIN),
    FixtureUser(
        "org.admin@example.com",
        "Olive Organization-Admin",
        Role.ORGANIZATION_ADMIN,
        (("northwind-academy", MembershipRole.ORGANIZATION_ADMIN),),
    ),
    FixtureUser(
        "manager@example.com",
        "Max Manager",
        Role.MANAGER,
        (("northwind-academy", MembershipRole.MANAGER),),
    ),
    FixtureUser(
        "coach@example.com",
        "Cora Coach",
        Role.COACH,
        (("riverside-sports-club", MembershipRole.COACH),),
    ),
    FixtureUser(
        "teacher@example.com",
        "Theo Teacher",
        Role.TEACHER,
        (
            ("northwind-academy", MembershipRole.TEACHER),
            ("hillcrest-college", MembershipRole.TEACHER),
        ),
    ),
)

#: The fixture platform admin: the development login (with :data:`DEVELOPMENT_PASSWORD`).
DEVELOPMENT_ADMIN: FixtureUser = next(
    user for user in FIXTURE_USERS if user.role is Role.PLATFORM_ADMIN
)

# Fixture ids derive from the fixture's e-mail or slug, so every seeded
# database has the same ids and a re-run recognises its own rows.
_NAMESPACE = uuid.UUID("6f726773-6368-656d-6120-666978747572")
_BASE62 = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def fixture_user_id(email: str) -> str:
    """The fixed id of a fixture user.

    :param email: The fixture user's e-mail.
    :returns: Better-auth shaped text: 32 letters and digits.
    """
    return _fixed_text_id(f"user {email}")


def _fixed_text_id(key: str) -> str:
    number = int.from_bytes(hashlib.sha256(f"orgschema fixture {key}".encode()).digest(), "big")
    characters = []
    for _ in range(ID_LENGTH):
        number, index = divmod(number, len(_BASE62))
        characters.append(_BASE62[index])
    return "".join(characters)


def fixture_organization_id(slug: str) -> uuid.UUID:
    """The fixed id of a fixture organization.

    :param slug: The fixture organization's slug.
    :returns: A UUID derived from the slug.
    """
    return uuid.uuid5(_NAMESPACE, f"organization {slug}")


@dataclass(frozen=True)
class SeedReport:
    """What :func:`seed` added; every count is zero when the fixtures were all there.

    :ivar environment: The environment it seeded.
    :ivar organizations: Organizations added.
    :ivar users: Users added, fixtures and synthetic.
    :ivar accounts: Credential accounts added.
    :ivar profiles: Profiles added.
    :ivar memberships: Memberships added.
    :ivar synthetic_users: Of ``users``, how many were synthetic.
    :ivar seconds: Wall-clock time, hashing included.
    """

    environment: Environment
    organizations: int
    users: int
    accounts: int
    profiles: int
    memberships: int
    synthetic_users: int
    seconds: float

    @property
    def added_anything(self) -> bool:
        """Whether any row was added."""
        return any((self.organizations, self.users, self.accounts, self.profiles, self.memberships))


def check_fixtures() -> None:
    """Hold every fixture to :mod:`orgschema.validation`, as any user or organization is held.

    Seeding writes with ``COPY`` and plain ``INSERT`` for speed; checking the
    fixtures (and the shape of the synthetic e-mails, once) first means it can
    never write a user that bootstrap, the studio or Better-auth would refuse.

    :raises InvalidInputError: a fixture is invalid or not written as it is stored.
    """
    emails = [user.email for user in FIXTURE_USERS] + [SYNTHETIC_EMAIL.format(1)]
    names = [user.name for user in FIXTURE_USERS] + [org.name for org in FIXTURE_ORGANIZATIONS]
    for given, stored, field in (
        *((email, normalise_email(email), "email") for email in emails),
        *((name, normalise_name(name), "name") for name in names),
        *((org.slug, check_slug(org.slug), "slug") for org in FIXTURE_ORGANIZATIONS),
    ):
        if given != stored:
            raise InvalidInputError(
                f"fixture {field} {given!r} must be written as {stored!r}", field=field
            )


def check_environment(env: str | Environment | None) -> Environment:
    """The environment ``env`` names, if fixtures may be seeded there.

    :param env: An environment or its name (``APP_ENV``/``NODE_ENV`` spelling).
    :returns: Development or test.
    :raises EnvironmentRefused: staging or production (use the first-run
        bootstrap there), or an unset or unknown environment (fail closed).
    """
    environment = parse_environment(env)
    if environment is not None and environment in SEEDABLE:
        return environment
    if environment is not None:
        raise EnvironmentRefused(
            f"refusing to seed fixtures in {environment.value}: they sign in with a published "
            "password. Create the first platform admin instead, with `orgschema bootstrap "
            "--email E --name N` or POST /api/setup/first-run (see docs/bootstrap.md)"
        )
    allowed = " or ".join(sorted(item.value for item in SEEDABLE))
    if env is None:
        raise EnvironmentRefused(
            "refusing to seed: no environment given; set APP_ENV (or NODE_ENV) to "
            f"{allowed}, or pass --env"
        )
    raise EnvironmentRefused(
        f"refusing to seed: unknown environment {str(env)!r}; seeding runs only in {allowed}"
    )


async def seed(
    env: str | Environment | None = None,
    *,
    users: int = 0,
    database_url: str | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> SeedReport:
    """Seed the fixtures, and top the synthetic users up to ``users``, in one transaction.

    Fixtures: :data:`FIXTURE_ORGANIZATIONS`, and :data:`FIXTURE_USERS` with
    their profiles, memberships and credential accounts. Rows already there
    (by id, e-mail, slug or membership) are left exactly as they are.

    Synthetic users ``1..users`` (``synthetic-000001@example.com``...) each get
    a profile, a membership of a fixture organization and a credential
    account; those numbered at or below the highest one present are not
    written again. They are written with ``COPY``, ``batch_size`` at a time.

    :param env: ``development`` or ``test``; ``None`` reads ``APP_ENV``, else
        ``NODE_ENV``.
    :param users: How many synthetic users should exist afterwards.
    :param database_url: The database; ``None`` means ``DATABASE_URL``, and
        without it the database of Piccolo's engine.
    :param settings: Where the environment (when ``env`` is ``None``) and
        ``DATABASE_URL`` come from; read from the process environment when ``None``.
    :param progress: Called with ``(written, to_write)`` synthetic users before
        the first batch and after each one.
    :param batch_size: Synthetic users per ``COPY`` round.
    :raises EnvironmentRefused: the environment is not development or test,
        or the database was bootstrapped as a deployed one; nothing was written.
    :raises InvalidInputError: ``users`` or ``batch_size`` is out of range.
    :raises ConfigurationError: the database has no orgschema tables.
    :raises DatabaseUnavailable: the server cannot be reached.
    :returns: How many rows of each kind were added.
    """
    started = time.perf_counter()
    settings = settings or Settings.from_env()
    if env is None:
        env = settings.environment
    environment = check_environment(env)
    check_fixtures()
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        raise InvalidInputError(
            f"users must be a whole number, 0 or more, not {users!r}", field="users"
        )
    if batch_size < 1:
        raise InvalidInputError(
            f"batch_size must be 1 or more, not {batch_size}", field="batch_size"
        )
    hashed = await hash_password(DEVELOPMENT_PASSWORD)
    async with connection(database_url or settings.database_url) as conn:
        try:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SETUP_LOCK_KEY)
                await _refuse_marked_database(conn)
                counts = await _seed_fixtures(conn, hashed)
                organization_ids = [
                    await conn.fetchval("SELECT id FROM organization WHERE slug = $1", org.slug)
                    for org in FIXTURE_ORGANIZATIONS
                ]
                synthetic = await _seed_synthetic(
                    conn,
                    users,
                    [org_id for org_id in organization_ids if org_id is not None],
                    hashed,
                    progress,
                    batch_size,
                )
        except asyncpg.UndefinedTableError as exc:
            raise schema_missing(exc) from exc
    return SeedReport(
        environment=environment,
        organizations=counts["organizations"],
        users=counts["users"] + synthetic,
        accounts=counts["accounts"] + synthetic,
        profiles=counts["profiles"] + synthetic,
        memberships=counts["memberships"] + synthetic,
        synthetic_users=synthetic,
        seconds=time.perf_counter() - started,
    )


async def ensure_development_admin(
    env: str | Environment | None = None,
    *,
    database_url: str | None = None,
    settings: Settings | None = None,
) -> str | None:
    """Make sure a development or test database has a platform admin, restoring the fixture one.

    When no profile has the role ``platform_admin`` (say the fixture admin was
    demoted and no other admin is left), :data:`DEVELOPMENT_ADMIN` gets the
    role back, keeping its password; when no user has its e-mail any more,
    it is created afresh through :func:`~orgschema.bootstrap_first_admin`
    with :data:`DEVELOPMENT_PASSWORD`. While a platform admin exists, nothing
    changes. Run :func:`seed` first, so that the fixture admin exists.

    :param env: ``development`` or ``test``; ``None`` reads ``APP_ENV``, else
        ``NODE_ENV``.
    :param database_url: The database; ``None`` means ``DATABASE_URL``, and
        without it the database of Piccolo's engine.
    :param settings: Where the environment (when ``env`` is ``None``) and
        ``DATABASE_URL`` come from; read from the process environment when ``None``.
    :raises EnvironmentRefused: the environment is not development or test,
        or the database was bootstrapped as a deployed one; nothing was written.
    :raises ConfigurationError: the database has no orgschema tables.
    :raises DatabaseUnavailable: the server cannot be reached.
    :returns: The e-mail of the admin restored or created; ``None`` when a
        platform admin existed already.
    """
    settings = settings or Settings.from_env()
    environment = check_environment(settings.environment if env is None else env)
    url = database_url or settings.database_url
    async with connection(url) as conn:
        try:
            async with conn.transaction():
                # The bootstrap's lock: a first admin created meanwhile is seen here.
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SETUP_LOCK_KEY)
                await _refuse_marked_database(conn)
                if await platform_admin_exists(conn):
                    return None
                restored = await conn.fetchval(
                    'INSERT INTO profile (user_id, role) SELECT id, $1 FROM "user" WHERE email = $2 '
                    "ON CONFLICT (user_id) DO UPDATE SET role = EXCLUDED.role, "
                    "updated_at = CURRENT_TIMESTAMP RETURNING 1",
                    Role.PLATFORM_ADMIN.value,
                    DEVELOPMENT_ADMIN.email,
                )
        except asyncpg.UndefinedTableError as exc:
            raise schema_missing(exc) from exc
    if restored:
        return DEVELOPMENT_ADMIN.email
    # Nobody has the fixture admin's e-mail now (it was changed or the user
    # deleted): create the admin the way a deployment creates its first one.
    try:
        report = await bootstrap_first_admin(
            email=DEVELOPMENT_ADMIN.email,
            password=DEVELOPMENT_PASSWORD,
            name=DEVELOPMENT_ADMIN.name,
            database_url=url,
            settings=replace(settings, environment=environment.value),
        )
    except AlreadyBootstrapped:
        return None  # another one was created meanwhile: what was wanted
    return report.email


async def _refuse_marked_database(conn: asyncpg.Connection) -> None:
    marker = await conn.fetchrow(
        "SELECT environment, created_at FROM environment_marker ORDER BY id LIMIT 1"
    )
    if marker is not None:
        environment = marker["environment"] or "an unset environment"
        raise EnvironmentRefused(
            f"refusing to seed: this database was bootstrapped under {environment} on "
            f"{marker['created_at']:%Y-%m-%d} (see table environment_marker), whatever "
            "APP_ENV says now; seed a development database instead"
        )


async def _seed_fixtures(conn: asyncpg.Connection, hashed: str) -> dict[str, int]:
    counts = dict.fromkeys(("organizations", "users", "accounts", "profiles", "memberships"), 0)
    for org in FIXTURE_ORGANIZATIONS:
        added = await conn.fetchval(
            "INSERT INTO organization (id, name, slug) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            fixture_organization_id(org.slug),
            org.name,
            org.slug,
        )
        counts["organizations"] += added or 0
    organization_ids = {
        row["slug"]: row["id"]
        for row in await conn.fetch(
            "SELECT id, slug FROM organization WHERE slug = ANY($1::text[])",
            [org.slug for org in FIXTURE_ORGANIZATIONS],
        )
    }
    for user in FIXTURE_USERS:
        added = await conn.fetchval(
            'INSERT INTO "user" (id, name, email, "emailVerified") VALUES ($1, $2, $3, true) '
            "ON CONFLICT DO NOTHING RETURNING 1",
            fixture_user_id(user.email),
            user.name,
            user.email,
        )
        counts["users"] += added or 0
        # The e-mail may belong to a user created some other way (say, signed
        # up through Better-auth); complete that user rather than fail.
        user_id = await conn.fetchval('SELECT id FROM "user" WHERE email = $1', user.email)
        if user_id is None:
            continue  # the fixture's id was taken by a user whose e-mail changed
        added = await conn.fetchval(
            'INSERT INTO account (id, "accountId", "providerId", "userId", password, "updatedAt") '
            "SELECT $1, $2, 'credential', $2, $3, now() WHERE NOT EXISTS "
            '(SELECT 1 FROM account WHERE "userId" = $2 AND "providerId" = \'credential\') '
            "ON CONFLICT DO NOTHING RETURNING 1",
            _fixed_text_id(f"account {user.email}"),
            user_id,
            hashed,
        )
        counts["accounts"] += added or 0
        home = organization_ids.get(user.memberships[0][0]) if user.memberships else None
        added = await conn.fetchval(
            "INSERT INTO profile (id, user_id, role, organization_id) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            uuid.uuid5(_NAMESPACE, f"profile {user.email}"),
            user_id,
            user.role.value,
            home,
        )
        counts["profiles"] += added or 0
        for slug, role in user.memberships:
            if slug not in organization_ids:
                continue
            added = await conn.fetchval(
                "INSERT INTO organization_user (id, organization_id, user_id, role) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
                uuid.uuid5(_NAMESPACE, f"membership {slug} {user.email}"),
                organization_ids[slug],
                user_id,
                role.value,
            )
            counts["memberships"] += added or 0
    return counts


async def _seed_synthetic(
    conn: asyncpg.Connection,
    users: int,
    organization_ids: Sequence[uuid.UUID],
    hashed: str,
    progress: Progress | None,
    batch_size: int,
) -> int:
    if users == 0 or not organization_ids:
        return 0
    highest = await conn.fetchval(
        "SELECT coalesce(max(substring(email FROM '^synthetic-([0-9]+)@example\\.com$')::bigint), 0) "
        "FROM \"user\" WHERE email LIKE 'synthetic-%@example.com'"
    )
    numbers = range(highest + 1, users + 1)
    if progress is not None:
        progress(0, len(numbers))
    roles = list(MembershipRole)
    now = datetime.now(UTC)
    written = 0
    for batch in _chunks(numbers, batch_size):
        user_rows = []
        account_rows = []
        profile_rows = []
        membership_rows = []
        for number in batch:
            user_id = generate_id()
            organization_id = organization_ids[number % len(organization_ids)]
            role = roles[number % len(roles)].value
            user_rows.append(
                (
                    user_id,
                    f"Synthetic User {number:06d}",
                    SYNTHETIC_EMAIL.format(number),
                    True,
                    now,
                    now,
                )
            )
            account_rows.append((generate_id(), user_id, "credential", user_id, hashed, now, now))
            profile_rows.append((user_id, role, organization_id))
            membership_rows.append((organization_id, user_id, role))
        # Profile and membership ids and the domain timestamps come from the
        # columns' database defaults.
        await conn.copy_records_to_table("user", records=user_rows, columns=_USER_COLUMNS)
        await conn.copy_records_to_table("account", records=account_rows, columns=_ACCOUNT_COLUMNS)
        await conn.copy_records_to_table("profile", records=profile_rows, columns=_PROFILE_COLUMNS)
        await conn.copy_records_to_table(
            "organization_user", records=membership_rows, columns=_MEMBERSHIP_COLUMNS
        )
        written += len(batch)
        if progress is not None:
            progress(written, len(numbers))
    return written


_USER_COLUMNS = ("id", "name", "email", "emailVerified", "createdAt", "updatedAt")
_ACCOUNT_COLUMNS = (
    "id",
    "accountId",
    "providerId",
    "userId",
    "password",
    "createdAt",
    "updatedAt",
)
_PROFILE_COLUMNS = ("user_id", "role", "organization_id")
_MEMBERSHIP_COLUMNS = ("organization_id", "user_id", "role")


def _chunks(numbers: range, size: int) -> Iterator[range]:
    for start in range(0, len(numbers), size):
        yield numbers[start : start + size]
