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
    assert settings == Settings(database_url="postgresql://u:p@h:5432/db", embedded_dir=Path("/tmp/x"))


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
