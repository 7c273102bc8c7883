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
