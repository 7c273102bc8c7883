// The shared test vectors of docs/dsp.md: stimulus code pairs plus the windows the model computes from
// them, written to test/vectors/*.json for the gateware, firmware and RTL-twin tests. Generation is
// deterministic (seeded PRNG, no clock, no environment), so a test can regenerate them in memory and
// insist that the committed files are identical. test/vectors/README.md describes the format.

import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WINDOW_MODE } from '../protocol/definition.ts';
import { CODE_MAX, CODE_MID, DspCore, RESET_CONFIG, type DspConfig, type WindowRecord } from './model.ts';

export const VECTOR_FORMAT_VERSION = 1;
/** The vectors are time-scaled: "mains" of ~200 samples per cycle at the real 4 Msps. */
export const VECTOR_FS = 4_000_000;

export interface VectorCommit {
  at_sample: number;
  config: DspConfig;
}

export interface VectorSpec {
  name: string;
  description: string;
  config: DspConfig;
  commits: VectorCommit[];
  cv: Uint16Array;
  ci: Uint16Array;
}

/** The JSON form of a WindowRecord: 64-bit fields as decimal strings. */
export type WindowJson = { [K in keyof WindowRecord]: WindowRecord[K] extends bigint ? string : number };

export interface VectorFile {
  format: number;
  name: string;
  description: string;
  fs: number;
  config: DspConfig;
  commits: VectorCommit[];
  stimulus: { cv: number[]; ci: number[] };
  expected: {
    windows: WindowJson[];
    /** E (Σ v·i since sample 0) at each window's end_index, decimal */
    energies: string[];
    energy_final: string;
    sample_count: number;
  };
}

export interface DspRun {
  windows: WindowRecord[];
  energies: bigint[];
  energyFinal: bigint;
}

/**
 * Run a whole stimulus through a fresh DspCore, applying each commit at its sample boundary (a commit
 * at the stimulus length still closes the open window). Commits must be sorted by at_sample.
 */
export function runDsp(
  cv: Uint16Array,
  ci: Uint16Array,
  config: DspConfig,
  commits: readonly VectorCommit[] = [],
): DspRun {
  if (cv.length !== ci.length) throw new RangeError(`cv has ${cv.length} samples but ci has ${ci.length}`);
  const core = new DspCore(config);
  const windows: WindowRecord[] = [];
  const energies: bigint[] = [];
  const take = (records: WindowRecord[]): void => {
    windows.push(...records);
    energies.push(...core.lastEnergies);
  };
  let at = 0;
  for (const c of commits) {
    if (!Number.isInteger(c.at_sample) || c.at_sample < at || c.at_sample > cv.length) {
      throw new RangeError(`commit at_sample ${c.at_sample} must be an integer in ${at} … ${cv.length}, sorted`);
    }
    take(core.process(cv.subarray(at, c.at_sample), ci.subarray(at, c.at_sample)));
    core.commit(c.config);
    at = c.at_sample;
  }
  take(core.process(cv.subarray(at), ci.subarray(at)));
  return { windows, energies, energyFinal: core.energy };
}

export function windowToJson(w: WindowRecord): WindowJson {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(w)) out[k] = typeof v === 'bigint' ? v.toString() : v;
  return out as WindowJson;
}

// ---------------------------------------------------------------------------------------------------
// Stimulus synthesis

/** xorshift32 (Marsaglia): tiny, fast and identical on every platform. */
export class Xorshift32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  nextU32(): number {
    let x = this.s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
  /** Uniform integer in [−a, a]. */
  int(a: number): number {
    return Math.floor(this.next() * (2 * a + 1)) - a;
  }
}

interface Harmonic {
  /** harmonic number h (1 = fundamental) */
  h: number;
  /** peak amplitude, LSB */
  amp: number;
  /** phase, radians (sin reference) */
  phase: number;
}

const toCode = (x: number): number => Math.min(CODE_MAX, Math.max(0, Math.round(x) + CODE_MID));

function waveform(
  count: number,
  periodSamples: number,
  harmonics: readonly Harmonic[],
  opts: { dc?: number; noise?: number; rng?: Xorshift32; envelope?: (n: number) => number } = {},
): Uint16Array {
  const out = new Uint16Array(count);
  for (let n = 0; n < count; n++) {
    const theta = (2 * Math.PI * n) / periodSamples;
    let x = opts.dc ?? 0;
    for (const h of harmonics) x += h.amp * Math.sin(h.h * theta + h.phase);
    if (opts.envelope) x *= opts.envelope(n);
    if (opts.noise && opts.rng) x += opts.rng.int(opts.noise);
    out[n] = toCode(x);
  }
  return out;
}

