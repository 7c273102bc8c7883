// Shared helpers for the store tests: temp databases and synthetic windows with known energy.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Derived, WindowInput } from '../../server/store/store.ts';
import { QUANTITIES } from '../../server/store/schema.ts';

export function tempDir(prefix = 'crabwatt-store-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeWindow(endIndex: bigint, samples: number, sumVi: bigint): WindowInput {
  return {
    end_index: endIndex,
    samples,
    sum_v: 0n,
    sum_i: 0n,
    sum_vv: BigInt(samples) * 1000n,
    sum_ii: BigInt(samples) * 10n,
    sum_vi: sumVi,
    min_v: -100,
    max_v: 100,
    min_i: -10,
    max_i: 10,
    zc_count: 2,
    flags: 0,
    config_seq: 0,
  };
}

export function derivedFor(p: number): Derived {
  const d = Object.fromEntries(QUANTITIES.map((q) => [q, 1])) as Derived;
  d.p = p;
  d.vrms = 230 + p / 1000;
  d.pf = null;
  return d;
}
