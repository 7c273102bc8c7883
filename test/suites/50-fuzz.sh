#!/usr/bin/env bash
# The HTTP API under a schema-driven fuzzer: test/fuzz/run.ts starts the real `crabwatt serve --device sim`,
# validates its OpenAPI document and runs schemathesis against it (build/fuzz-venv, from test/fuzz/venv.sh).
# Writes "<passed> <failed> <skipped>" to $CRABWATT_RESULTS/fuzz.counts.
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${CRABWATT_RESULTS:?set by test/run-all.sh}"
if ! nice npx tsx test/fuzz/run.ts; then
  [[ -s "$CRABWATT_RESULTS/fuzz.counts" ]] || echo "0 1 0" > "$CRABWATT_RESULTS/fuzz.counts"
  exit 1
fi
