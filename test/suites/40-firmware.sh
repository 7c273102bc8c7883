#!/usr/bin/env bash
# The firmware: the rv32im image must build and fit the ROM (counted as one test), and the
# hardware-independent code passes its native unit tests (firmware/test, with ASan and UBSan).
# Writes "$CRABWATT_RESULTS/firmware.counts" as "<passed> <failed> <skipped>".
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${CRABWATT_RESULTS:?set by test/run-all.sh}"

passed=0
failed=0

echo "--- firmware: rv32im image"
if make -C firmware all; then
  passed=$((passed + 1))
else
  echo "firmware: the rv32im image does not build" >&2
  failed=$((failed + 1))
fi

echo "--- firmware: native unit tests"
log="$CRABWATT_RESULTS/firmware-native.log"
make -C firmware test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
if [[ -n "$summary" ]]; then
  read -r native_passed _ native_failed _ <<< "$summary"
  passed=$((passed + native_passed))
  failed=$((failed + native_failed))
fi
# A runner that crashed (a sanitizer abort) or never built reports no line or too few failures.
if (( status != 0 )) && [[ -z "$summary" || "${native_failed:-0}" == 0 ]]; then
  failed=$((failed + 1))
fi

echo "$passed $failed 0" > "$CRABWATT_RESULTS/firmware.counts"
echo "firmware: $passed passed, $failed failed"
(( failed == 0 ))
