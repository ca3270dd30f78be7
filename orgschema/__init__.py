"""orgschema: the PostgreSQL schema of the auth, profile and organization domain, on Piccolo."""

import typing

from orgschema.bootstrap import BootstrapReport, bootstrap_first_admin, setup_required
from orgschema.endpoints import first_run_app
from orgschema.environment import Environment
from orgschema.errors import (
    AlreadyBootstrapped,
    AlreadyMember,
    AppliedMigrationModified,
    BootstrapError,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailable,
    EmailTaken,
    EnvironmentRefused,
    InvalidInputError,
    MigrationError,
    MigrationFailed,
    MigrationLockTimeout,
    NotAMember,
    NotFoundError,
    OrgschemaError,
    SchemaDriftError,
    SetupTokenRejected,
    SlugTaken,
    UnknownAppliedMigration,
    UnknownOrganization,
    UnknownUser,
)
from orgschema.ids import generate_id
from orgschema.migrator import (
    AppliedMigration,
    CheckReport,
    MigrationReport,
    MigrationState,
    StatusReport,
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
from orgschema.roles import MembershipRole, Role
from orgschema.seeding import DEVELOPMENT_PASSWORD, SeedReport, seed
from orgschema.settings import Settings
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

if typing.TYPE_CHECKING:
    from orgschema.studio import create_studio, serve_studio

__version__ = "0.1.0"

# The studio pulls in Piccolo Admin, FastAPI and uvicorn: imported on first
# use (PEP 562), so `import orgschema` stays light for services without it.
_LAZY_EXPORTS = {"create_studio": "orgschema.studio", "serve_studio": "orgschema.studio"}

__all__ = [
    "Account",
    "AlreadyBootstrapped",
    "AlreadyMember",
    "AppliedMigration",
    "AppliedMigrationModified",
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
    "InvalidInputError",
    "Member",
    "MemberPage",
    "Membership",
    "MembershipRole",
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
    "Profile",
    "ProfileRecord",
    "Role",
    "SchemaDriftError",
    "SeedReport",
    "Session",
    "Settings",
    "SetupTokenRejected",
    "SlugTaken",
    "StatusReport",
    "UnknownAppliedMigration",
    "UnknownOrganization",
    "UnknownUser",
    "User",
    "Verification",
    "__version__",
    "add_member",
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
    "remove_member",
    "seed",
    "serve_studio",
    "set_profile_role",
    "setup_required",
    "slugify",
    "verify_password",
]


def __getattr__(name: str) -> typing.Any:
    if name in _LAZY_EXPORTS:
        import importlib

        value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
