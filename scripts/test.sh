#!/usr/bin/env bash
# Install what the tests need (a virtualenv in .venv, the Better-auth harness's
# npm packages) and run them. Extra arguments go to pytest.
# DATABASE_URL set: tests create and drop throwaway databases on that server.
# Unset: they use the embedded PostgreSQL server (data in .orgschema/).
# Each install is skipped when what it installs from has not changed since.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv dev

harness=tests/interop/better_auth
if command -v npm >/dev/null 2>&1; then
  npm_stamp=$(cat "$harness/package.json" "$harness/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$harness/node_modules/.orgschema-installed" 2>/dev/null)" != "$npm_stamp" ]; then
    (cd "$harness" && npm ci --silent --no-audit --no-fund)
    echo "$npm_stamp" > "$harness/node_modules/.orgschema-installed"
  fi
fi

# Two workers by default (ORGSCHEMA_TEST_WORKERS=0 runs in one process); the
# slowest tests are listed at the end, so a slow one is seen when it lands.
exec .venv/bin/python -m pytest -n "${ORGSCHEMA_TEST_WORKERS:-2}" --durations=15 "$@"
