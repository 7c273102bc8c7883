// The CSV says what its columns mean (issue 15, defect 6): units in the header, the flag bits by name in a
// column of their own and in `export --help`, and the help explains coverage above 1 and rows absent for outages.

import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPORT_HELP } from '../../server/cli/export.ts';
import { CSV_HEADER, exportCsvChunks } from '../../server/export/csv.ts';
import { WINDOW_FLAG } from '../../server/protocol/definition.ts';
import { StoreReader } from '../../server/store/query.ts';
import { Store, type DeviceRef } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from '../store/helpers.ts';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);
let cleanup: () => void;
let store: Store;
let dev: DeviceRef;

beforeAll(() => {
  const t = tempDir('crabwatt-columns-');
  cleanup = t.cleanup;
  store = Store.open(join(t.dir, 'c.sqlite'));
  dev = store.attachDevice({ deviceId: 0xfeedn, bootId: 1, fsNum: 1000, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
  // Two 500 ms windows in the first second, the second clipped on v and partial.
  store.addWindow(dev, makeWindow(500n, 500, 1_000_000n), derivedFor(100), T0 + 500);
  store.addWindow(dev, { ...makeWindow(1000n, 500, 1_000_000n), flags: WINDOW_FLAG.CLIP_V | WINDOW_FLAG.PARTIAL }, derivedFor(100), T0 + 1000);
  store.addWindow(dev, makeWindow(1500n, 500, 1_000_000n), derivedFor(100), T0 + 1500);
  store.flush();
});

afterAll(() => {
  store.close();
  cleanup();
});

describe('CSV columns', () => {
  it('carries the unit of every physical column in its name', () => {
    expect(CSV_HEADER).toBe(
      'timestamp,vrms_v,irms_a,p_w,p_min_w,p_max_w,s_va,pf,n_var,freq_hz,v_dc_v,i_dc_a,energy_wh,samples,coverage,flags,flag_names',
    );
  });

  it('names the flag bits of each row', () => {
    const reader = new StoreReader(store.db);
    for (const interval of ['raw', '1s'] as const) {
      const lines = [...exportCsvChunks(reader, { device: dev.hex, fromMs: T0, toMs: T0 + 2000, interval, tz: 'UTC' })].join('').trimEnd().split('\n');
      const cells = lines.map((l) => l.split(','));
      const names = CSV_HEADER.split(',').indexOf('flag_names');
      const flags = CSV_HEADER.split(',').indexOf('flags');
      expect(cells[1]![names]).toBe(interval === 'raw' ? '' : 'CLIP_V|PARTIAL');
      expect(cells.slice(1).map((c) => c[flags])).toContain(String(WINDOW_FLAG.CLIP_V | WINDOW_FLAG.PARTIAL));
      for (const c of cells) expect(c).toHaveLength(CSV_HEADER.split(',').length);
    }
  });

  it('documents the flag bits, coverage and outages in export --help', () => {
    for (const [name, bit] of Object.entries(WINDOW_FLAG)) expect(EXPORT_HELP).toContain(`${name}=${bit}`);
    expect(EXPORT_HELP).toMatch(/coverage .*above 1/s);
    expect(EXPORT_HELP).toMatch(/no row/);
  });
});
