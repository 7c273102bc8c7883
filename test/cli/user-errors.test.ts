// Errors that are the user's (a path that cannot be, a time or number that is not one) get one line and exit 1
// (2 for wrong usage), never "a bug" with a stack trace and exit 70. Run through main(), as the bin does.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError, parseTime } from '../../server/api/params.ts';
import { main } from '../../server/cli.ts';
import { Store } from '../../server/store/store.ts';
import { derivedFor, makeWindow, tempDir } from '../store/helpers.ts';

let dir: string;
let cleanup: () => void;
let db: string;
const T0 = Date.UTC(2026, 2, 28, 12);

beforeAll(() => {
  ({ dir, cleanup } = tempDir('crabwatt-cli-errors-'));
  db = join(dir, 'ok.sqlite');
  const store = Store.open(db);
  const dev = store.attachDevice({ deviceId: 0xabcdn, bootId: 1, fsNum: 1000, fsDen: 1, defaultKv: 0.05, defaultKi: 0.004 }, T0);
  store.addWindow(dev, makeWindow(200n, 200, 1000n), derivedFor(5), T0);
  store.close();
  writeFileSync(join(dir, 'plain-file'), 'x');
  mkdirSync(join(dir, 'a-folder'));
});
afterAll(() => cleanup());

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (t) => void (stdout += t), err: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}

const range = ['--from', '2026-03-28', '--to', '2026-03-29', '--tz', 'UTC'];

// [name, argv (DIR is the scratch folder, DB the database), exit code, what stderr says]
const CASES: [string, (string | ((d: string) => string))[], number, RegExp][] = [
  ['export --db in a missing folder', ['export', '--db', (d) => join(d, 'missing', 'x.sqlite'), ...range], 1, /no such file/],
  ['export --db that is a folder', ['export', '--db', (d) => join(d, 'a-folder'), ...range], 1, /cannot open database/],
  ['devices --db that is a folder', ['devices', '--db', (d) => join(d, 'a-folder')], 1, /cannot open database/],
  ['export -o into a missing folder', ['export', '--db', () => db, ...range, '-o', (d) => join(d, 'missing', 'out.csv')], 1, /its folder does not exist.*choose another -o/],
  ['export -o onto a folder', ['export', '--db', () => db, ...range, '-o', (d) => join(d, 'a-folder')], 1, /cannot write .*EISDIR/],
  ['serve --db under a plain file', ['serve', '--device', 'sim', '--listen', '127.0.0.1:0', '--db', (d) => join(d, 'plain-file', 'x.sqlite')], 1, /cannot write next to .*x.sqlite \(EEXIST\): choose a writable place/],
  ['export --from with offset +99:00', ['export', '--db', () => db, '--from', '2026-03-28T00:00+99:00', '--to', '2026-03-29'], 2, /\+99:00 is not a UTC offset/],
  ['export --to with offset -13:00', ['export', '--db', () => db, '--from', '2026-03-28', '--to', '2026-03-29T00:00-13:00'], 2, /-13:00 is not a UTC offset/],
  ['export --from with offset +05:99', ['export', '--db', () => db, '--from', '2026-03-28T00:00+05:99', '--to', '2026-03-29'], 2, /\+05:99 is not a UTC offset/],
  ['export --from that is no date', ['export', '--db', () => db, '--from', 'yesterday', '--to', '2026-03-29'], 2, /not an ISO-8601 date/],
  ['export --tz unknown', ['export', '--db', () => db, '--from', '2026-03-28', '--to', '2026-03-29', '--tz', 'Mars/Olympus'], 2, /unknown time zone/],
  ['export --interval unknown', ['export', '--db', () => db, ...range, '--interval', '7m'], 2, /unknown interval/],
  ['export --from after --to', ['export', '--db', () => db, '--from', '2026-03-29', '--to', '2026-03-28'], 2, /range is empty/],
  ['serve --speed hex', ['serve', '--speed', '0x10'], 2, /--speed '0x10'/],
  ['serve --speed empty', ['serve', '--speed', ''], 2, /--speed ''/],
  ['serve --speed 0', ['serve', '--speed', '0'], 2, /from 0.01 to 1000/],
  ['serve --speed huge', ['serve', '--speed', '1e9'], 2, /from 0.01 to 1000/],
  ['serve --speed overflow', ['serve', '--speed', '1e999'], 2, /--speed '1e999'/],
  ['serve --nominal-hz 55', ['serve', '--nominal-hz', '55'], 2, /--nominal-hz '55': 50 or 60/],
  ['serve --declared-v 0', ['serve', '--declared-v', '0'], 2, /--declared-v '0': a voltage > 0/],
  ['export --pq unknown', ['export', '--db', () => db, ...range, '--pq', 'flicker'], 2, /--pq 'flicker': harmonics or events/],
  ['export --pq with --interval', ['export', '--db', () => db, ...range, '--pq', 'events', '--interval', '1m'], 2, /leave --interval out/],
  ['serve --keep-windows-days a nanoday', ['serve', '--keep-windows-days', '1e-9'], 2, /whole days/],
  ['serve --keep-windows-days fraction', ['serve', '--keep-windows-days', '1.5'], 2, /whole days/],
  ['serve --keep-windows-days negative', ['serve', '--keep-windows-days=-1'], 2, /whole days/],
  ['serve --keep-windows-days spaces', ['serve', '--keep-windows-days', ' 7 '], 2, /whole days/],
  ['serve --listen port too big', ['serve', '--listen', '127.0.0.1:70000'], 2, /outside 0..65535/],
  ['serve --listen without port', ['serve', '--listen', 'localhost'], 2, /HOST:PORT/],
  ['replay --rate hex', ['replay', '--input', '-', '--rate', '0x10', '--v-scale', '1', '--i-scale', '1'], 2, /--rate '0x10'/],
  ['replay --hysteresis fraction', ['replay', '--input', (d) => join(d, 'plain-file'), '--rate', '1000', '--v-scale', '1', '--i-scale', '1', '--hysteresis', '1.5'], 2, /an integer/],
];

describe('user errors on the command line', () => {
  it.each(CASES)('%s: one line and the exit code', async (_name, argv, exitCode, says) => {
    const r = await run(argv.map((a) => (typeof a === 'function' ? a(dir) : a)));
    expect(r.stderr).toMatch(says);
    expect(r.stderr).not.toMatch(/a bug|\n\s+at /);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.code).toBe(exitCode);
  });

  it('still takes the edges: offsets -12:00 and +14:00', async () => {
    const r = await run(['export', '--db', db, '--from', '2026-03-28T00:00+14:00', '--to', '2026-03-29T00:00-12:00', '--tz', 'UTC', '-o', join(dir, 'edges.csv')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('API times', () => {
  it.each(['2026-03-28T00:00+99:00', '2026-03-28T00:00+05:99', '2026-03-28T00:00-12:30', '2026-03-28T00:00+1401'])(
    '%s is a 400 naming the parameter',
    (value) => {
      expect(() => parseTime(value, 'from')).toThrow(BadRequestError);
      expect(() => parseTime(value, 'from')).toThrow(/'from' must be Unix milliseconds or ISO-8601/);
    },
  );
  it('takes the real offsets', () => {
    expect(parseTime('2026-03-28T00:00+14:00', 'from')).toBe(Date.UTC(2026, 2, 27, 10));
    expect(parseTime('2026-03-28T00:00-12:00', 'from')).toBe(Date.UTC(2026, 2, 28, 12));
  });
});
