#!/usr/bin/env bash
# Creates (or refreshes) build/venv from hdl/requirements.txt; prints the venv's path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/venv
stamp="$venv/.requirements.sha256"
want=$(sha256sum hdl/requirements.txt | cut -d' ' -f1)
if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: building Python venv $venv from hdl/requirements.txt" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r hdl/requirements.txt >&2
  echo "$want" > "$stamp"
fi
echo "$PWD/$venv"
