// The history query at its finest level: buckets never finer than the windows they fold (issue 15, defect 1),
// so a zoomed-in view of continuous data has a value in every bucket instead of mostly nulls.

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store, type DeviceIdentity } from '../../server/store/store.ts';
import { StoreReader } from '../../server/store/query.ts';
import { derivedFor, makeWindow, tempDir } from './helpers.ts';

const FS = 1000; // 1 sample = 1 ms
const T0 = Date.UTC(2026, 11, 6, 20, 0, 0);

function identity(): DeviceIdentity {
  return { deviceId: 0xc0ffee00_87654321n, bootId: 3, fsNum: FS, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 };
}

describe('StoreReader.history at the raw level', () => {
  it('folds into buckets at least one window long, so continuous data has no null bucket', () => {
    const { dir, cleanup } = tempDir();
    try {
      const store = Store.open(join(dir, 'h.sqlite'));
      const dev = store.attachDevice(identity(), T0);
      // 10 minutes of 200 ms windows (10 mains cycles at 50 Hz), one a little longer now and then (frequency drift).
      let end = 0n;
      for (let k = 0; k < 3000; k++) {
        const samples = k % 7 === 0 ? 201 : 200;
        end += BigInt(samples);
        store.addWindow(dev, makeWindow(end, samples, 1_000_000n), derivedFor(1000 + (k % 10)), T0 + Number(end));
      }
      store.flush();
      const reader = new StoreReader(store.db);
      for (const spanMs of [4 * 60_000, 60_000, 30_000, 5_000, 1_000]) {
        const from = T0 + 200_000 + 17;
        const h = reader.history({ device: dev.hex, fromMs: from, toMs: from + spanMs, points: 1000, fields: ['p'] });
        expect(h.level).toBe('raw');
        expect(h.bucketMs).toBeGreaterThanOrEqual(201);
        expect(h.t.length).toBeLessThanOrEqual(1000);
        // Every bucket holds a window, the last one too (it is whole, not cut at the range's end).
        expect(h.series.p!.mean.filter((x) => x === null)).toEqual([]);
        expect(Math.max(...h.coverage)).toBeLessThanOrEqual(1.01 * 2);
      }
      // A real gap (no windows for a minute) still reads as null buckets.
      end += 60_000n;
      for (let k = 0; k < 100; k++) {
        end += 200n;
        store.addWindow(dev, makeWindow(end, 200, 1_000_000n), derivedFor(1000), T0 + Number(end));
      }
      store.flush();
      const gap = reader.history({ device: dev.hex, fromMs: T0 + 590_000, toMs: T0 + 690_000, points: 1000, fields: ['p'] });
      expect(gap.level).toBe('raw');
      expect(gap.series.p!.mean.filter((x) => x === null).length).toBeGreaterThan(250);
      store.close();
    } finally {
      cleanup();
    }
  });
});
