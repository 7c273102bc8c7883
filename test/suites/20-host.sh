#!/usr/bin/env bash
# The TypeScript host: vitest over test/**/*.test.ts.
set -uo pipefail
json="$CRABWATT_RESULTS/host.json"
npx vitest run --reporter=default --reporter=json --outputFile.json="$json"
rc=$?
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const skipped = r.numPendingTests + r.numTodoTests;
console.log(`${r.numPassedTests} ${r.numFailedTests + (r.numFailedTestSuites > 0 && r.numFailedTests === 0 ? 1 : 0)} ${skipped}`);
' "$json" > "$CRABWATT_RESULTS/host.counts" 2>/dev/null || echo "0 1 0" > "$CRABWATT_RESULTS/host.counts"
exit $rc
