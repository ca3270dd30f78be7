"""The domain helpers services call every day, on Piccolo's engine, with typed refusals."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from orgschema import (
    AlreadyMember,
    ConflictError,
    InvalidInputError,
    MembershipRole,
    NotAMember,
    NotFoundError,
    Organization,
    OrgschemaError,
    Role,
    SlugTaken,
    UnknownOrganization,
    UnknownUser,
    User,
    add_member,
    change_member_role,
    create_organization,
    list_members,
    list_memberships,
    remove_member,
    set_profile_role,
    slugify,
)
from orgschema.ids import generate_id

pytestmark = pytest.mark.usefixtures("clean_tables")


async def make_user(email: str, name: str = "Someone") -> str:
    user_id = generate_id()
    await User(id=user_id, name=name, email=email, emailVerified=True).save().run()
    return user_id


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Acme School", "acme-school"),
        ("  École Saint-Exupéry (Nord) ", "ecole-saint-exupery-nord"),
        ("A -- B__C", "a-b-c"),
        ("Ｆｕｌｌ Width 2", "full-width-2"),
        ("東京", ""),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


async def test_create_organization_makes_the_slug_from_the_name() -> None:
    org = await create_organization("  North Shore Academy ")
    assert (org.name, org.slug) == ("North Shore Academy", "north-shore-academy")
    assert isinstance(org.id, uuid.UUID)
    stored = await Organization.objects().get(Organization.id == org.id).run()
    assert stored.slug == "north-shore-academy"


async def test_create_organization_keeps_a_given_slug_and_refuses_a_taken_one() -> None:
    await create_organization("North", slug="north-1")
    with pytest.raises(SlugTaken) as taken:
        await create_organization("North Again", slug="north-1")
    assert isinstance(taken.value, ConflictError) and taken.value.field == "slug"
    with pytest.raises(SlugTaken):
        await create_organization("North 1")  # slugifies to the same
    assert await Organization.count().run() == 1


@pytest.mark.parametrize(
    ("name", "slug", "field"),
    [
        ("", None, "name"),
        ("   ", None, "name"),
        ("x" * 201, None, "name"),
        ("東京", None, "slug"),
        ("Ok", "Not A Slug", "slug"),
        ("Ok", "trailing-", "slug"),
        ("Ok", "", "slug"),
    ],
)
async def test_create_organization_refuses_bad_names_and_slugs(
    name: str, slug: str | None, field: str
) -> None:
    with pytest.raises(InvalidInputError) as invalid:
        await create_organization(name, slug=slug)
    assert invalid.value.field == field
    assert await Organization.count().run() == 0


async def test_membership_lifecycle() -> None:
    org = await create_organization("Riverside")
    user = await make_user("member@example.com")

    added = await add_member(org.id, user, MembershipRole.COACH)
    assert (added.organization_id, added.user_id, added.role) == (
        org.id,
        user,
        MembershipRole.COACH,
    )
    assert (added.organization_name, added.organization_slug) == ("Riverside", "riverside")

    changed = await change_member_role(str(org.id), user, "manager")
    assert changed.role is MembershipRole.MANAGER

    assert [m.role for m in await list_memberships(user)] == [MembershipRole.MANAGER]
    await remove_member(org.id, user)
    assert await list_memberships(user) == []


async def test_add_member_refusals_are_typed() -> None:
    org = await create_organization("Hillcrest")
    user = await make_user("m@example.com")
    await add_member(org.id, user)

    with pytest.raises(AlreadyMember):
        await add_member(org.id, user, MembershipRole.MANAGER)
    with pytest.raises(UnknownUser) as unknown_user:
        await add_member(org.id, "no-such-user")
    with pytest.raises(UnknownOrganization) as unknown_org:
        await add_member(uuid.uuid4(), user)
    with pytest.raises(InvalidInputError, match="set_profile_role") as platform:
        await add_member(org.id, user, "platform_admin")
    with pytest.raises(InvalidInputError) as bad_id:
        await add_member("not-a-uuid", user)

    assert unknown_user.value.field == "user_id" and isinstance(unknown_user.value, NotFoundError)
    assert unknown_org.value.field == "organization_id"
    assert platform.value.field == "role"
    assert bad_id.value.field == "organization_id"
    for error in (unknown_user.value, unknown_org.value, platform.value, bad_id.value):
        assert isinstance(error, OrgschemaError)
        assert not isinstance(error, asyncpg.PostgresError)


async def test_change_and_remove_a_non_member_are_refused() -> None:
    org = await create_organization("Empty")
    user = await make_user("loner@example.com")
    with pytest.raises(NotAMember):
        await change_member_role(org.id, user, MembershipRole.COACH)
    with pytest.raises(NotAMember):
        await remove_member(org.id, user)
    with pytest.raises(InvalidInputError) as bad_role:
        await change_member_role(org.id, user, "janitor")
    assert bad_role.value.field == "role"


async def test_list_memberships_orders_by_organization_name() -> None:
    user = await make_user("multi@example.com")
    for name in ("Zeta", "Alpha", "Mid"):
        org = await create_organization(name)
        await add_member(org.id, user, MembershipRole.TEACHER)
    assert [m.organization_name for m in await list_memberships(user)] == ["Alpha", "Mid", "Zeta"]
    assert await list_memberships("nobody") == []


async def test_list_members_pages_by_email_without_gaps_or_repeats() -> None:
    org = await create_organization("Big School")
    emails = [f"member{n:02d}@example.com" for n in range(7)]
    for email in reversed(emails):
        await add_member(org.id, await make_user(email, name=email.split("@")[0]))

    pages = []
    cursor = None
    while True:
        page = await list_members(org.id, limit=3, after=cursor)
        pages.append([member.email for member in page.members])
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == [emails[0:3], emails[3:6], emails[6:7]]
    exact = await list_members(org.id, limit=7)
    assert len(exact.members) == 7 and exact.next_cursor is None
    assert exact.members[0].role is MembershipRole.TEACHER and exact.members[0].name == "member00"


async def test_list_members_refusals() -> None:
    org = await create_organization("Quiet")
    assert (await list_members(org.id)).members == ()
    with pytest.raises(UnknownOrganization):
        await list_members(uuid.uuid4())
    for limit in (0, 501, True):
        with pytest.raises(InvalidInputError) as invalid:
            await list_members(org.id, limit=limit)
        assert invalid.value.field == "limit"


async def test_set_profile_role_creates_then_updates() -> None:
    user = await make_user("p@example.com")
    created = await set_profile_role(user, Role.COACH)
    updated = await set_profile_role(user, "platform_admin")
    assert (created.role, updated.role) == (Role.COACH, Role.PLATFORM_ADMIN)
    assert updated.user_id == user and updated.organization_id is None
    with pytest.raises(UnknownUser):
        await set_profile_role("nobody", Role.TEACHER)
    with pytest.raises(InvalidInputError) as invalid:
        await set_profile_role(user, "owner")
    assert invalid.value.field == "role"


async def test_helpers_join_a_piccolo_transaction() -> None:
    user = await make_user("tx@example.com")

    with pytest.raises(AlreadyMember):  # noqa: PT012 -- the transaction as a whole raises
        async with Organization._meta.db.transaction():
            org = await create_organization("Atomic")
            await add_member(org.id, user)
            await add_member(org.id, user)  # refused: the whole transaction rolls back

    assert await Organization.count().run() == 0
    assert await list_memberships(user) == []
