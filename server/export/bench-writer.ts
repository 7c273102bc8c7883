// Micro-benchmark of the CSV byte writer's numbers: ns per sig9 call on the values a 1 s export writes (each
// column alone, and the columns interleaved as a row writes them) and ns per row for a whole row's numbers
// (12 × sig9, wh, 2 × integer and the commas). Prints JSON. Benchmarks measure; the tests assert.
//
//   npx tsx server/export/bench-writer.ts [--writer path/to/csv-writer.ts] [--rounds 15] [--round-ms 100]
//
// --writer loads another CsvWriter module so two versions can be compared, e.g. the one before sig9 was reworked:
//   mkdir -p /tmp/w0 && git archive 621b8b3 server/export/csv-writer.ts server/store/energy.ts | tar -x -C /tmp/w0
//   npx tsx server/export/bench-writer.ts --writer /tmp/w0/server/export/csv-writer.ts
// Run the two in alternating processes (the machine is shared, so one run proves little) and compare medians.
// Times are CPU time of this process, so time spent descheduled does not count.

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { XorShift32 } from '../sim/load.ts';

type WriterModule = typeof import('./csv-writer.ts');
type Writer = InstanceType<WriterModule['CsvWriter']>;

const { values: args } = parseArgs({
  options: {
    writer: { type: 'string' },
    rounds: { type: 'string', default: '15' },
    'round-ms': { type: 'string', default: '100' },
  },
});
const rounds = Number(args.rounds);
const roundMs = Number(args['round-ms']);
if (!(Number.isInteger(rounds) && rounds >= 1 && roundMs > 0)) {
  throw new Error(`--rounds must be a positive integer and --round-ms positive (got ${args.rounds}, ${args['round-ms']})`);
}
const mod = (await import(args.writer === undefined ? './csv-writer.ts' : pathToFileURL(resolve(args.writer)).href)) as WriterModule;

/** Columns written with sig9, in CSV order. */
const COLUMNS = ['vrms', 'irms', 'p', 'p_min', 'p_max', 's', 'pf', 'n', 'freq_hz', 'v_dc', 'i_dc', 'coverage'] as const;
const ROWS = 4096;

/**
 * Values as a 1 s export of a household meter has them: means of full-precision doubles (230.xxx V, a load
 * current spread log-uniformly over 1 mA … 100 A, 10 % of the rows exporting), DC offsets near 1e-4, coverage
 * exactly 1 but in one row of a hundred.
 */
function makeColumns(): Float64Array[] {
  const prng = new XorShift32(0x5161a9); // every run formats the same values
  const next = (): number => prng.next();
  const cols = COLUMNS.map(() => new Float64Array(ROWS));
  for (let r = 0; r < ROWS; r++) {
    const vrms_v = 230 + 6 * (next() - 0.5);
    const irms_a = 10 ** (-3 + 5 * next());
    const pf = 0.5 + 0.5 * next();
    const s_va = vrms_v * irms_a;
    const p_w = (next() < 0.1 ? -1 : 1) * s_va * pf;
    const row = [
      vrms_v,
      irms_a,
      p_w,
      p_w * (1 - 0.02 * next()),
      p_w * (1 + 0.02 * next()),
      s_va,
      pf,
      Math.sqrt(s_va * s_va - p_w * p_w),
      50 + (next() - 0.5),
      (next() - 0.5) * 4e-4,
      (next() - 0.5) * 4e-4,
      next() < 0.01 ? Math.floor(next() * 1000) / 1000 : 1,
    ];
    for (let c = 0; c < cols.length; c++) cols[c]![r] = row[c]!;
  }
  return cols;
}

const cols = makeColumns();
/** The same values interleaved as a row writes them: row r's 12 sig9 values at 12·r … 12·r + 11. */
const interleaved = new Float64Array(ROWS * COLUMNS.length);
for (let r = 0; r < ROWS; r++) for (let c = 0; c < COLUMNS.length; c++) interleaved[r * COLUMNS.length + c] = cols[c]![r]!;
/** Energy of each 1 s row in nWh (p · 1 s, integer), samples and flags as a 1 s rollup row has them. */
const energyNwh = Float64Array.from(cols[2]!, (p) => Math.round((p * 1e9) / 3600));
const SAMPLES = 16_000;

/** Flushes like the export does (its chunks are 64 kB), so the writes stay in cache as they do there. */
const CHUNK_BYTES = 64 * 1024;
const w: Writer = new mod.CsvWriter(CHUNK_BYTES + 1024);
let sink = 0;

function flush(): void {
  sink = (sink + w.pos + w.buf[w.pos >> 1]!) | 0;
  w.pos = 0;
}

function sig9Pass(v: Float64Array): void {
  for (let i = 0; i < v.length; i++) {
    w.sig9(v[i]!);
    w.buf[w.pos++] = 44;
    if (w.pos >= CHUNK_BYTES) flush();
  }
}

/** One row's numbers after the timestamp, in the order (and with the commas) the export writes them. */
function rowPass(): void {
  const n = COLUMNS.length;
  for (let r = 0; r < ROWS; r++) {
    w.reserve(512);
    const o = r * n;
    for (let c = 0; c < 11; c++) {
      w.sig9(interleaved[o + c]!);
      w.byte(44);
    }
    w.wh(energyNwh[r]!);
    w.byte(44);
    w.integer(SAMPLES);
    w.byte(44);
    w.sig9(interleaved[o + 11]!);
    w.byte(44);
    w.integer(0);
    w.byte(10);
    if (w.pos >= CHUNK_BYTES) flush();
  }
}

/**
 * CPU time of this process in ns (user + system): on a shared machine the time it is descheduled does not count,
 * as wall time would. Microsecond resolution, so rounds are kept long.
 */
function cpuNs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** ns of CPU per call (or per row): passes repeated for about roundMs per round; median and best of the rounds. */
function measure(pass: () => void, callsPerPass: number): { median_ns: number; min_ns: number } {
  const t0 = cpuNs();
  let passes = 0;
  do {
    pass();
    passes++;
  } while (cpuNs() - t0 < 50e6 || passes < 3);
  const passesPerRound = Math.max(1, Math.round((passes * roundMs * 1e6) / (cpuNs() - t0)));
  const ns: number[] = [];
  for (let k = 0; k < rounds; k++) {
    const start = cpuNs();
    for (let i = 0; i < passesPerRound; i++) pass();
    ns.push((cpuNs() - start) / (passesPerRound * callsPerPass));
  }
  ns.sort((a, b) => a - b);
  const round2 = (x: number): number => Math.round(x * 100) / 100;
  return { median_ns: round2(ns[ns.length >> 1]!), min_ns: round2(ns[0]!) };
}

const perColumn: Record<string, { median_ns: number; min_ns: number }> = {};
// The interleaved figure first (before the per-column passes, so the same code has seen every decade by then
// either way), then each column alone, then whole rows.
const sig9Row = measure(() => sig9Pass(interleaved), interleaved.length);
COLUMNS.forEach((name, c) => {
  perColumn[name] = measure(() => sig9Pass(cols[c]!), ROWS);
});
const row = measure(rowPass, ROWS);

console.log(
  JSON.stringify({
    writer: args.writer ?? 'server/export/csv-writer.ts',
    node: process.version,
    rounds,
    round_ms: roundMs,
    sig9_ns_per_call_row_order: sig9Row,
    sig9_ns_per_call_by_column: perColumn,
    row_numbers_ns_per_row: row,
    sink,
  }),
);
