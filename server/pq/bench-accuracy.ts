// The power-quality accuracy benchmark (issue 13 item 4): synthetic mains at 50 and 60 Hz and ±1 Hz off
// nominal, with harmonics and interharmonics, through the analysis, against the exact continuous-time
// IEC 61000-4-7 computation over the same window (synth.ts), and voltage events against their true start
// and duration. Run: `npx tsx server/pq/bench-accuracy.ts [--json]`; exits 1 when a limit is missed.
//
// Limits (the issue's): a subgroup within 0.1 % of reading where it is ≥ 1 % of the fundamental, within
// 0.01 % of nominal below; THD within 0.05 percentage points; event start and duration within one half
// cycle. Nominal is the declared voltage for V and the fundamental current for I.

import { fileURLToPath } from 'node:url';
import { analyzeWindow, marginSamples, THD_ORDER, thd } from './iec61000-4-7.ts';
import { DEFAULT_THRESHOLDS, VoltageMonitor, type EventKind } from './iec61000-4-30.ts';
import { CODE_MID } from '../dsp/model.ts';
import { Decimator, decimatorResponse } from '../dsp/decimator.ts';
import { referenceSubgroups, sampleTones, type Tone, type VoltageStep } from './synth.ts';

const DEVICE_HZ = 4_000_000;
const DECIMATION = 512;
const DECLARED_V = 230;
const I_NOMINAL_A = 10;

export interface HarmonicCase {
  /** 'stream': float64 samples at the stream's instants; 'decimator': 14-bit codes at 4 Msps through the model */
  path: 'stream' | 'decimator';
  hz: number;
  nominalHz: number;
  /** worst subgroup error as a fraction of its limit (≤ 1 passes), and where */
  worst_of_limit: number;
  worst_at: string;
  /** worst |THD − reference|, percentage points (V and I) */
  thd_error_pp: number;
  pass: boolean;
}

export interface EventCase {
  path: 'stream' | 'decimator';
  name: string;
  hz: number;
  kind: EventKind;
  /** errors in half cycles of the actual frequency; null when the event was not detected */
  start_error_hc: number | null;
  duration_error_hc: number | null;
  pass: boolean;
}

/** Mains with the harmonics of a rectifier-fed load and a few interharmonics, at fundamental f. */
export function testTones(f: number): { v: Tone[]; i: Tone[] } {
  const tone = (order: number, rms: number, phase: number): Tone => ({ hz: order * f, rms, phase });
  return {
    v: [
      tone(1, DECLARED_V, 0.3),
      ...[
        [3, 0.04, 1.1], [5, 0.05, -0.4], [7, 0.03, 2.0], [11, 0.015, 0.7], [13, 0.01, -1.3], [25, 0.005, 0.2],
        [47, 0.003, 1.7], [50, 0.012, -2.2], [2.5, 0.005, 0.4], [7.3, 0.003, -0.9],
      ].map(([h, share, ph]) => tone(h!, share! * DECLARED_V, ph!)),
    ],
    i: [
      tone(1, I_NOMINAL_A, -0.3),
      ...[
        [3, 0.8, 0.9], [5, 0.6, -1.9], [7, 0.4, 0.3], [9, 0.2, 2.4], [11, 0.15, -0.6], [13, 0.1, 1.2], [49, 0.015, -0.2],
        [4.2, 0.01, 0.5],
      ].map(([h, share, ph]) => tone(h!, share! * I_NOMINAL_A, ph!)),
    ],
  };
}

/** Volts and amperes per ADC code on the decimator path: 230 V and 25 A peaks within ±8191. */
const KV = 400 / 8192;
const KI = 32 / 8192;

/** The stream a device would send: tones at 4 Msps, rounded to 14-bit codes, through the decimator model. */
function decimatedStream(vTones: readonly Tone[], iTones: readonly Tone[], samples: number, steps: VoltageStep[] = []): { v: Float64Array; i: Float64Array; firstIndex: number } {
  const block = 1 << 16;
  const d = new Decimator();
  const v: number[] = [];
  const i: number[] = [];
  let firstIndex = NaN;
  for (let k = 0; k < samples; k += block) {
    const n = Math.min(block, samples - k);
    const toQ = (x: Float64Array, scale: number): Int32Array => {
      const q = new Int32Array(n);
      for (let j = 0; j < n; j++) q[j] = 4 * Math.max(-CODE_MID, Math.min(CODE_MID - 1, Math.round(x[j]! / scale)));
      return q;
    };
    const out = d.push(toQ(sampleTones(vTones, n, k, 1, DEVICE_HZ, steps), KV), toQ(sampleTones(iTones, n, k, 1, DEVICE_HZ), KI));
    if (Number.isNaN(firstIndex)) firstIndex = Number(out.firstIndex);
    for (const x of out.v) v.push((x * KV) / 4);
    for (const x of out.i) i.push((x * KI) / 4);
  }
  return { v: Float64Array.from(v), i: Float64Array.from(i), firstIndex };
}

