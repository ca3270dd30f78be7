#!/usr/bin/env bash
# Install orgschema in .venv and run its main job, `orgschema dev`, on
# DATABASE_URL or, when it is unset, on the embedded PostgreSQL server.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[embedded]'
exec .venv/bin/orgschema dev "$@"
