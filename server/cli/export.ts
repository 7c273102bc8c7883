// `crabwatt export`: CSV of stored measurements, streamed from the database to a file or stdout.

import { createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished, pipeline } from 'node:stream/promises';
import { Readable, type Writable } from 'node:stream';
import { COVERAGE_NOTE, CSV_HEADER, EXPORT_INTERVALS, ExportArgumentError, OUTAGE_NOTE, parseExportRequest, writeCsv } from '../export/csv.ts';
import { PQ_CSV_HEADERS, PQ_EXPORTS, pqCsv, type PqExport } from '../export/pq-csv.ts';
import { windowFlagList } from '../protocol/window-flags.ts';
import { CAPTURE_CSV_HEADER, captureCsv } from '../export/capture-csv.ts';
import { CaptureArchive } from '../store/captures.ts';
import { QueryError, StoreReader, UnknownDeviceError } from '../store/query.ts';
import { CliError, DEFAULT_DB, openForReading, parseCommandArgs, str, UsageError, type Io } from './common.ts';

export const EXPORT_HELP = `crabwatt export --from ISO --to ISO [--interval raw|1s|1m|15m|1h|1d | --pq harmonics|events]
                [--tz ZONE] [--device ID] [--db FILE] [-o FILE]
crabwatt export --capture N [--db FILE] [-o FILE]

Writes stored measurements as CSV (to stdout, or to FILE with -o), streamed from the database.
  --from, --to   ISO-8601 dates or instants; without an offset they are wall time in --tz.
                 Buckets whose start lies in [from, to) are written (raw: windows ending in it).
  --interval     raw windows or buckets of 1s, 1m, 15m, 1h, 1d aligned to --tz's wall clock (default 1m)
  --tz           IANA time zone for timestamps and bucket alignment (default: this machine's, else UTC)
  --device       16-hex-digit device id (default: the only device in the database)
  --db           database file (default ${DEFAULT_DB})
Header: ${CSV_HEADER}
Columns carry their unit (vrms_v in V, p_w in W, s_va in VA, n_var in var); timestamp is the bucket's start
(raw: the window's end); energy_wh is exact; samples are device samples; coverage is samples / nominal
samples of the bucket.
${wrap(`flags is the OR of the windows' WINDOW_FLAG bits: ${windowFlagList()}; flag_names gives the same bits by name, '|'-separated.`)}
Notes:
${wrap(`- ${COVERAGE_NOTE}.`)}
${wrap(`- ${OUTAGE_NOTE}.`)}
With --capture N: the kept capture N (the dashboard's Keep; GET /api/captures lists them) instead, one row per
sample pair, header ${CAPTURE_CSV_HEADER}: the device's sample index, seconds from the trigger, volts,
amperes and instantaneous watts, with the scale in force when it was taken (server/export/capture-csv.ts).
(more: server/export/csv.ts, docs/dsp.md)

--pq harmonics writes the 10-minute power-quality aggregates starting in [from, to) instead, --pq events the
dips, swells and interruptions (columns: server/export/pq-csv.ts, docs/power-quality.md). Headers:
  harmonics: timestamp,end,windows,flagged,vrms_v,irms_a,thd_v_ratio,thd_i_ratio,h1_v…h50_v,h1_a…h50_a,p1_w…p50_w
  events: ${PQ_CSV_HEADERS.events}
`;

/** Help text wrapped at 110 columns, continuation lines indented. */
function wrap(text: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > 110) {
      lines.push(line);
      line = `  ${word}`;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line].join('\n');
}

export function systemZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** The -o file, opened before the export starts: a missing folder or a read-only place is the user's to fix. */
async function openOutput(path: string): Promise<WriteStream> {
  const out = createWriteStream(path);
  try {
    await once(out, 'open');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CliError(`cannot write ${path} (${code}${code === 'ENOENT' ? ': its folder does not exist' : ''}): choose another -o FILE`);
  }
  return out;
}

export async function exportCommand(argv: string[], io: Io, stdout: Writable = process.stdout): Promise<number> {
  const { values } = parseCommandArgs('export', argv, {
    from: { type: 'string' },
    to: { type: 'string' },
    interval: { type: 'string' },
    tz: { type: 'string' },
    device: { type: 'string' },
    db: { type: 'string' },
    output: { type: 'string', short: 'o' },
    capture: { type: 'string' },
    pq: { type: 'string' },
  });
  if (values['help']) {
    io.out(EXPORT_HELP);
    return 0;
  }
  const capture = str(values, 'capture');
  if (capture !== undefined) {
    const others = ['from', 'to', 'interval', 'tz', 'device', 'pq'].filter((k) => str(values, k) !== undefined);
    if (others.length) throw new UsageError(`--capture writes a kept capture whole: leave out ${others.map((k) => `--${k}`).join(', ')}`);
    return exportKeptCapture(capture, str(values, 'db') ?? DEFAULT_DB, str(values, 'output'), stdout);
  }
  const from = str(values, 'from');
  const to = str(values, 'to');
  if (!from || !to) throw new UsageError('export needs --from and --to (ISO-8601), e.g. --from 2026-03-29 --to 2026-03-30');
  const pq = str(values, 'pq');
  if (pq !== undefined && !(PQ_EXPORTS as readonly string[]).includes(pq)) throw new UsageError(`--pq '${pq}': ${PQ_EXPORTS.join(' or ')}`);
  if (pq !== undefined && str(values, 'interval') !== undefined) throw new UsageError('--pq writes 10-minute values or events: leave --interval out');
  const dbPath = str(values, 'db') ?? DEFAULT_DB;
  const store = openForReading(dbPath);
  const output = str(values, 'output');
  try {
    const reader = new StoreReader(store.db);
    const req = parseExportRequest({
      device: str(values, 'device') ?? reader.defaultDevice(),
      from,
      to,
      interval: str(values, 'interval') ?? '1m',
      tz: str(values, 'tz') ?? systemZone(),
    });
    const device = reader.resolveDevice(req.device);
    const out = output ? await openOutput(output) : stdout;
    try {
      if (pq === undefined) await writeCsv(reader, req, out);
      else await pipeline(Readable.from(pqCsv(store.db, device.id, pq as PqExport, req.fromMs, req.toMs, req.tz)), out, { end: false });
      if (output) {
        out.end();
        await finished(out);
      }
    } catch (err) {
      if (output) {
        out.destroy();
        rmSync(output, { force: true });
      }
      // The reader of a pipe went away (`| head`): it has what it wanted, nothing failed.
      if ((err as NodeJS.ErrnoException).code === 'EPIPE') return 0;
      throw err;
    }
    return 0;
  } catch (err) {
    if (err instanceof ExportArgumentError || err instanceof QueryError || err instanceof UnknownDeviceError) {
      throw new UsageError(err.message);
    }
    throw err;
  } finally {
    store.close();
  }
}

/** `export --capture N`: a kept capture's CSV (a few MB at most, so written in one piece). */
async function exportKeptCapture(id: string, dbPath: string, output: string | undefined, stdout: Writable): Promise<number> {
  if (!/^[1-9]\d{0,15}$/.test(id)) throw new UsageError(`--capture takes the number of a kept capture (GET /api/captures lists them), got '${id}'`);
  const store = openForReading(dbPath);
  let csv: string;
  try {
    const archive = new CaptureArchive(store.db);
    const c = archive.get(Number(id));
    if (!c) {
      const kept = archive.list(undefined, 10).map((k) => `${k.id} '${k.name}'`);
      throw new UsageError(`no kept capture ${id} in ${dbPath}: ${kept.length ? `the newest are ${kept.join(', ')}` : "none is kept yet (the dashboard's Keep button)"}`);
    }
    csv = captureCsv(c);
  } finally {
    store.close();
  }
  const out = output ? await openOutput(output) : stdout;
  out.write(csv);
  if (output) {
    out.end();
    await finished(out);
  }
  return 0;
}

export { EXPORT_INTERVALS };