/** Windows at different phases of one fundamental frequency. */
export function harmonicCase(hz: number, nominalHz: number, path: 'stream' | 'decimator' = 'stream'): HarmonicCase {
  const cycles = nominalHz === 50 ? 10 : 12;
  const { v: vTones, i: iTones } = testTones(hz);
  let worst = 0;
  let worstAt = '';
  let thdErr = 0;
  for (const offset of path === 'stream' ? [0, 1_234_567, 3_333_333] : [0]) {
    const start = (path === 'stream' ? 2_000_000 : 100_000) + offset;
    const end = start + Math.round((cycles * DEVICE_HZ) / hz);
    let slice;
    if (path === 'stream') {
      const first = start - marginSamples(DECIMATION) - 7 * DECIMATION - (offset % DECIMATION);
      const n = Math.ceil((end + marginSamples(DECIMATION) - first) / DECIMATION) + 1;
      slice = { v: sampleTones(vTones, n, first, DECIMATION, DEVICE_HZ), i: sampleTones(iTones, n, first, DECIMATION, DEVICE_HZ), firstIndex: first, decimation: DECIMATION };
    } else {
      // The filter's delay (about 8400 samples) plus the resampling margin after the window.
      slice = { ...decimatedStream(vTones, iTones, end + marginSamples(DECIMATION) + 10_000), decimation: DECIMATION };
    }
    const a = analyzeWindow(slice, { start, end, cycles }, {
      deviceRateHz: DEVICE_HZ,
      ...(path === 'decimator' ? { response: decimatorResponse } : {}),
    });
    const ref = referenceSubgroups(vTones, iTones, start / DEVICE_HZ, (end - start) / DEVICE_HZ, cycles);
    for (const [name, got, want, nominal] of [
      ['V', a.h_v, ref.h_v, DECLARED_V],
      ['I', a.h_i, ref.h_i, I_NOMINAL_A],
    ] as const) {
      for (let h = 0; h < got.length; h++) {
        const limit = want[h]! >= 0.01 * want[0]! ? 0.001 * want[h]! : 0.0001 * nominal;
        const share = Math.abs(got[h]! - want[h]!) / limit;
        if (share > worst) {
          worst = share;
          worstAt = `${name} order ${h + 1}`;
        }
      }
      thdErr = Math.max(thdErr, 100 * Math.abs(thd(got, THD_ORDER)! - thd(want, THD_ORDER)!));
    }
  }
  return { path, hz, nominalHz, worst_of_limit: worst, worst_at: worstAt, thd_error_pp: thdErr, pass: worst <= 1 && thdErr <= 0.05 };
}

/**
 * One voltage step in a run of distorted mains (3 s; on the decimator path, whose 4 Msps synthesis is
 * slow, 1.2 s and the step must end by 1.1 s), measured by the 4-30 monitor.
 */
export function eventCase(name: string, hz: number, kind: EventKind, step: VoltageStep, path: 'stream' | 'decimator' = 'stream'): EventCase {
  const nominalHz = hz < 55 ? 50 : 60;
  const { v: tones } = testTones(hz);
  let v: Float64Array;
  let first = 0;
  if (path === 'stream') {
    v = sampleTones(tones, Math.ceil((3 * DEVICE_HZ) / DECIMATION), 0, DECIMATION, DEVICE_HZ, [step]);
  } else {
    ({ v, firstIndex: first } = decimatedStream(tones, [], 1.2 * DEVICE_HZ, [step]));
  }
  const n = v.length;
  const monitor = new VoltageMonitor({ declaredV: DECLARED_V, nominalHz, ...DEFAULT_THRESHOLDS }, DEVICE_HZ, DECIMATION);
  const block = 64;
  for (let k = 0; k < n; k += block) monitor.push(v.subarray(k, Math.min(n, k + block)), first + k * DECIMATION);
  monitor.gap(first + n * DECIMATION);
  const e = monitor.events.find((x) => x.kind === kind);
  const half = DEVICE_HZ / (2 * hz);
  const startErr = e ? (e.start - step.tStartS * DEVICE_HZ) / half : null;
  const durErr = e ? (e.end - e.start - (step.tEndS - step.tStartS) * DEVICE_HZ) / half : null;
  const pass = startErr !== null && durErr !== null && Math.abs(startErr) <= 1 && Math.abs(durErr) <= 1 && !e!.cutByGap;
  return { path, name, hz, kind, start_error_hc: startErr, duration_error_hc: durErr, pass };
}

