"""Fixtures of the migrator tests: a throwaway project on an empty throwaway database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.databases import MakeDatabase
from tests.migrator.kit import Project


@pytest.fixture
async def project(empty_database: MakeDatabase, tmp_path: Path) -> Project:
    """A project folder (no apps registered yet) on an empty database of its own."""
    return Project(path=tmp_path, database_url=await empty_database())
