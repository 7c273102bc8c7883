#!/usr/bin/env bash
# What `npm test` needs beyond npm: Debian packages (installed with apt-get when running as root)
# and the Python venvs: the gateware's from hdl/requirements.txt, the API fuzzer's from test/fuzz/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg probe; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  if [[ "$probe" == /* ]]; then
    compgen -G "$probe" > /dev/null || missing+=("$pkg")
  else
    command -v "$probe" > /dev/null || missing+=("$pkg")
  fi
done < test/debian-packages.txt

if (( ${#missing[@]} > 0 )); then
  if [[ $(id -u) == 0 ]] && command -v apt-get > /dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
  else
    echo "setup: missing Debian packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

bash hdl/venv.sh
bash test/fuzz/venv.sh
