"""The package's public surface: complete, sorted and typed (as httpx checks its own)."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import orgschema


def test_all_is_sorted_and_complete() -> None:
    assert orgschema.__all__ == sorted(orgschema.__all__)
    # Most names load on first use (PEP 562), so they may not be in vars() yet.
    public = {name for name in vars(orgschema) if not name.startswith("_")}
    public |= set(orgschema._LAZY_EXPORTS)
    submodules = {name for name in public if type(getattr(orgschema, name)).__name__ == "module"}
    assert public - submodules == set(orgschema.__all__) - {"__version__"}
    assert set(dir(orgschema)) >= set(orgschema.__all__)


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(Path(orgschema.__file__).read_text())
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING"
    ]
    return {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def test_lazy_names_are_the_ones_type_checkers_see_and_each_loads() -> None:
    assert _type_checking_imports() == orgschema._LAZY_EXPORTS
    for name, module in orgschema._LAZY_EXPORTS.items():
        assert getattr(orgschema, name) is getattr(importlib.import_module(module), name)


def test_every_exported_error_has_one_base_codes_and_a_place_in_the_documented_tree() -> None:
    from orgschema import errors as errors_module

    exported = [getattr(orgschema, name) for name in orgschema.__all__ if name != "__version__"]
    errors = [
        item for item in exported if isinstance(item, type) and issubclass(item, BaseException)
    ]
    assert len(errors) >= 20
    tree = errors_module.__doc__ or ""
    for error in errors:
        assert issubclass(error, orgschema.OrgschemaError), error
        assert type(error.exit_code) is int and error.exit_code >= 1, error
        assert type(error.status_code) is int and 400 <= error.status_code <= 599, error
        line = re.search(rf"\b{error.__name__}\b.*", tree)
        assert line, f"{error.__name__} is not in errors.py's tree"
        documented_exit = re.search(r"\bexit (\d+)", line.group())
        assert documented_exit and int(documented_exit.group(1)) == error.exit_code, line.group()
        documented_status = re.search(r"\(HTTP (\d+)\)", line.group())
        assert documented_status is None or int(documented_status.group(1)) == error.status_code


def test_package_is_typed() -> None:
    assert (Path(orgschema.__file__).parent / "py.typed").is_file()


HEAVY = ("piccolo", "asyncpg", "piccolo_admin", "piccolo_api", "uvicorn", "fastapi", "black")


def _imported_after(code: str) -> set[str]:
    """Top-level packages from HEAVY imported by running ``code`` in a fresh process."""
    probe = f"import sys\n{code}\nprint(' '.join(sorted(set(sys.modules) & {set(HEAVY)!r})))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(result.stdout.split())


def test_import_orgschema_loads_no_database_or_web_stack() -> None:
    assert _imported_after("import orgschema") == set()


def test_the_tables_load_piccolo_and_nothing_of_the_studio_or_migrations() -> None:
    assert _imported_after("from orgschema import Organization, User") == {"asyncpg", "piccolo"}


def test_the_studio_loads_on_first_use() -> None:
    assert _imported_after("from orgschema import create_studio") >= {"piccolo_admin", "uvicorn"}


def test_cli_help_loads_nothing_heavy() -> None:
    assert _imported_after("from orgschema.cli import main") == set()
