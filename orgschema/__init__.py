"""orgschema: the PostgreSQL schema of the auth, profile and organization domain, on Piccolo."""

from orgschema.errors import (
    AlreadyBootstrapped,
    AppliedMigrationModified,
    BootstrapError,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailable,
    EnvironmentRefused,
    InvalidInputError,
    MigrationError,
    MigrationFailed,
    MigrationLockTimeout,
    NotFoundError,
    OrgschemaError,
    SchemaDriftError,
    SetupTokenRejected,
    UnknownAppliedMigration,
)
from orgschema.migrator import MigrationReport, migrate
from orgschema.passwords import hash_password, verify_password
from orgschema.roles import MembershipRole, Role
from orgschema.settings import Settings
from orgschema.tables import (
    Account,
    Organization,
    OrganizationUser,
    Profile,
    Session,
    User,
    Verification,
)

__version__ = "0.1.0"

__all__ = [
    "Account",
    "AlreadyBootstrapped",
    "AppliedMigrationModified",
    "BootstrapError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseUnavailable",
    "EnvironmentRefused",
    "InvalidInputError",
    "MembershipRole",
    "MigrationError",
    "MigrationFailed",
    "MigrationLockTimeout",
    "MigrationReport",
    "NotFoundError",
    "Organization",
    "OrganizationUser",
    "OrgschemaError",
    "Profile",
    "Role",
    "SchemaDriftError",
    "Session",
    "Settings",
    "SetupTokenRejected",
    "UnknownAppliedMigration",
    "User",
    "Verification",
    "__version__",
    "hash_password",
    "migrate",
    "verify_password",
]
