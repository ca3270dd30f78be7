"""The documentation's examples run, and its claims about the schema hold."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from orgschema import Organization
from tests.contract import CONSTRAINTS, INDEXES

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.mark.usefixtures("clean_tables")
async def test_readme_usage_example_runs() -> None:
    (example,) = [block for block in python_blocks(ROOT / "README.md") if "await" in block]
    namespace: dict[str, object] = {}
    exec(  # noqa: S102 -- our own README
        "async def example():\n" + textwrap.indent(example, "    ") + "\n    return admins",
        namespace,
    )
    admins = await namespace["example"]()  # type: ignore[operator]
    assert admins == []
    assert await Organization.exists().where(Organization.slug == "acme-school").run()


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
