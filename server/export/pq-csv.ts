// CSV of the stored power-quality rows (server/store/pq-query.ts): the 10-minute harmonic aggregates and the
// voltage events, for `crabwatt export --pq harmonics|events` and GET /api/pq/{harmonics,events}.csv.
// Read a page at a time, so a year of aggregates never sits in memory.
//
// harmonics: one row per 10-minute interval (IEC 61000-4-30 aggregation of the 10/12-cycle values)
//   timestamp, end        ISO-8601 in the requested zone, the interval's first window's start and last one's end
//   windows               10/12-cycle windows aggregated
//   flagged               1 when a dip, swell or interruption touched the interval (the standard's flag), else 0
//   vrms_v, irms_a        RMS of the windows' values
//   thd_v_ratio, thd_i_ratio  THDS over orders 2 … 40 as a ratio (0.05 = 5 %); empty without a fundamental
//   h1_v … h50_v, h1_a … h50_a  harmonic subgroup RMS per order (IEC 61000-4-7), V and A
//   p1_w … p50_w          harmonic active power per order, W
// events: one row per dip, swell or interruption (IEC 61000-4-30)
//   timestamp             ISO-8601 in the requested zone, with milliseconds: the event's start
//   kind                  dip, swell or interruption
//   duration_s            its duration
//   extreme_v             residual (dip, interruption) or maximum (swell) Urms(1/2)
//   cut                   1 when the waveform stream ended (a loss, a reset) before the event did
// Numbers: 9 significant digits, as the measurement export (csv.ts): String(Number(x.toPrecision(9))).

import { DateTime } from 'luxon';
import { MAX_ORDER } from '../pq/iec61000-4-7.ts';
import { readPqAggregates, readPqEvents } from '../store/pq-query.ts';
import type Database from 'better-sqlite3';

export const PQ_EXPORTS = ['harmonics', 'events'] as const;
export type PqExport = (typeof PQ_EXPORTS)[number];

const orders = (unit: string, prefix = 'h'): string[] => Array.from({ length: MAX_ORDER }, (_, k) => `${prefix}${k + 1}_${unit}`);

export const PQ_CSV_HEADERS: Record<PqExport, string> = {
  harmonics: ['timestamp', 'end', 'windows', 'flagged', 'vrms_v', 'irms_a', 'thd_v_ratio', 'thd_i_ratio', ...orders('v'), ...orders('a'), ...orders('w', 'p')].join(','),
  events: 'timestamp,kind,duration_s,extreme_v,cut',
};

/** Rows read per query. */
const PAGE = 500;

const num = (x: number | null): string => (x === null ? '' : String(Number(x.toPrecision(9))));

/** The CSV of `what` for the device (its row id) over [fromMs, toMs): header line, then a chunk per page. */
export function* pqCsv(db: Database.Database, device: number, what: PqExport, fromMs: number, toMs: number, tz: string): Generator<string> {
  yield `${PQ_CSV_HEADERS[what]}\n`;
  const iso = (ms: number, withMs: boolean): string =>
    DateTime.fromMillis(ms, { zone: tz }).toISO({ suppressMilliseconds: !withMs }) ?? '';
  for (let offset = 0; ; offset += PAGE) {
    if (what === 'harmonics') {
      const rows = readPqAggregates(db, device, fromMs, toMs, PAGE, offset);
      yield rows
        .map((a) =>
          [iso(a.tStartMs, false), iso(a.tEndMs, false), a.windows, a.flagged ? 1 : 0, num(a.vrms), num(a.irms), num(a.thdV), num(a.thdI),
            ...a.hV.map(num), ...a.hI.map(num), ...a.pH.map(num)].join(',') + '\n')
        .join('');
      if (rows.length < PAGE) return;
    } else {
      const rows = readPqEvents(db, device, fromMs, toMs, PAGE, offset);
      yield rows.map((e) => `${iso(e.tStartMs, true)},${e.kind},${num(e.durationMs / 1000)},${num(e.extremeV)},${e.cut ? 1 : 0}\n`).join('');
      if (rows.length < PAGE) return;
    }
  }
}
