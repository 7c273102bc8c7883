#!/usr/bin/env bash
# Creates (or refreshes) build/fuzz-venv from test/fuzz/requirements.txt; prints the venv's path.
# As hdl/venv.sh does for the gateware: rebuilt only when the requirements' hash changes.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/fuzz-venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum test/fuzz/requirements.txt | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: building Python venv $venv from test/fuzz/requirements.txt" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r test/fuzz/requirements.txt >&2
  "$venv/bin/pip" check >&2
  echo "$want" > "$stamp"
fi
echo "$PWD/$venv"
