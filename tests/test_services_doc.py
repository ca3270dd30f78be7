"""docs/services.md runs as written, and prints what it says it prints."""

from __future__ import annotations

import ast
import contextlib
import io
import re
from pathlib import Path

import pytest
from piccolo.engine.finder import engine_finder

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "services.md"

# A python block, and the text block right after it (its expected output), if any.
BLOCK = re.compile(r"```python\n(.*?)```\s*(?:```text\n(.*?)```)?", re.DOTALL)


def examples() -> list[tuple[str, str | None]]:
    return [(code, output) for code, output in BLOCK.findall(PAGE.read_text())]


def test_the_page_has_examples_with_outputs() -> None:
    found = examples()
    assert len(found) >= 10
    assert sum(1 for _code, output in found if output) >= 8


@pytest.mark.usefixtures("clean_tables")
async def test_every_example_runs_in_order_and_prints_what_the_page_shows() -> None:
    namespace: dict[str, object] = {}
    try:
        for number, (code, expected) in enumerate(examples(), start=1):
            compiled = compile(
                code, f"{PAGE.name} example {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            )
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                result = eval(compiled, namespace)  # noqa: S307 -- our own documentation
                if result is not None:
                    await result
            if expected is not None:
                assert printed.getvalue() == expected, f"example {number}:\n{code}"
    finally:
        engine = engine_finder()
        if engine is not None and engine.pool is not None:
            await engine.close_connection_pool()
