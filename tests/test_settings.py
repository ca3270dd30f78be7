"""Configuration from the environment: validated eagerly, passwords never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from orgschema import ConfigurationError, Settings
from orgschema.settings import DEFAULT_EMBEDDED_DIR, mask_password


def test_from_env_reads_database_url_and_embedded_dir() -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://u:p@h:5432/db", "ORGSCHEMA_EMBEDDED_DIR": "/tmp/x"}
    )
    assert settings == Settings(
        database_url="postgresql://u:p@h:5432/db", embedded_dir=Path("/tmp/x")
    )


def test_empty_database_url_means_embedded() -> None:
    settings = Settings.from_env({"DATABASE_URL": ""})
    assert settings.database_url is None and settings.embedded_dir == DEFAULT_EMBEDDED_DIR


@pytest.mark.parametrize(
    "url",
    ["sqlite:///x.db", "postgresql://u:secret@host:5432", "postgresql://u:secret@host:port/db"],
)
def test_bad_urls_are_refused_without_showing_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"DATABASE_URL": url})
    assert "secret" not in str(raised.value)
    assert raised.value.exit_code == 3


def test_mask_password() -> None:
    assert mask_password("postgresql://u:pa55@h/db") == "postgresql://u:***@h/db"
    assert mask_password("postgresql://u@h/db") == "postgresql://u@h/db"


def test_repr_masks_passwords_and_hides_the_setup_token() -> None:
    settings = Settings(
        database_url="postgresql://app:hunter2@db:5432/app",
        migration_database_url="postgresql://owner:s3cret-owner@db:5432/app",
        setup_token="t0ken-value",
    )
    shown = repr(settings)
    assert "hunter2" not in shown and "s3cret-owner" not in shown and "t0ken-value" not in shown
    assert "postgresql://app:***@db:5432/app" in shown
    assert "postgresql://owner:***@db:5432/app" in shown


def test_admin_password_comes_from_the_environment_and_is_never_shown() -> None:
    settings = Settings.from_env({"ORGSCHEMA_ADMIN_PASSWORD": "correct horse battery"})
    assert settings.admin_password == "correct horse battery"
    assert "correct horse" not in repr(settings) and "correct horse" not in str(settings)
    assert Settings.from_env({"ORGSCHEMA_ADMIN_PASSWORD": ""}).admin_password is None


def test_migration_timeouts_and_retries_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "ORGSCHEMA_LOCK_TIMEOUT": "0",
            "ORGSCHEMA_DDL_LOCK_TIMEOUT": "2.5",
            "ORGSCHEMA_DDL_RETRIES": "7",
            "ORGSCHEMA_STATEMENT_TIMEOUT": "600",
            "ORGSCHEMA_CONNECT_TIMEOUT": "3",
        }
    )
    assert (settings.lock_timeout, settings.ddl_lock_timeout, settings.ddl_retries) == (0, 2.5, 7)
    assert (settings.statement_timeout, settings.connect_timeout) == (600, 3)
    defaults = Settings.from_env({})
    assert (defaults.lock_timeout, defaults.ddl_lock_timeout, defaults.ddl_retries) == (60, 5, 4)
    assert (defaults.statement_timeout, defaults.connect_timeout) == (None, None)


@pytest.mark.parametrize(
    "field",
    ["lock_timeout", "ddl_lock_timeout", "statement_timeout", "connect_timeout"],
)
@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1.0, 2147483.648, True])
def test_timeouts_out_of_postgresqls_range_are_refused(field: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match="must be a number of seconds") as raised:
        Settings(**{field: value})  # type: ignore[arg-type]
    assert raised.value.exit_code == 3


def test_the_largest_timeout_postgresql_takes_is_accepted() -> None:
    assert Settings(ddl_lock_timeout=2147483.647).ddl_lock_timeout == 2147483.647


@pytest.mark.parametrize("value", [-1, 101, 2.5, True])
def test_bad_retry_counts_are_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="--ddl-retries"):
        Settings(ddl_retries=value)  # type: ignore[arg-type]
