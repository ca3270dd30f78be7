#!/usr/bin/env bash
# The gates CI runs: ruff's lint and format check, and mypy --strict over the
# package (all configured in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv dev
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