const cfg = (over: Partial<DspConfig>): DspConfig => ({ ...RESET_CONFIG, ...over });
const DEG = Math.PI / 180;

/** The vector set. Each entry is small (the gateware checks them in a slow simulator). */
export function vectorSpecs(): VectorSpec[] {
  const specs: VectorSpec[] = [];
  {
    const rng = new Xorshift32(1);
    const n = 6000;
    specs.push({
      name: 'pure-sine',
      description:
        'In-phase sines (v 6000 LSB, i 3000 LSB peak) at 200.3 samples per cycle with ±2 LSB noise; ' +
        'CYCLES K=4: a PARTIAL first window, then synchronised 4-cycle windows.',
      config: cfg({ cycles: 4 }),
      commits: [],
      cv: waveform(n, 200.3, [{ h: 1, amp: 6000, phase: -0.4 }], { noise: 2, rng }),
      ci: waveform(n, 200.3, [{ h: 1, amp: 3000, phase: -0.4 }], { noise: 2, rng }),
    });
  }
  {
    const rng = new Xorshift32(2);
    const n = 8000;
    const period = 199.7;
    specs.push({
      name: 'harmonics-phase',
      description:
        'v: fundamental 5500 LSB + 3rd 8% + 5th 4%; i: fundamental 2500 LSB lagging 36.87° (PF 0.8) + ' +
        '3rd 25% + 5th 12% with their own phases; ±3 LSB noise; CYCLES K=3.',
      config: cfg({ cycles: 3 }),
      commits: [],
      cv: waveform(
        n,
        period,
        [
          { h: 1, amp: 5500, phase: 0.3 },
          { h: 3, amp: 440, phase: 0.3 * 3 + 20 * DEG },
          { h: 5, amp: 220, phase: 0.3 * 5 - 40 * DEG },
        ],
        { noise: 3, rng },
      ),
      ci: waveform(
        n,
        period,
        [
          { h: 1, amp: 2500, phase: 0.3 - 36.87 * DEG },
          { h: 3, amp: 625, phase: 0.3 * 3 - 70 * DEG },
          { h: 5, amp: 300, phase: 0.3 * 5 + 110 * DEG },
        ],
        { noise: 3, rng },
      ),
    });
  }
  {
    const rng = new Xorshift32(3);
    const n = 5000;
    // A DC supply with ripple and a load step: no crossings, so CYCLES windows close by timeout.
    const cv = waveform(n, 97, [{ h: 1, amp: 40, phase: 0 }], { dc: 3100, noise: 2, rng });
    const ci = new Uint16Array(n);
    for (let k = 0; k < n; k++) {
      ci[k] = toCode((k < 2100 ? -700 : -2300) + 15 * Math.sin((2 * Math.PI * k) / 97 + 1) + rng.int(2));
    }
    specs.push({
      name: 'dc-timeout',
      description:
        'DC: v +3100 LSB with 40 LSB ripple, i −700 then −2300 LSB (a load step at sample 2100); no ' +
        'crossings, so CYCLES windows (K=2, M=1200) close by TIMEOUT, all PARTIAL; the last is open.',
      config: cfg({ cycles: 2, max_samples: 1200 }),
      commits: [],
      cv,
      ci,
    });
  }
  {
    const rng = new Xorshift32(4);
    const n = 5000;
    specs.push({
      name: 'clipping-saturation',
      description:
        'v overdriven to 9000 LSB peak (codes clip at 0 and 16383: CLIP_V), i 5000 LSB with i_offset −20000 ' +
        'and gain 3.5 (57344) saturating sat18 (SAT_I); from sample 2600 a commit sets v_gain 65535 (≈ 4.0) with ' +
        'v_offset −20000 so v saturates too (SAT_V), and i_gain back to 1.0; from sample 3800 i is ' +
        'overdriven to 9500 LSB peak (CLIP_I).',
      config: cfg({ cycles: 2, i_gain: 57344, i_offset: -20000 }),
      commits: [{ at_sample: 2600, config: cfg({ cycles: 2, v_gain: 65535, v_offset: -20000 }) }],
      cv: waveform(n, 201, [{ h: 1, amp: 9000, phase: 0 }], { noise: 2, rng }),
      ci: waveform(n, 201, [{ h: 1, amp: 5000, phase: -0.2 }], { noise: 2, rng, envelope: (k) => (k < 3800 ? 1 : 1.9) }),
    });
  }
  {
    const rng = new Xorshift32(5);
    const n = 6000;
    specs.push({
      name: 'calibration-positive-phase',
      description:
        'Offsets v +37 / i −121 quarter-LSB, gains v 1.0376 (17000) / i 0.9155 (15000), phase +3.4 samples ' +
        '(current delayed: d=3, f=26214); sines with DC offsets; CYCLES K=2.',
      config: cfg({ cycles: 2, v_offset: 37, i_offset: -121, v_gain: 17000, i_gain: 15000, phase: 3 * 65536 + 26214 }),
      commits: [],
      cv: waveform(n, 200.9, [{ h: 1, amp: 6100, phase: 1 }], { dc: 9, noise: 2, rng }),
      ci: waveform(n, 200.9, [{ h: 1, amp: 4200, phase: 1 - 0.25 }, { h: 7, amp: 300, phase: 0.5 }], {
        dc: -30,
        noise: 2,
        rng,
      }),
    });
  }
  {
    const rng = new Xorshift32(6);
    const n = 6000;
    specs.push({
      name: 'calibration-negative-phase',
      description:
        'Offsets v −5003 / i +77 quarter-LSB, gains v 0.5 (8192) / i 1.999 (32767), phase −7.75 samples ' +
        '(voltage delayed: d=7, f=49152); from sample 3000 a commit moves to phase −(1022 + 65535/65536) ' +
        '(the largest delay) and v_offset +4001; CYCLES K=3.',
      config: cfg({ cycles: 3, v_offset: -5003, i_offset: 77, v_gain: 8192, i_gain: 32767, phase: -(7 * 65536 + 49152) }),
      commits: [
        {
          at_sample: 3000,
          config: cfg({ cycles: 3, v_offset: 4001, i_offset: 77, v_gain: 8192, i_gain: 32767, phase: -(1022 * 65536 + 65535) }),
        },
      ],
      cv: waveform(n, 200.2, [{ h: 1, amp: 7000, phase: 2 }, { h: 3, amp: 500, phase: 0.1 }], { noise: 2, rng }),
      ci: waveform(n, 200.2, [{ h: 1, amp: 3500, phase: 2.4 }], { noise: 2, rng }),
    });
  }
  {
    const rng = new Xorshift32(7);
    const n = 7000;
    specs.push({
      name: 'fixed-mode',
      description:
        'FIXED N=1000 over sines at 333.3 samples per cycle (about 3 crossings per window, recorded with ' +
        'first/last offsets; windows not aligned to cycles); hysteresis 500; 7 whole windows.',
      config: cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 1000, zc_hysteresis: 500 }),
      commits: [],
      cv: waveform(n, 333.3, [{ h: 1, amp: 4000, phase: 2.2 }], { noise: 3, rng }),
      ci: waveform(n, 333.3, [{ h: 1, amp: 1500, phase: 2.2 + 1.1 }], { noise: 3, rng }),
    });
  }
  {
    const rng = new Xorshift32(8);
    const n = 8000;
    const fixed = cfg({ mode: WINDOW_MODE.FIXED, fixed_samples: 700, v_gain: 20000 });
    specs.push({
      name: 'config-commits',
      description:
        'Commits mid-stream: CYCLES K=2 → (2500) FIXED N=700 with v_gain 20000 → (4600, exactly at a FIXED ' +
        'boundary: nothing emitted) the same again → (6123) CYCLES K=1, phase +0.5 sample → two commits at ' +
        '7000 (config_seq +2) → one at 8000, the stimulus end, closing the last window.',
      config: cfg({ cycles: 2 }),
      commits: [
        { at_sample: 2500, config: fixed },
        { at_sample: 4600, config: fixed },
        { at_sample: 6123, config: cfg({ cycles: 1, phase: 32768 }) },
        { at_sample: 7000, config: cfg({ cycles: 2, zc_hysteresis: 10 }) },
        { at_sample: 7000, config: cfg({ cycles: 2 }) },
        { at_sample: 8000, config: cfg({}) },
      ],
      cv: waveform(n, 199.1, [{ h: 1, amp: 5000, phase: 0 }], { noise: 2, rng }),
      ci: waveform(n, 199.1, [{ h: 1, amp: 2000, phase: 0.7 }], { noise: 2, rng }),
    });
  }
  {
    const rng = new Xorshift32(9);
    const n = 9000;
    // Slow sine with heavy noise, then a stretch of noise only around zero, then the sine again.
    const env = (k: number): number => (k >= 3500 && k < 5500 ? 0 : 1);
    specs.push({
      name: 'noise-near-zero',
      description:
        'v: 1500 LSB sine at 400 samples per cycle (23.6 LSB per sample at zero) with ±40 LSB noise, silent (noise only) for samples ' +
        '3500…5499; hysteresis 64 counts each cycle once and no crossing in the noise (TIMEOUT at M=1500); ' +
        'from 6000 a commit sets hysteresis 0, so noise near zero double-counts crossings, as specified.',
      config: cfg({ cycles: 2, max_samples: 1500 }),
      commits: [{ at_sample: 6000, config: cfg({ cycles: 2, max_samples: 1500, zc_hysteresis: 0 }) }],
      cv: waveform(n, 400, [{ h: 1, amp: 1500, phase: 0.5 }], { noise: 40, rng, envelope: env }),
      ci: waveform(n, 400, [{ h: 1, amp: 1000, phase: 0.9 }], { noise: 40, rng, envelope: env }),
    });
  }
  {
    // Exactly 200 samples per cycle and no noise: every cycle has the same codes, so windows before and
    // after the commit differ only by the gain.
    const n = 5000;
    const wave = (amp: number): Uint16Array => waveform(n, 200, [{ h: 1, amp, phase: 0.1 }]);
    specs.push({
      name: 'gain-step',
      description:
        'Near full-scale sines (v 7900 LSB, i 7000 LSB peak, in phase) of exactly 200 samples per cycle, no ' +
        'noise; CYCLES K=2. At sample 2500 a commit sets v_gain 16385 (1 + 61 ppm, one step of the Q2.14 ' +
        'register): the synchronised windows after it have sum_vv ≈ (16385/16384)² and sum_vi ≈ 16385/16384 ' +
        'times those before (quarter-LSB samples keep the step; 1-LSB samples rounded it away entirely).',
      config: cfg({ cycles: 2 }),
      commits: [{ at_sample: 2500, config: cfg({ cycles: 2, v_gain: 16385 }) }],
      cv: wave(7900),
      ci: wave(7000),
    });
  }
  return specs;
}

