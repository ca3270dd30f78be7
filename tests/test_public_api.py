"""The package's public surface: complete, sorted and typed (as httpx checks its own)."""

from __future__ import annotations

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


def test_every_error_has_an_exit_code_and_one_base() -> None:
    errors = [getattr(orgschema, name) for name in orgschema.__all__ if name.endswith(("Error", "Failed", "Unavailable"))]
    assert errors
    for error in errors:
        assert issubclass(error, orgschema.OrgschemaError)
        assert isinstance(error.exit_code, int) and error.exit_code >= 1


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
