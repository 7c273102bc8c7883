// Shared helpers for the store tests: temp databases and synthetic windows with known energy.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { expect } from 'vitest';
import type { Derived, WindowInput } from '../../server/store/store.ts';
import { QUANTITIES, STATS_BYTES } from '../../server/store/schema.ts';

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

/**
 * Σ energy, Σ samples and the number of buckets of a rollup level over all devices, read independently of the
 * store's reader: the `rollups` rows plus, at the 1 s level, every record of every pack (decoded here with a
 * DataView from the layout of server/store/pack.ts). An hour is in one of the two, so nothing counts twice.
 */
export function levelSums(db: Database.Database, levelMs: number): { energyNwh: bigint; samples: bigint; buckets: number } {
  const r = db
    .prepare('SELECT coalesce(sum(energy_nwh), 0), coalesce(sum(samples), 0), count(*) FROM rollups WHERE level = ?')
    .raw(true)
    .safeIntegers(true)
    .get(levelMs) as [bigint, bigint, bigint];
  let energyNwh = BigInt(r[0]);
  let samples = BigInt(r[1]);
  let buckets = Number(r[2]);
  const hasPacks = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'rollup_packs'").get() !== undefined;
  if (levelMs !== 1000 || !hasPacks) return { energyNwh, samples, buckets };
  const stride = 5 + STATS_BYTES / 8;
  for (const [rowsValue, blob] of db.prepare('SELECT rows, data FROM rollup_packs').raw(true).iterate() as Iterable<[number | bigint, Buffer]>) {
    const rows = Number(rowsValue);
    expect(blob.length).toBe(rows * stride * 8);
    for (let k = 0; k < rows; k++) {
      const o = k * stride * 8;
      samples += BigInt(blob.readDoubleLE(o + 8));
      energyNwh += BigInt(blob.readDoubleLE(o + 24));
      buckets++;
    }
  }
  return { energyNwh, samples, buckets };
}
