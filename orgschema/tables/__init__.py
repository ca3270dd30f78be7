"""Every table orgschema owns, importable from one place.

The modules mirror the original system's ``schema/{auth,profiles,organizations}``
split; :data:`ALL_TABLES` lists the classes in foreign-key order (a table comes
after every table it references).
"""

from __future__ import annotations

from piccolo.table import Table

from orgschema.tables.auth import Account, Session, User, Verification
from orgschema.tables.organizations import Organization, OrganizationUser
from orgschema.tables.profiles import Profile
from orgschema.tables.setup import EnvironmentMarker

ALL_TABLES: tuple[type[Table], ...] = (
    User,
    Session,
    Account,
    Verification,
    Organization,
    OrganizationUser,
    Profile,
    EnvironmentMarker,
)

__all__ = [
    "ALL_TABLES",
    "Account",
    "EnvironmentMarker",
    "Organization",
    "OrganizationUser",
    "Profile",
    "Session",
    "User",
    "Verification",
]
