# Sourced by the scripts here: `ensure_venv EXTRA` makes .venv and installs
# orgschema (editable) with that extra, skipping pip when pyproject.toml has
# not changed since the last install of the same extra.
ensure_venv() {
  local extra="$1" wanted
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # Editable install: only the metadata in pyproject.toml needs a reinstall.
  wanted="$extra $(sha256sum pyproject.toml | cut -d' ' -f1)"
  if ! grep -qxF "$wanted" .venv/.orgschema-installed 2>/dev/null; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extra]"
    echo "$wanted" >> .venv/.orgschema-installed
  fi
}
