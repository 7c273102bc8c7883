import { describe, expect, it } from 'vitest';
import { WindowRows } from '../../server/store/window-rows.ts';
import type { WindowInput } from '../../server/store/store.ts';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function win(k: number): WindowInput {
  return {
    end_index: k % 2 ? INT64_MAX - BigInt(k) : BigInt(k) * 1000n,
    samples: 80_000 + k,
    sum_v: k % 3 ? INT64_MIN + BigInt(k) : -BigInt(k),
    sum_i: BigInt(k) * 7n,
    sum_vv: 2n ** 54n + BigInt(k),
    sum_ii: BigInt(k),
    sum_vi: -(2n ** 50n) * BigInt(k),
    min_v: -32768, max_v: 32767, min_i: -k, max_i: k, zc_count: k % 65536, flags: k & 0xff, config_seq: 65535,
  };
}

describe('WindowRows', () => {
  it('gives back every pushed row exactly, in INSERT column order, across growth', () => {
    const rows = new WindowRows(9, 2);
    const pushed: unknown[][] = [];
    for (let k = 0; k < 37; k++) {
      const w = win(k);
      const values = [230.1 + k, k % 4 === 0 ? null : 0.5 * k, -0, Number.NaN, k % 5 === 0 ? null : 1e-300, Infinity, 50.000001, -1e6, 0];
      const t = 1_767_225_600_000 + k * 20.25;
      const nwh = k % 2 ? INT64_MAX : INT64_MIN + BigInt(k);
      const nulls = values.map((v) => (v === null ? 1 : 0));
      // A null's slot in `values` is ignored: pass junk there to prove it.
      rows.push(3, 7 + k, w, t, values.map((v) => (v === null ? 12345 : v)), nulls, nwh);
      pushed.push([3, 7 + k, w.end_index, t, w.samples, w.sum_v, w.sum_i, w.sum_vv, w.sum_ii, w.sum_vi,
        w.min_v, w.max_v, w.min_i, w.max_i, w.zc_count, w.flags, w.config_seq, ...values, nwh]);
    }
    expect(rows.length).toBe(37);
    for (let k = 0; k < 37; k++) {
      const got = rows.rowAt(k);
      expect(got).toHaveLength(27);
      // Object.is: -0 stays -0, NaN stays NaN, null stays null (not 0).
      got.forEach((v, j) => expect(Object.is(v, pushed[k]![j]), `row ${k} column ${j}: ${String(v)}`).toBe(true));
    }
  });

  it('reuses its storage after length is reset', () => {
    const rows = new WindowRows(9, 4);
    rows.push(1, 1, win(1), 5, new Array(9).fill(1), new Array(9).fill(0), 1n);
    rows.length = 0;
    rows.push(2, 2, win(2), 6, new Array(9).fill(7), new Array(9).fill(1), 2n);
    expect(rows.length).toBe(1);
    expect(rows.rowAt(0).slice(0, 5)).toEqual([2, 2, win(2).end_index, 6, win(2).samples]);
    expect(rows.rowAt(0).slice(17)).toEqual([...new Array(9).fill(null), 2n]);
  });

  it('writes a row into a wider array at an offset, as rowAt gives it, leaving the rest alone', () => {
    const rows = new WindowRows(9, 4);
    for (let k = 0; k < 3; k++) rows.push(k, k, win(k), 10 + k, new Array(9).fill(k + 0.5), new Array(9).fill(k % 2), BigInt(k));
    expect(rows.columns).toBe(27);
    const wide: unknown[] = new Array(3 * 27 + 2).fill('untouched');
    for (let k = 0; k < 3; k++) rows.rowInto(k, wide, 1 + k * 27);
    expect(wide[0]).toBe('untouched');
    expect(wide[3 * 27 + 1]).toBe('untouched');
    for (let k = 0; k < 3; k++) expect(wide.slice(1 + k * 27, 1 + (k + 1) * 27)).toEqual(rows.rowAt(k));
  });
});
