"""The package's public surface: complete, sorted and typed (as httpx checks its own)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orgschema


def test_all_is_sorted_and_complete() -> None:
    assert orgschema.__all__ == sorted(orgschema.__all__)
    # Studio names load on first use (PEP 562), so they may not be in vars() yet.
    public = {name for name in vars(orgschema) if not name.startswith("_")}
    public |= set(orgschema._LAZY_EXPORTS)
    submodules = {name for name in public if type(getattr(orgschema, name)).__name__ == "module"}
    assert public - submodules == set(orgschema.__all__) - {"__version__"}


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


def test_studio_names_load_lazily_and_import_stays_light() -> None:
    code = (
        "import sys, orgschema; "
        "light = not {'piccolo_admin', 'uvicorn', 'fastapi'} & set(sys.modules); "
        "from orgschema import create_studio, serve_studio; "
        "print(light, create_studio.__module__, serve_studio.__module__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["True", "orgschema.studio", "orgschema.studio"]
