#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=8388608:glibc.malloc.arena_max=1 node --max-semi-space-size=2
// How `crabwatt` runs, set here once (npm scripts run this file, and the API benchmark reads this line):
// --max-semi-space-size=2 (MB): V8's young generation otherwise grows to 16 MB semi-spaces under a long export
//   or steady ingest, which is most of the difference between a ~120 MB and a ~175 MB peak for a year's CSV
//   export (`npx tsx server/api/bench.ts --days 365 --compare`), for ~10 % of ingest throughput that has 15x
//   headroom.
// GLIBC_TUNABLES (glibc's malloc; ignored elsewhere): SQLite hands each hourly pack of 1 s rollups to JS as a
//   fresh 1.2 MB Buffer, freed at the next scavenge. By default glibc gives such a block back to the kernel when
//   it is freed (munmap, or a trim of the heap's top) and the next one faults in ~300 fresh pages. Blocks below
//   4 MB come from the heap and up to 8 MB of it is kept free, so those pages are reused; one arena for all
//   threads keeps the other threads' arenas from holding on to memory (idle RSS 108-110 MB; 116-120 MB with the
//   thresholds alone, 103-107 MB with glibc's defaults). Exporting 30 days of 1 s rows, the server took ~1 k
//   page faults instead of 120-210 k and 0.34-0.42 s of kernel time instead of 0.63-0.85 s
//   (`npx tsx server/api/bench.ts --days 30 --compare`: minor_page_faults, server_sys_s; server/store/README.md).
// Entry point: runs the TypeScript CLI through tsx so no build step stands between `npm install` and use.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli.ts');
process.exitCode = await main(process.argv.slice(2));
