#!/usr/bin/env bash
# `npm test`: every suite of the project, in order, with one summary line at the end.
# Each suite is a script in test/suites/ that exits non-zero on failure and writes its counts
# ("<passed> <failed> <skipped>") to $CRABWATT_RESULTS/<suite>.counts.
set -uo pipefail
cd "$(dirname "$0")/.."
export CRABWATT_RESULTS="${CRABWATT_RESULTS:-$PWD/build/test-results}"
rm -rf "$CRABWATT_RESULTS"
mkdir -p "$CRABWATT_RESULTS"

bash test/setup.sh || exit 1

# The full-SoC place and route of both boards is the longest step of all (one single-threaded
# router per board, ~12-17 min): start it now, beside the other suites, instead of when the gateware
# suite reaches it; that suite's build calls wait for these builds and take their results
# (hdl/crabwatt/prebuild.py). Stopped with everything it started if this script ends first.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null); do kill_tree "$child"; done
  kill -TERM "$1" 2>/dev/null
}
bash hdl/run.sh prebuild > "$CRABWATT_RESULTS/prebuild.log" 2>&1 &
prebuild_pid=$!
trap 'kill_tree "$prebuild_pid"' EXIT
trap 'exit 130' INT TERM

failed_suites=()
for suite in test/suites/*.sh; do
  name=$(basename "$suite" .sh)
  echo "=== suite: $name"
  start=$(date +%s)
  if ! bash "$suite"; then
    failed_suites+=("$name")
  fi
  echo "=== suite: $name took $(( $(date +%s) - start )) s"
done

node test/summarize.mjs "$CRABWATT_RESULTS" "${failed_suites[@]}"
