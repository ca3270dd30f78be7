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
