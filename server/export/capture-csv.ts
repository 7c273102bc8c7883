// A kept capture (server/store/captures.ts) as CSV, for the API's GET /api/captures/:keptId/csv and `crabwatt export
// --capture ID`. One row per pair; the header line is exactly CAPTURE_CSV_HEADER, each column carrying its unit:
//   sample_index  the device's sample counter of the pair (first_index + k·decimation): exact
//   t_s           seconds from the trigger pair, (sample_index − trigger_index) / sample rate; negative before it
//   v_v, i_a      volts and amperes: the calibrated ADC LSB times the scale kv / ki in force when it was taken
//   p_w           instantaneous power v·i, watts
// Numbers other than sample_index are rounded to 9 significant digits, written as the shortest decimal (as the
// measurement export does: server/export/csv.ts).

import type { KeptCapture, KeptCaptureInfo } from '../store/captures.ts';

export const CAPTURE_CSV_HEADER = 'sample_index,t_s,v_v,i_a,p_w';

const num = (x: number) => String(Number(x.toPrecision(9)));

export function captureCsv(c: KeptCapture): string {
  const rows = [CAPTURE_CSV_HEADER];
  for (let k = 0; k < c.v.length; k++) {
    const index = c.firstIndex + k * c.decimation;
    const v = c.v[k]! * c.kv;
    const i = c.i[k]! * c.ki;
    rows.push(`${index},${num((index - c.triggerIndex) / c.sampleRateHz)},${num(v)},${num(i)},${num(v * i)}`);
  }
  return `${rows.join('\n')}\n`;
}

/** File name for a capture's exports, without the extension: crabwatt-capture-<device>-<time armed, UTC>-<name, file-safe>. */
export function captureFileStem(c: KeptCaptureInfo): string {
  const stamp = new Date(c.capturedAtMs).toISOString().replace(/[:]/g, '').replace(/\.\d+Z$/, 'Z');
  const safe = c.name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 60);
  return `crabwatt-capture-${c.device}-${stamp}${safe ? `-${safe}` : ''}`;
}
