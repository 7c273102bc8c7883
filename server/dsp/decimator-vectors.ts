// The decimated-stream vectors (docs/dsp.md, "Decimated waveform"): calibrated pairs in q and the
// stream the model computes from them, written to test/vectors/decimator/*.json for the gateware test
// (hdl/tests/dsp/test_decimator.py). Deterministic like the window vectors (server/dsp/vectors.ts).

import { mkdirSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DECIMATED_FIRST_INDEX, DECIMATION, Decimator, FIR_HALF_TAPS } from './decimator.ts';
import { VECTOR_FORMAT_VERSION, VECTOR_FS, Xorshift32, formatJson } from './vectors.ts';

const Y_MIN = -131072;
const Y_MAX = 131071;

export interface DecimatorVectorFile {
  format: number;
  kind: 'decimator';
  name: string;
  description: string;
  fs: number;
  decimation: number;
  fir_half_taps: readonly number[];
  stimulus: { v: number[]; i: number[] };
  expected: { first_index: number; v: number[]; i: number[] };
}

interface DecimatorSpec {
  name: string;
  description: string;
  v: Int32Array;
  i: Int32Array;
}

const clampY = (x: number): number => Math.min(Y_MAX, Math.max(Y_MIN, Math.round(x)));

function specs(): DecimatorSpec[] {
  // 48 blocks of 512: the first output needs 8704 samples (the filter's length), so 32 outputs.
  const count = 48 * DECIMATION;
  const rng = new Xorshift32(13);
  const v = new Int32Array(count);
  const i = new Int32Array(count);
  let level = Y_MAX;
  let run = 0;
  for (let n = 0; n < count; n++) {
    const t = n / VECTOR_FS;
    // In-band tones up to 3 kHz, one out-of-band tone near the worst alias (28.25 kHz) and noise.
    const x = 60000 * Math.sin(2 * Math.PI * 977 * t) + 9000 * Math.sin(2 * Math.PI * 2931 * t + 0.4) +
      30000 * Math.sin(2 * Math.PI * 28_250 * t) + rng.int(400);
    v[n] = clampY(x);
    // Full-scale steps of random length at both rails: the widest values every stage must hold.
    if (run === 0) {
      level = level === Y_MAX ? Y_MIN : Y_MAX;
      run = 1 + (rng.nextU32() % 3000);
    }
    run--;
    i[n] = level;
  }
  return [{
    name: 'tones-and-rails',
    description: 'v: 977 Hz + 2931 Hz in band, 28.25 kHz out of band, noise; i: full-scale steps between both rails',
    v,
    i,
  }];
}

export function buildDecimatorVector(spec: DecimatorSpec): DecimatorVectorFile {
  const out = new Decimator().push(spec.v, spec.i);
  if (out.firstIndex !== BigInt(DECIMATED_FIRST_INDEX)) throw new Error('decimator vector: stream does not start at n_0');
  return {
    format: VECTOR_FORMAT_VERSION,
    kind: 'decimator',
    name: spec.name,
    description: spec.description,
    fs: VECTOR_FS,
    decimation: DECIMATION,
    fir_half_taps: FIR_HALF_TAPS,
    stimulus: { v: Array.from(spec.v), i: Array.from(spec.i) },
    expected: { first_index: DECIMATED_FIRST_INDEX, v: Array.from(out.v), i: Array.from(out.i) },
  };
}

/** File name → file text of every decimator vector. */
export function renderDecimatorVectors(): Map<string, string> {
  const files = new Map<string, string>();
  for (const spec of specs()) files.set(`${spec.name}.json`, formatJson(buildDecimatorVector(spec)) + '\n');
  return files;
}

/** Write every decimator vector into `dir` (created if needed), removing stale *.json. */
export function writeDecimatorVectors(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const files = renderDecimatorVectors();
  for (const old of readdirSync(dir)) {
    if (old.endsWith('.json') && !files.has(old)) unlinkSync(join(dir, old));
  }
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return [...files.keys()];
}