export function buildVector(spec: VectorSpec): VectorFile {
  const run = runDsp(spec.cv, spec.ci, spec.config, spec.commits);
  return {
    format: VECTOR_FORMAT_VERSION,
    name: spec.name,
    description: spec.description,
    fs: VECTOR_FS,
    config: spec.config,
    commits: spec.commits,
    stimulus: { cv: Array.from(spec.cv), ci: Array.from(spec.ci) },
    expected: {
      windows: run.windows.map(windowToJson),
      energies: run.energies.map(String),
      energy_final: run.energyFinal.toString(),
      sample_count: spec.cv.length,
    },
  };
}

/**
 * JSON with one line per small object or scalar array, so the files diff well and stay compact.
 * Deterministic: key order is insertion order.
 */
export function formatJson(value: unknown, indent = ''): string {
  const flat = (v: unknown): boolean =>
    v === null || typeof v !== 'object' || Object.values(v as object).every((x) => x === null || typeof x !== 'object');
  if (flat(value)) return JSON.stringify(value);
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    return `[\n${value.map((x) => inner + formatJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(value as object).map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`);
  return `{\n${entries.join(',\n')}\n${indent}}`;
}

/** File name → file text of every vector. */
export function renderVectors(): Map<string, string> {
  const files = new Map<string, string>();
  for (const spec of vectorSpecs()) files.set(`${spec.name}.json`, formatJson(buildVector(spec)) + '\n');
  return files;
}

/** Write every vector into `dir` (created if needed), removing stale *.json. Returns the file names. */
export function writeVectors(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = renderVectors();
  for (const old of readdirSync(dir)) {
    if (old.endsWith('.json') && !files.has(old)) unlinkSync(join(dir, old));
  }
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return [...files.keys()];
}
