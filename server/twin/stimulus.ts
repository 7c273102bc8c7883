// Stimulus for the RTL twin: the ADC codes of a test vector (test/vectors/*.json, written by the host's
// reference model) as the raw file the Verilator harness reads, little-endian uint16 pairs (cv, ci).

import { readFileSync } from 'node:fs';

export const CODE_MAX = 16383;

/** The parts of a vector file the twin uses (test/vectors/README.md describes the whole format). */
export interface TwinVector {
  readonly name: string;
  readonly config: Readonly<Record<string, number>>;
  readonly commits: readonly { at_sample: number; config: Readonly<Record<string, number>> }[];
  readonly cv: readonly number[];
  readonly ci: readonly number[];
  readonly expected: {
    readonly windows: readonly Readonly<Record<string, number | string>>[];
    readonly energies: readonly string[];
    readonly energy_final: string;
    readonly sample_count: number;
  };
}

export class StimulusError extends Error {
  override name = 'StimulusError';
}

function codes(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || value.length === 0) throw new StimulusError(`${what} must be a non-empty array`);
  value.forEach((c, n) => {
    if (!Number.isInteger(c) || c < 0 || c > CODE_MAX) {
      throw new StimulusError(`${what}[${n}] = ${String(c)} is not a 14-bit ADC code (0..${CODE_MAX})`);
    }
  });
  return value as number[];
}

/** Parses and checks a vector; throws StimulusError naming what is wrong. */
export function parseVector(text: string, source = 'vector'): TwinVector {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new StimulusError(`${source}: not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null) throw new StimulusError(`${source}: not a JSON object`);
  const v = raw as Record<string, any>;
  if (v.format !== 1) throw new StimulusError(`${source}: format ${String(v.format)} is not 1`);
  const cv = codes(v.stimulus?.cv, `${source}: stimulus.cv`);
  const ci = codes(v.stimulus?.ci, `${source}: stimulus.ci`);
  if (cv.length !== ci.length) {
    throw new StimulusError(`${source}: stimulus.cv has ${cv.length} codes but stimulus.ci ${ci.length}`);
  }
  if (typeof v.config !== 'object' || v.config === null || !Array.isArray(v.commits) || typeof v.expected !== 'object') {
    throw new StimulusError(`${source}: config, commits and expected are required`);
  }
  return { name: String(v.name ?? source), config: v.config, commits: v.commits, cv, ci, expected: v.expected };
}

export function readVector(path: string): TwinVector {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new StimulusError(`cannot read vector ${path}: ${(e as Error).message}`);
  }
  return parseVector(text, path);
}

/** The harness's stimulus file: (cv, ci) as little-endian uint16 pairs. */
export function stimulusBytes(cv: readonly number[], ci: readonly number[]): Buffer {
  codes(cv as unknown, 'cv');
  codes(ci as unknown, 'ci');
  if (cv.length !== ci.length) throw new StimulusError(`cv has ${cv.length} codes but ci ${ci.length}`);
  const out = Buffer.alloc(cv.length * 4);
  for (let n = 0; n < cv.length; n++) {
    out.writeUInt16LE(cv[n]!, 4 * n);
    out.writeUInt16LE(ci[n]!, 4 * n + 2);
  }
  return out;
}
