#!/usr/bin/env -S node --max-semi-space-size=2
// --max-semi-space-size=2 (MB): V8's young generation otherwise grows to 16 MB semi-spaces under a long export
// or steady ingest, which is most of the difference between a ~140 MB and a ~200 MB peak for a year's CSV export
// (`npx tsx server/api/bench.ts --days 365`), for ~10 % of ingest throughput that has 15x headroom over the wire.
// npm scripts pass the same flag, because `node server/bin/crabwatt.mjs` does not read this line.
// Entry point: runs the TypeScript CLI through tsx so no build step stands between `npm install` and use.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli.ts');
process.exitCode = await main(process.argv.slice(2));
