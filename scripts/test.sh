#!/usr/bin/env bash
# Install what the tests need (a virtualenv in .venv, the Better-auth harness's
# npm packages) and run them. Extra arguments go to pytest.
# DATABASE_URL set: tests create and drop throwaway databases on that server.
# Unset: they use the embedded PostgreSQL server (data in .orgschema/).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
if command -v npm >/dev/null 2>&1; then
  (cd tests/interop/better_auth && npm ci --silent --no-audit --no-fund)
fi
exec .venv/bin/python -m pytest "$@"
