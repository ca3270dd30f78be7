#!/usr/bin/env bash
# Rerun the concurrency tests (marker `concurrency`) N times in a row, each
# run in a fresh random order, and stop at the first red one.
# Usage: scripts/stress.sh N [pytest args]   (on DATABASE_URL, else the embedded server)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:?usage: scripts/stress.sh N [pytest args]}"
shift
source scripts/_venv.sh
ensure_venv dev
for run in $(seq 1 "$runs"); do
  echo "=== stress run $run of $runs ==="
  if ! .venv/bin/python -m pytest -m concurrency -q "$@"; then
    echo "stress: run $run of $runs failed" >&2
    exit 1
  fi
done
echo "stress: $runs consecutive green runs"
