"""orgschema: the PostgreSQL schema of the auth, profile and organization domain, on Piccolo.

``import orgschema`` loads only the errors and the roles (standard library
alone). Every other public name (the tables, the settings, the migrator,
seeding, the bootstrap, the domain helpers, authentication, the studio, the
first-run endpoint) is imported on first use (PEP 562): a service pays for what it
uses, the ``orgschema`` command starts without Piccolo until a command needs
it, and ``from orgschema import User, migrate`` works as before.
"""

import importlib
import typing

from orgschema.errors import (
    AlreadyBootstrapped,
    AlreadyMember,
    AppliedMigrationModified,
    BaselineRequired,
    BootstrapError,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailable,
    EmailTaken,
    EnvironmentRefused,
    InvalidInputError,
    MigrationBlocked,
    MigrationConnectionLost,
    MigrationError,
    MigrationFailed,
    MigrationLockTimeout,
    NotAMember,
    NotFoundError,
    OrgschemaError,
    PoolerRefused,
    ReadOnlyRefused,
    SchemaDriftError,
    SetupTokenRejected,
    SlugTaken,
    UnknownAppliedMigration,
    UnknownOrganization,
    UnknownUser,
)
from orgschema.roles import MembershipRole, Role

if typing.TYPE_CHECKING:
    from orgschema.auth import (
        AuthDependencies,
        BetterAuthBackend,
        Identity,
        authenticate,
        revoke_session,
        revoke_sessions,
    )
    from orgschema.bootstrap import BootstrapReport, bootstrap_first_admin, setup_required
    from orgschema.endpoints import first_run_app
    from orgschema.environment import Environment
    from orgschema.ids import generate_id
    from orgschema.migrator import (
        AppliedMigration,
        CheckReport,
        MigrationReport,
        MigrationState,
        StatusReport,
        UntrackedTables,
        check_migrations,
        migrate,
        migration_status,
    )
    from orgschema.organizations import (
        Member,
        MemberPage,
        Membership,
        OrganizationRecord,
        add_member,
        change_member_role,
        create_organization,
        list_members,
        list_memberships,
        remove_member,
        slugify,
    )
    from orgschema.passwords import hash_password, verify_password
    from orgschema.profiles import ProfileRecord, set_profile_role
    from orgschema.secret_columns import SECRET_COLUMNS, SecretColumn, redact
    from orgschema.seeding import DEVELOPMENT_PASSWORD, SeedReport, seed
    from orgschema.settings import Settings
    from orgschema.studio import StudioLimits, create_studio, serve_studio
    from orgschema.tables import (
        Account,
        EnvironmentMarker,
        Organization,
        OrganizationUser,
        Profile,
        Session,
        User,
        Verification,
    )
    from orgschema.validation import normalise_email, normalise_name

__version__ = "0.1.0"

# Which module defines each name loaded on first use; the TYPE_CHECKING
# imports above say the same to type checkers (tests/test_public_api.py
# checks that the two agree).
_LAZY_EXPORTS: dict[str, str] = {
    name: module
    for module, names in {
        "orgschema.auth": (
            "AuthDependencies",
            "BetterAuthBackend",
            "Identity",
            "authenticate",
            "revoke_session",
            "revoke_sessions",
        ),
        "orgschema.bootstrap": ("BootstrapReport", "bootstrap_first_admin", "setup_required"),
        "orgschema.endpoints": ("first_run_app",),
        "orgschema.environment": ("Environment",),
        "orgschema.ids": ("generate_id",),
        "orgschema.migrator": (
            "AppliedMigration",
            "CheckReport",
            "MigrationReport",
            "MigrationState",
            "StatusReport",
            "UntrackedTables",
            "check_migrations",
            "migrate",
            "migration_status",
        ),
        "orgschema.organizations": (
            "Member",
            "MemberPage",
            "Membership",
            "OrganizationRecord",
            "add_member",
            "change_member_role",
            "create_organization",
            "list_members",
            "list_memberships",
            "remove_member",
            "slugify",
        ),
        "orgschema.passwords": ("hash_password", "verify_password"),
        "orgschema.profiles": ("ProfileRecord", "set_profile_role"),
        "orgschema.secret_columns": ("SECRET_COLUMNS", "SecretColumn", "redact"),
        "orgschema.seeding": ("DEVELOPMENT_PASSWORD", "SeedReport", "seed"),
        "orgschema.settings": ("Settings",),
        "orgschema.studio": ("StudioLimits", "create_studio", "serve_studio"),
        "orgschema.tables": (
            "Account",
            "EnvironmentMarker",
            "Organization",
            "OrganizationUser",
            "Profile",
            "Session",
            "User",
            "Verification",
        ),
        "orgschema.validation": ("normalise_email", "normalise_name"),
    }.items()
    for name in names
}

__all__ = [
    "Account",
    "AlreadyBootstrapped",
    "AlreadyMember",
    "AppliedMigration",
    "AppliedMigrationModified",
    "AuthDependencies",
    "BaselineRequired",
    "BetterAuthBackend",
    "BootstrapError",
    "BootstrapReport",
    "CheckReport",
    "ConfigurationError",
    "ConflictError",
    "DEVELOPMENT_PASSWORD",
    "DatabaseUnavailable",
    "EmailTaken",
    "Environment",
    "EnvironmentMarker",
    "EnvironmentRefused",
    "Identity",
    "InvalidInputError",
    "Member",
    "MemberPage",
    "Membership",
    "MembershipRole",
    "MigrationBlocked",
    "MigrationConnectionLost",
    "MigrationError",
    "MigrationFailed",
    "MigrationLockTimeout",
    "MigrationReport",
    "MigrationState",
    "NotAMember",
    "NotFoundError",
    "Organization",
    "OrganizationRecord",
    "OrganizationUser",
    "OrgschemaError",
    "PoolerRefused",
    "Profile",
    "ProfileRecord",
    "ReadOnlyRefused",
    "Role",
    "SECRET_COLUMNS",
    "SchemaDriftError",
    "SecretColumn",
    "SeedReport",
    "Session",
    "Settings",
    "SetupTokenRejected",
    "SlugTaken",
    "StatusReport",
    "StudioLimits",
    "UnknownAppliedMigration",
    "UnknownOrganization",
    "UnknownUser",
    "UntrackedTables",
    "User",
    "Verification",
    "__version__",
    "add_member",
    "authenticate",
    "bootstrap_first_admin",
    "change_member_role",
    "check_migrations",
    "create_organization",
    "create_studio",
    "first_run_app",
    "generate_id",
    "hash_password",
    "list_members",
    "list_memberships",
    "migrate",
    "migration_status",
    "normalise_email",
    "normalise_name",
    "redact",
    "remove_member",
    "revoke_session",
    "revoke_sessions",
    "seed",
    "serve_studio",
    "set_profile_role",
    "setup_required",
    "slugify",
    "verify_password",
]


def __getattr__(name: str) -> typing.Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
