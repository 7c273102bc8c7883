// `crabwatt export --capture N`: a kept capture's CSV from the database, as the API serves it; a wrong number or
// mixed-in range options are refused saying what to do.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../server/cli.ts';
import type { Io } from '../../server/cli/common.ts';
import { exportCommand } from '../../server/cli/export.ts';
import { CAPTURE_CSV_HEADER, captureCsv } from '../../server/export/capture-csv.ts';
import { CaptureArchive } from '../../server/store/captures.ts';
import { Store } from '../../server/store/store.ts';
import { tempDir } from '../store/helpers.ts';

function io(): Io & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => void (out += t), err: (t) => void (err += t), stdout: () => out, stderr: () => err };
}

let dir: string;
let cleanup: () => void;
let db: string;
const c = {
  device: '0000000000001234', name: 'motor start', capturedAtMs: Date.UTC(2026, 2, 29), sampleRateHz: 4e6, decimation: 2,
  kv: 0.05, ki: 0.004, firstIndex: 1000, triggerIndex: 1004, triggerOffset: 2, v: [-100, 0, 100, 200], i: [10, 20, -30, 0],
};

beforeAll(() => {
  ({ dir, cleanup } = tempDir('crabwatt-export-capture-'));
  db = join(dir, 'c.sqlite');
  const store = Store.open(db);
  new CaptureArchive(store.db).keep(c, Date.UTC(2026, 2, 30));
  store.close();
});
afterAll(() => cleanup());

describe('crabwatt export --capture', () => {
  it('writes the kept capture as CSV, to a file or stdout', async () => {
    const out = join(dir, 'capture.csv');
    expect(await main(['export', '--db', db, '--capture', '1', '-o', out], io())).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toBe(
      `${CAPTURE_CSV_HEADER}\n1000,-0.000001,-5,0.04,-0.2\n1002,-5e-7,0,0.08,0\n1004,0,5,-0.12,-0.6\n1006,5e-7,10,0,0\n`,
    );
    let piped = '';
    const stdout = new Writable({ write: (chunk: Buffer, _enc, done) => { piped += chunk.toString(); done(); } });
    expect(await exportCommand(['--db', db, '--capture', '1'], io(), stdout)).toBe(0);
    expect(piped).toBe(text);
    expect(text).toBe(captureCsv({ ...c, id: 1, keptAtMs: 0, pairs: 4 }));
  });

  it('refuses an unknown or malformed number and range options, saying what to do', async () => {
    const runs: [string[], RegExp][] = [
      [['--capture', '7'], /no kept capture 7 in .*the newest are 1 'motor start'/],
      [['--capture', 'x'], /--capture takes the number of a kept capture/],
      [['--capture', '1', '--from', '2026-03-29'], /leave out --from/],
    ];
    for (const [args, message] of runs) {
      const r = io();
      expect(await main(['export', '--db', db, ...args], r)).toBe(2);
      expect(r.stderr()).toMatch(message);
    }
  });
});
