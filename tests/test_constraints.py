"""Bad data is refused by the database itself, with the constraint a user would see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from orgschema import (
    MembershipRole,
    Organization,
    OrganizationUser,
    Profile,
    Role,
    Session,
    User,
)

pytestmark = pytest.mark.usefixtures("clean_tables")


async def make_user(email: str = "ada@example.com") -> User:
    user = User(id=uuid.uuid4().hex, name="Ada", email=email, emailVerified=False)
    await user.save().run()
    return user


async def make_organization(slug: str = "lovelace-academy") -> Organization:
    organization = Organization(name="Lovelace Academy", slug=slug)
    await organization.save().run()
    return organization


async def constraint_violated(query: object) -> str:
    """Run a Piccolo query that must fail and return the violated constraint's name."""
    with pytest.raises(asyncpg.IntegrityConstraintViolationError) as raised:
        await query.run()  # type: ignore[attr-defined]
    return raised.value.constraint_name  # type: ignore[attr-defined]


async def test_duplicate_email_is_refused() -> None:
    await make_user("ada@example.com")
    duplicate = User(id="other", name="Ada 2", email="ada@example.com", emailVerified=True)
    assert await constraint_violated(duplicate.save()) == "user_email_key"


async def test_mixed_case_email_is_refused() -> None:
    user = User(id="u1", name="Ada", email="Ada@Example.com", emailVerified=False)
    assert await constraint_violated(user.save()) == "user_email_lower_check"


async def test_profile_role_outside_the_list_is_refused() -> None:
    user = await make_user()
    profile = Profile(user_id=user.id, role="superuser")
    assert await constraint_violated(profile.save()) == "profile_role_check"


async def test_every_role_is_accepted_on_a_profile() -> None:
    for role in Role:
        user = await make_user(f"{role.value}@example.com")
        await Profile(user_id=user.id, role=role.value).save().run()
    assert await Profile.count().run() == len(Role)


async def test_platform_admin_is_not_a_membership_role() -> None:
    user = await make_user()
    organization = await make_organization()
    membership = OrganizationUser(
        organization_id=organization.id, user_id=user.id, role=Role.PLATFORM_ADMIN.value
    )
    assert await constraint_violated(membership.save()) == "organization_user_role_check"


async def test_duplicate_membership_is_refused() -> None:
    user = await make_user()
    organization = await make_organization()
    await OrganizationUser(organization_id=organization.id, user_id=user.id).save().run()
    again = OrganizationUser(
        organization_id=organization.id, user_id=user.id, role=MembershipRole.COACH.value
    )
    assert (
        await constraint_violated(again.save())
        == "organization_user_organization_id_user_id_unique"
    )


@pytest.mark.parametrize(
    "slug", ["Upper", "two--hyphens", "-leading", "trailing-", "under_score", "sp ace", ""]
)
async def test_bad_slug_is_refused(slug: str) -> None:
    organization = Organization(name="Bad", slug=slug)
    assert await constraint_violated(organization.save()) == "organization_slug_check"


async def test_good_slugs_are_accepted() -> None:
    for slug in ("a", "abc-123", "x1-y2-z3"):
        await make_organization(slug)
    assert await Organization.count().run() == 3


async def test_one_profile_per_user() -> None:
    user = await make_user()
    await Profile(user_id=user.id).save().run()
    assert await constraint_violated(Profile(user_id=user.id).save()) == "profile_user_id_key"


async def test_defaults_come_from_the_database() -> None:
    """Rows written by another client (here raw SQL) get the contract's defaults."""
    user = await make_user()
    organization = await make_organization()
    await Profile.raw("INSERT INTO profile (user_id) VALUES ({})", user.id).run()
    await OrganizationUser.raw(
        "INSERT INTO organization_user (organization_id, user_id) VALUES ({}, {})",
        organization.id,
        user.id,
    ).run()
    profile = await Profile.objects().first().run()
    membership = await OrganizationUser.objects().first().run()
    assert (profile.role, membership.role) == ("teacher", "teacher")
    assert isinstance(profile.id, uuid.UUID) and profile.organization_id is None


async def test_deleting_a_user_cascades_to_everything_of_theirs() -> None:
    user = await make_user()
    organization = await make_organization()
    await Profile(user_id=user.id, organization_id=organization.id).save().run()
    await OrganizationUser(organization_id=organization.id, user_id=user.id).save().run()
    await (
        Session(
            id="s1",
            token="t1",
            userId=user.id,
            expiresAt=datetime.now(UTC) + timedelta(days=1),
            updatedAt=datetime.now(UTC),
        )
        .save()
        .run()
    )
    await User.delete().where(User.id == user.id).run()
    assert [await t.count().run() for t in (Profile, OrganizationUser, Session)] == [0, 0, 0]
    assert await Organization.count().run() == 1


async def test_deleting_an_organization_that_profiles_point_at_fails() -> None:
    user = await make_user()
    organization = await make_organization()
    await Profile(user_id=user.id, organization_id=organization.id).save().run()
    delete = Organization.delete().where(Organization.id == organization.id)
    assert await constraint_violated(delete) == "profile_organization_id_fkey"
    assert await Organization.count().run() == 1


async def test_deleting_an_organization_removes_its_memberships() -> None:
    user = await make_user()
    organization = await make_organization()
    await OrganizationUser(organization_id=organization.id, user_id=user.id).save().run()
    await Organization.delete().where(Organization.id == organization.id).run()
    assert await OrganizationUser.count().run() == 0


async def test_updated_at_moves_forward_on_update() -> None:
    user = await make_user()
    await Profile(user_id=user.id).save().run()
    past = datetime(2000, 1, 1)
    await Profile.raw("UPDATE profile SET updated_at = {}", past).run()
    await Profile.update({Profile.role: Role.COACH.value}, force=True).run()
    profile = await Profile.objects().first().run()
    assert profile.updated_at > past + timedelta(days=365)
    organization = await make_organization()
    await Organization.raw("UPDATE organization SET updated_at = {}", past).run()
    organization.name = "Renamed"
    await organization.save().run()
    reloaded = await Organization.objects().get(Organization.id == organization.id).run()
    assert reloaded.updated_at > past + timedelta(days=365)
