#!/usr/bin/env bash
# Strict TypeScript over server/, web/ and test/.
set -uo pipefail
if npx tsc -p tsconfig.json --noEmit; then
  echo "1 0 0" > "$CRABWATT_RESULTS/typecheck.counts"
else
  echo "0 1 0" > "$CRABWATT_RESULTS/typecheck.counts"
  exit 1
fi
