"""The schema contract: what a migrated database must hold, column for column.

Written from the specification (Better-auth 1.7's PostgreSQL schema and the
original system's SQL), in the catalog's own spelling, so a test compares the
live database against it and nothing else.
"""

from __future__ import annotations

TZ = "timestamp with time zone"
NAIVE = "timestamp without time zone"
# The catalog reader spells now() as CURRENT_TIMESTAMP: PostgreSQL runs the same
# function for both (the original used now(), Piccolo writes CURRENT_TIMESTAMP).
NOW = "CURRENT_TIMESTAMP"
UUID_DEFAULT = "gen_random_uuid()"

COLUMNS: dict[str, list[tuple[str, str, bool, str | None]]] = {
    "user": [
        ("id", "text", False, None),
        ("name", "text", False, None),
        ("email", "text", False, None),
        ("emailVerified", "boolean", False, None),
        ("image", "text", True, None),
        ("createdAt", TZ, False, NOW),
        ("updatedAt", TZ, False, NOW),
    ],
    "session": [
        ("id", "text", False, None),
        ("expiresAt", TZ, False, None),
        ("token", "text", False, None),
        ("createdAt", TZ, False, NOW),
        ("updatedAt", TZ, False, None),
        ("ipAddress", "text", True, None),
        ("userAgent", "text", True, None),
        ("userId", "text", False, None),
    ],
    "account": [
        ("id", "text", False, None),
        ("accountId", "text", False, None),
        ("providerId", "text", False, None),
        ("userId", "text", False, None),
        ("accessToken", "text", True, None),
        ("refreshToken", "text", True, None),
        ("idToken", "text", True, None),
        ("accessTokenExpiresAt", TZ, True, None),
        ("refreshTokenExpiresAt", TZ, True, None),
        ("scope", "text", True, None),
        ("password", "text", True, None),
        ("createdAt", TZ, False, NOW),
        ("updatedAt", TZ, False, None),
    ],
    "verification": [
        ("id", "text", False, None),
        ("identifier", "text", False, None),
        ("value", "text", False, None),
        ("expiresAt", TZ, False, None),
        ("createdAt", TZ, False, NOW),
        ("updatedAt", TZ, False, NOW),
    ],
    "organization": [
        ("id", "uuid", False, UUID_DEFAULT),
        ("name", "text", False, None),
        ("slug", "text", False, None),
        ("created_at", NAIVE, False, NOW),
        ("updated_at", NAIVE, False, NOW),
    ],
    "organization_user": [
        ("id", "uuid", False, UUID_DEFAULT),
        ("organization_id", "uuid", False, None),
        ("user_id", "text", False, None),
        ("role", "text", False, "'teacher'::text"),
        ("created_at", NAIVE, False, NOW),
    ],
    "profile": [
        ("id", "uuid", False, UUID_DEFAULT),
        ("user_id", "text", False, None),
        ("role", "text", False, "'teacher'::text"),
        ("organization_id", "uuid", True, None),
        ("created_at", NAIVE, False, NOW),
        ("updated_at", NAIVE, False, NOW),
    ],
    "environment_marker": [
        ("id", "integer", False, "nextval('environment_marker_id_seq'::regclass)"),
        ("environment", "text", True, None),
        ("created_at", TZ, False, NOW),
    ],
}

_MEMBER_ROLES = "'organization_admin'::text, 'manager'::text, 'coach'::text, 'teacher'::text"

# (table, name, contype, pg_get_constraintdef). A foreign key without
# "ON DELETE" is NO ACTION, PostgreSQL's default, which it does not print.
CONSTRAINTS: set[tuple[str, str, str, str]] = {
    ("user", "user_pkey", "p", "PRIMARY KEY (id)"),
    ("user", "user_email_key", "u", "UNIQUE (email)"),
    ("user", "user_email_lower_check", "c", "CHECK ((email = lower(email)))"),
    ("session", "session_pkey", "p", "PRIMARY KEY (id)"),
    ("session", "session_token_key", "u", "UNIQUE (token)"),
    (
        "session",
        "session_userId_fkey",
        "f",
        'FOREIGN KEY ("userId") REFERENCES "user"(id) ON DELETE CASCADE',
    ),
    ("account", "account_pkey", "p", "PRIMARY KEY (id)"),
    (
        "account",
        "account_userId_fkey",
        "f",
        'FOREIGN KEY ("userId") REFERENCES "user"(id) ON DELETE CASCADE',
    ),
    ("verification", "verification_pkey", "p", "PRIMARY KEY (id)"),
    ("organization", "organization_pkey", "p", "PRIMARY KEY (id)"),
    ("organization", "organization_slug_key", "u", "UNIQUE (slug)"),
    (
        "organization",
        "organization_slug_check",
        "c",
        "CHECK ((slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'::text))",
    ),
    ("organization_user", "organization_user_pkey", "p", "PRIMARY KEY (id)"),
    (
        "organization_user",
        "organization_user_organization_id_fkey",
        "f",
        "FOREIGN KEY (organization_id) REFERENCES organization(id) ON DELETE CASCADE",
    ),
    (
        "organization_user",
        "organization_user_user_id_fkey",
        "f",
        'FOREIGN KEY (user_id) REFERENCES "user"(id) ON DELETE CASCADE',
    ),
    (
        "organization_user",
        "organization_user_organization_id_user_id_unique",
        "u",
        "UNIQUE (organization_id, user_id)",
    ),
    (
        "organization_user",
        "organization_user_role_check",
        "c",
        f"CHECK ((role = ANY (ARRAY[{_MEMBER_ROLES}])))",
    ),
    ("profile", "profile_pkey", "p", "PRIMARY KEY (id)"),
    ("profile", "profile_user_id_key", "u", "UNIQUE (user_id)"),
    (
        "profile",
        "profile_user_id_fkey",
        "f",
        'FOREIGN KEY (user_id) REFERENCES "user"(id) ON DELETE CASCADE',
    ),
    (
        "profile",
        "profile_organization_id_fkey",
        "f",
        "FOREIGN KEY (organization_id) REFERENCES organization(id)",
    ),
    (
        "profile",
        "profile_role_check",
        "c",
        f"CHECK ((role = ANY (ARRAY['platform_admin'::text, {_MEMBER_ROLES}])))",
    ),
    ("environment_marker", "environment_marker_pkey", "p", "PRIMARY KEY (id)"),
}

# Indexes that back no constraint: (table, name, pg_get_indexdef).
INDEXES: set[tuple[str, str, str]] = {
    (
        "session",
        "session_userId_idx",
        'CREATE INDEX "session_userId_idx" ON session USING btree ("userId")',
    ),
    (
        "account",
        "account_userId_idx",
        'CREATE INDEX "account_userId_idx" ON account USING btree ("userId")',
    ),
    (
        "verification",
        "verification_identifier_idx",
        "CREATE INDEX verification_identifier_idx ON verification USING btree (identifier)",
    ),
    (
        "organization_user",
        "organization_user_user_id",
        "CREATE INDEX organization_user_user_id ON organization_user USING btree (user_id)",
    ),
    (
        "profile",
        "profile_organization_id",
        "CREATE INDEX profile_organization_id ON profile USING btree (organization_id)",
    ),
}
