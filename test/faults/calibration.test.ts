// Calibration extremes against a real `crabwatt serve --device sim` (issue 10, items 5 and 6): every value
// the API takes is refused or accepted exactly at the bounds of server/dsp/limits.ts; whatever was sent,
// windows keep coming, the counter never goes back and equals the stored window and gap energies, a PUT
// back to the defaults works, and after a restart the stored calibration is pushed to the device again and
// ingest goes on.

import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KVKI_MAX_NUMBER, SCALE_MAX, SCALE_MIN } from '../../server/dsp/limits.ts';
import { getJson, scratchDir, startServe, until, type ServeProcess } from './serve-process.ts';

interface CalibrationReply {
  calibration: Record<string, number>;
  config_seq: number | null;
}

function nextUp(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + 1n);
  return view.getFloat64(0);
}

function nextDown(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) - 1n);
  return view.getFloat64(0);
}

const PHASE_MAX = 1023 * 65536 - 1;

describe('calibration extremes against serve --device sim', () => {
  const scratch = scratchDir();
  const db = join(scratch.dir, 'cal.sqlite');
  let serve: ServeProcess;
  let device: string;
  let defaults: Record<string, number>;
  const totals: bigint[] = [];

  /** Counters straight from the database file (read-only, beside the writer). */
  function ledger(): { windows: number; windowNwh: bigint; gapNwh: bigint; total: bigint; configSeqs: number[] } {
    const conn = new Database(db, { readonly: true, fileMustExist: true });
    try {
      conn.defaultSafeIntegers(true);
      // One read transaction: the counter and the rows it sums are from the same commit.
      return conn.transaction(() => {
        const w = conn.prepare('SELECT count(*) AS n, coalesce(sum(energy_nwh), 0) AS e FROM windows').get() as { n: bigint; e: bigint };
        const g = conn.prepare('SELECT coalesce(sum(energy_nwh), 0) AS e FROM energy_gaps').get() as { e: bigint };
        const d = conn.prepare('SELECT total_nwh FROM devices').get() as { total_nwh: bigint } | undefined;
        const seqs = conn.prepare('SELECT DISTINCT config_seq FROM windows').pluck().all() as bigint[];
        return { windows: Number(w.n), windowNwh: w.e, gapNwh: g.e, total: d?.total_nwh ?? 0n, configSeqs: seqs.map(Number) };
      })();
    } finally {
      conn.close();
    }
  }

  /** Waits until more windows than now are stored, and checks the counter against them. */
  async function windowsKeepComing(): Promise<void> {
    const before = ledger().windows;
    const after = await until(async () => {
      const l = ledger();
      return l.windows > before ? l : undefined;
    });
    expect(after.total).toBe(after.windowNwh + after.gapNwh);
    totals.push(after.total);
  }

  async function put(body: string): Promise<{ status: number; json: { message?: string; config_seq?: number | null } }> {
    const res = await fetch(`${serve.url}/api/devices/${device}/calibration`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: res.status, json: (await res.json()) as { message?: string } };
  }

  const withScale = (over: Record<string, unknown>) => JSON.stringify({ ...defaults, ...over });

  beforeAll(async () => {
    serve = await startServe({ args: ['--device', 'sim', '--db', db] });
    device = await until(async () => {
      const list = await getJson<{ devices: { id: string }[] }>(`${serve.url}/api/devices`);
      return list.devices[0]?.id || undefined;
    });
    defaults = (await getJson<CalibrationReply>(`${serve.url}/api/devices/${device}/calibration`)).calibration;
    await windowsKeepComing();
  });

  afterAll(async () => {
    await serve?.stop();
    scratch.remove();
  });

  // [what, body, status]: 200 accepted, 400 refused by the schema, 422 refused by the product kv·ki.
  const cases: [string, () => string, number][] = [
    ['kv and ki 1e6 (the issue)', () => withScale({ kv: 1e6, ki: 1e6 }), 422],
    ['kv 1e6 at the default ki', () => withScale({ kv: 1e6 }), 422],
    ['kv·ki at its largest', () => withScale({ kv: KVKI_MAX_NUMBER * 2 ** 8, ki: 2 ** -8 }), 200],
    ['kv·ki one ulp above its largest', () => withScale({ kv: nextUp(KVKI_MAX_NUMBER * 2 ** 8), ki: 2 ** -8 }), 422],
    ['kv·ki at its smallest, 2^-994', () => withScale({ kv: 2 ** -497, ki: 2 ** -497 }), 200],
    ['kv·ki one ulp below its smallest', () => withScale({ kv: 2 ** -497, ki: nextDown(2 ** -497) }), 422],
    ['kv at its largest', () => withScale({ kv: SCALE_MAX, ki: SCALE_MIN }), 200],
    ['kv one ulp above its largest', () => withScale({ kv: nextUp(SCALE_MAX), ki: SCALE_MIN }), 400],
    ['kv at its smallest', () => withScale({ kv: SCALE_MIN, ki: 4 }), 200],
    ['kv one ulp below its smallest', () => withScale({ kv: nextDown(SCALE_MIN), ki: 4 }), 400],
    ['ki tiny (subnormal)', () => withScale({ ki: 5e-324 }), 400],
    ['kv zero', () => withScale({ kv: 0 }), 400],
    ['kv negative zero', () => withScale({ kv: -0 }).replace('"kv":0', '"kv":-0'), 400],
    ['kv negative', () => withScale({ kv: -defaults['kv']! }), 400],
    ['ki negative', () => withScale({ ki: -1e-3 }), 400],
    ['kv 1e400 (Infinity)', () => withScale({ kv: 1 }).replace('"kv":1', '"kv":1e400'), 400],
    ['kv NaN literal', () => withScale({ kv: 1 }).replace('"kv":1', '"kv":NaN'), 400],
    ['kv "NaN"', () => withScale({ kv: 'NaN' }), 400],
    // A string is not a number: bodies are checked without type coercion (strict-body.ts).
    ['kv "Infinity"', () => withScale({ kv: 'Infinity' }), 400],
    ['kv null', () => withScale({ kv: null }), 400],
    ['ki missing', () => JSON.stringify({ ...defaults, ki: undefined }), 400],
    ['v_gain at its largest', () => withScale({ v_gain: 65535, i_gain: 65535 }), 200],
    ['v_gain one above', () => withScale({ v_gain: 65536 }), 400],
    ['gains zero', () => withScale({ v_gain: 0, i_gain: 0 }), 200],
    ['i_gain negative', () => withScale({ i_gain: -1 }), 400],
    ['offsets at their largest', () => withScale({ v_offset: 32767, i_offset: 32767 }), 200],
    ['offsets at their smallest', () => withScale({ v_offset: -32768, i_offset: -32768 }), 200],
    ['v_offset one below', () => withScale({ v_offset: -32769 }), 400],
    ['phase at its largest', () => withScale({ phase: PHASE_MAX }), 200],
    ['phase at its smallest', () => withScale({ phase: -PHASE_MAX }), 200],
    ['phase one beyond', () => withScale({ phase: PHASE_MAX + 1 }), 400],
    ['phase fractional', () => withScale({ phase: 1.5 }), 400],
  ];

  it.each(cases)('PUT %s answers its status, and the counter holds', async (_what, body, status) => {
    const res = await put(body());
    expect(res.status, JSON.stringify(res.json)).toBe(status);
    if (status === 200) {
      expect(res.json.config_seq).toBeGreaterThan(0);
      const got = await getJson<CalibrationReply>(`${serve.url}/api/devices/${device}/calibration`);
      expect(got.config_seq).toBe(res.json.config_seq);
    } else {
      // The refusal says what is allowed.
      expect(res.json.message).toMatch(/must|outside|above|below|allowed|equal|integer|number|JSON|required/i);
    }
    const l = ledger();
    expect(l.total).toBe(l.windowNwh + l.gapNwh);
    totals.push(l.total);
  });

  it('keeps ingesting after the extremes; a PUT back to the defaults answers 200', async () => {
    await windowsKeepComing();
    const res = await put(JSON.stringify(defaults));
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    await windowsKeepComing();
    for (let k = 1; k < totals.length; k++) expect(totals[k]! >= totals[k - 1]!, `total went from ${totals[k - 1]} to ${totals[k]}`).toBe(true);
  });

  it('after a restart pushes the stored calibration again and keeps ingesting', async () => {
    const wanted = { ...defaults, v_gain: 16500, i_gain: 16300, phase: 1000 };
    expect((await put(JSON.stringify(wanted))).status).toBe(200);
    expect(await serve.stop()).toBe(0);
    serve = await startServe({ args: ['--device', 'sim', '--db', db] });
    const pushed = await until(async () => {
      const c = await getJson<CalibrationReply>(`${serve.url}/api/devices/${device}/calibration`);
      return c.config_seq !== null ? c : undefined;
    });
    expect(pushed.calibration).toEqual(wanted);
    // Windows measured with it carry its config_seq.
    await until(async () => (ledger().configSeqs.includes(pushed.config_seq!) ? true : undefined));
    await windowsKeepComing();
  });

  it('starts on a database whose stored scale an older version let in: says so, falls back, ingests', async () => {
    expect(await serve.stop()).toBe(0);
    const conn = new Database(db);
    conn.prepare('UPDATE devices SET kv = 1e6, ki = 1e6').run();
    conn.prepare('UPDATE epochs SET scale_kv = 1e6, scale_ki = 1e6').run();
    conn.close();
    serve = await startServe({ args: ['--device', 'sim', '--db', db] });
    await until(async () => (/stored scale cannot be used/.test(serve.stderr()) ? true : undefined));
    expect(serve.stderr()).toMatch(/kv·ki = 1000000000000 is above .* using kv = 0\.048828125, ki = 0\.0048828125/);
    await windowsKeepComing();
    const c = await getJson<CalibrationReply>(`${serve.url}/api/devices/${device}/calibration`);
    expect(c.calibration).toMatchObject({ kv: defaults['kv'], ki: defaults['ki'] });
    for (let k = 1; k < totals.length; k++) expect(totals[k]! >= totals[k - 1]!, `total went from ${totals[k - 1]} to ${totals[k]}`).toBe(true);
  });
});
