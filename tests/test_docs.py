"""The documentation's examples run, and its claims about the schema hold."""

from __future__ import annotations

import re
from pathlib import Path

from tests.contract import CONSTRAINTS, INDEXES

ROOT = Path(__file__).resolve().parent.parent


def test_schema_doc_names_every_constraint_and_index() -> None:
    text = (ROOT / "docs" / "schema.md").read_text()
    named = {name for _table, name, kind, _def in CONSTRAINTS if kind in "uc"}
    named |= {name for _table, name, _def in INDEXES}
    assert sorted(name for name in named if f"`{name}`" not in text) == []


def test_configuration_doc_names_every_environment_variable_read() -> None:
    import inspect

    from orgschema.settings import Settings

    names = set(
        re.findall(r"""env\.get\(["']([A-Z][A-Z0-9_]+)["']""", inspect.getsource(Settings.from_env))
    )
    assert {"DATABASE_URL", "SETUP_TOKEN", "ORGSCHEMA_ADMIN_PASSWORD"} <= names
    # Anything else the package or its tests read straight from the environment.
    for path in [*(ROOT / "orgschema").rglob("*.py"), *(ROOT / "tests").glob("*.py")]:
        names |= set(
            re.findall(
                r"""(?:environ\.get\(|environ\[|getenv\()["']([A-Z][A-Z0-9_]+)["']""",
                path.read_text(),
            )
        )
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert sorted(name for name in names if f"`{name}`" not in text) == []