export const FREQUENCIES: readonly [number, number][] = [
  [49, 50], [50, 50], [51, 50], [59, 60], [60, 60], [61, 60],
];

export function eventCases(hz: number): EventCase[] {
  return [
    eventCase('dip to 50 %, 300 ms', hz, 'dip', { tStartS: 1.0123, tEndS: 1.3123, factor: 0.5 }),
    eventCase('dip to 85 %, 1 s', hz, 'dip', { tStartS: 0.7071, tEndS: 1.7071, factor: 0.85 }),
    eventCase('dip to 70 %, 11 ms', hz, 'dip', { tStartS: 1.003, tEndS: 1.014, factor: 0.7 }),
    eventCase('interruption, 60 ms', hz, 'interruption', { tStartS: 2.0071, tEndS: 2.0671, factor: 0 }),
    eventCase('swell to 120 %, 520 ms', hz, 'swell', { tStartS: 1.5, tEndS: 2.02, factor: 1.2 }),
  ];
}

export interface PqAccuracyReport {
  harmonics: HarmonicCase[];
  events: EventCase[];
  pass: boolean;
}

export function measurePqAccuracy(): PqAccuracyReport {
  const harmonics = [
    ...FREQUENCIES.map(([hz, nominal]) => harmonicCase(hz, nominal)),
    harmonicCase(49, 50, 'decimator'),
    harmonicCase(61, 60, 'decimator'),
  ];
  const events = [
    ...FREQUENCIES.flatMap(([hz]) => eventCases(hz)),
    ...[49, 61].flatMap((hz) => [
      eventCase('dip to 50 %, 300 ms', hz, 'dip', { tStartS: 0.5123, tEndS: 0.8123, factor: 0.5 }, 'decimator'),
      eventCase('interruption, 60 ms', hz, 'interruption', { tStartS: 0.6071, tEndS: 0.6671, factor: 0 }, 'decimator'),
    ]),
  ];
  return { harmonics, events, pass: harmonics.every((h) => h.pass) && events.every((e) => e.pass) };
}

function printTable(r: PqAccuracyReport): void {
  const fmt = (x: number | null, d = 3): string => (x === null ? 'n/a' : x.toFixed(d));
  console.log('harmonic subgroups 1 … 50 (V and I); stream: 3 windows of float64 samples, decimator: 14-bit codes');
  console.log('path       f Hz  worst error / limit  (where)          THD error pp  result');
  for (const h of r.harmonics) {
    console.log(
      `${h.path.padEnd(9)} ${String(h.hz).padStart(5)}  ${fmt(h.worst_of_limit).padStart(19)}  ${h.worst_at.padEnd(18)} ${h.thd_error_pp.toExponential(2).padStart(12)}  ${h.pass ? 'pass' : 'FAIL'}`,
    );
  }
  console.log('\nvoltage events (errors in half cycles; limit ±1)');
  console.log('path       f Hz  event                        start   duration  result');
  for (const e of r.events) {
    console.log(
      `${e.path.padEnd(9)} ${String(e.hz).padStart(5)}  ${e.name.padEnd(27)} ${fmt(e.start_error_hc).padStart(7)} ${fmt(e.duration_error_hc).padStart(10)}  ${e.pass ? 'pass' : 'FAIL'}`,
    );
  }
  console.log(`\n${r.pass ? 'all limits met' : 'SOME LIMITS MISSED'}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = measurePqAccuracy();
  if (process.argv.includes('--json')) console.log(JSON.stringify(report, null, 2));
  else printTable(report);
  process.exitCode = report.pass ? 0 : 1;
}
