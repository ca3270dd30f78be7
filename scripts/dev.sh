#!/usr/bin/env bash
# Install orgschema in .venv and run its main job, `orgschema dev`, on
# DATABASE_URL or, when it is unset, on the embedded PostgreSQL server.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv embedded
exec .venv/bin/orgschema dev "$@"
