"""orgschema: the PostgreSQL schema of the auth, profile and organization domain, on Piccolo."""

from orgschema.errors import (
    ConfigurationError,
    DatabaseUnavailable,
    MigrationError,
    MigrationFailed,
    OrgschemaError,
)
from orgschema.migrator import MigrationReport, migrate
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
    "ConfigurationError",
    "DatabaseUnavailable",
    "MembershipRole",
    "MigrationError",
    "MigrationFailed",
    "MigrationReport",
    "Organization",
    "OrganizationUser",
    "OrgschemaError",
    "Profile",
    "Role",
    "Session",
    "Settings",
    "User",
    "Verification",
    "__version__",
    "migrate",
]
