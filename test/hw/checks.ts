// The judgement of the hardware smoke test (test/hw/smoke.ts), apart from any I/O so that it can be
// tested here without a board: given what a device sent during a run, which expectations hold.
//
// Checks, each with its reason:
//   identify     the device answered cmd_identify, speaks our protocol version, has a sane sample rate
//   link         no CRC or framing errors (beyond one torn frame at the moment the port opened)
//   sequence     no seq gaps on the host side and no frames dropped by the firmware during the run
//   windows      windows arrive, tile the sample stream (each starts where the previous ended)
//   energy       each energy snapshot equals the previous one plus the sum_vi of the windows between
//   sample-rate  the sample index advances at the announced rate by the host's clock (±2 %)
//   status       status frames once a second, uptime keeping pace, no FIFO overflow or sample loss
//   values       derived quantities are finite and inside what a 14-bit ADC can produce

import type { Frame } from '../../server/protocol/codec.ts';
import { PROTOCOL_VERSION } from '../../server/protocol/definition.ts';
import { derive, type DeriveScale } from '../../server/dsp/derive.ts';

export interface Observation {
  /** host clock when the frame arrived, ms */
  atMs: number;
  frame: Frame;
}

export interface LinkErrors {
  crcErrors: number;
  framingErrors: number;
  protocolErrors: number;
  seqGaps: number;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

type Of<N extends Frame['name']> = Extract<Frame, { name: N }>;

const RATE_TOLERANCE = 0.02;
/** Largest |calibrated sample| at unity gain is 8192; Q2.14 gains up to 4× saturate at 32767. */
const FULL_SCALE_LSB = 32768;

function pick<N extends Frame['name']>(obs: readonly Observation[], name: N): { atMs: number; frame: Of<N> }[] {
  return obs.filter((o) => o.frame.name === name) as { atMs: number; frame: Of<N> }[];
}

export function judge(obs: readonly Observation[], errors: LinkErrors, scale: Omit<DeriveScale, 'fs'>): CheckResult[] {
  const results: CheckResult[] = [];
  const check = (name: string, ok: boolean, detail: string) => results.push({ name, ok, detail });

  const identify = pick(obs, 'identify').at(-1)?.frame;
  const fs = identify && identify.fields.sample_rate_den > 0 ? identify.fields.sample_rate_num / identify.fields.sample_rate_den : 0;
  check(
    'identify',
    !!identify && identify.fields.protocol_version === PROTOCOL_VERSION && fs > 0,
    identify
      ? `board ${identify.fields.board}, adc ${identify.fields.adc_part}, protocol ${identify.fields.protocol_version}, ` +
          `gateware ${version(identify.fields.gateware_version)}, firmware ${version(identify.fields.firmware_version)}, ${fs} samples/s`
      : 'no identify frame in answer to cmd_identify',
  );

  check(
    'link',
    errors.crcErrors === 0 && errors.framingErrors <= 1 && errors.protocolErrors === 0,
    `${errors.crcErrors} CRC errors, ${errors.framingErrors} framing errors, ${errors.protocolErrors} protocol errors`,
  );

  const statuses = pick(obs, 'status');
  const firstStatus = statuses[0]?.frame.fields;
  const lastStatus = statuses.at(-1)?.frame.fields;
  const droppedDuring = firstStatus && lastStatus ? lastStatus.frames_dropped - firstStatus.frames_dropped : 0;
  check(
    'sequence',
    errors.seqGaps === 0 && droppedDuring === 0,
    `${errors.seqGaps} frames missing from the sequence, ${droppedDuring} dropped by the firmware during the run`,
  );

  const windows = pick(obs, 'window').map((o) => o.frame.fields);
  let tilingBreaks = 0;
  for (let k = 1; k < windows.length; k++) {
    if (windows[k]!.end_index - BigInt(windows[k]!.samples) !== windows[k - 1]!.end_index) tilingBreaks++;
  }
  check(
    'windows',
    windows.length >= 5 && tilingBreaks === 0,
    `${windows.length} windows, ${tilingBreaks} that do not start where the previous one ended`,
  );

  // Energy: between two snapshots, the windows that ended in (previous end, this end] add up exactly.
  const energies = pick(obs, 'energy').map((o) => o.frame.fields);
  let energyChecked = 0;
  let energyWrong = 0;
  for (let k = 1; k < energies.length; k++) {
    const from = energies[k - 1]!;
    const to = energies[k]!;
    if (from.boot_id !== to.boot_id) continue;
    const between = windows.filter((w) => w.end_index > from.end_index && w.end_index <= to.end_index);
    const covered = between.reduce((n, w) => n + BigInt(w.samples), 0n);
    if (covered !== to.end_index - from.end_index) continue; // a window missing: nothing to compare
    energyChecked++;
    const sum = between.reduce((e, w) => e + w.sum_vi, 0n);
    if (to.energy - from.energy !== sum) energyWrong++;
  }
  check(
    'energy',
    energyChecked > 0 && energyWrong === 0,
    `${energyChecked} snapshot pairs compared with the windows between them, ${energyWrong} differ`,
  );

  const timed = pick(obs, 'window');
  const seconds = timed.length >= 2 ? (timed.at(-1)!.atMs - timed[0]!.atMs) / 1000 : 0;
  if (timed.length >= 3 && fs > 0 && seconds >= 3) {
    // Least-squares slope of end_index against arrival time: a window arrives up to one window
    // length late, and fitting all of them averages that out where two end points would not.
    const t0 = timed[0]!.atMs;
    const i0 = timed[0]!.frame.fields.end_index;
    const xs = timed.map((o) => (o.atMs - t0) / 1000);
    const ys = timed.map((o) => Number(o.frame.fields.end_index - i0));
    const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
    const my = ys.reduce((a, b) => a + b, 0) / ys.length;
    let sxy = 0;
    let sxx = 0;
    for (let k = 0; k < xs.length; k++) {
      sxy += (xs[k]! - mx) * (ys[k]! - my);
      sxx += (xs[k]! - mx) ** 2;
    }
    const rate = sxx > 0 ? sxy / sxx : 0;
    check(
      'sample-rate',
      Math.abs(rate / fs - 1) <= RATE_TOLERANCE,
      `${rate.toFixed(0)} samples/s fitted over ${timed.length} windows in ${seconds.toFixed(1)} s (announced ${fs})`,
    );
  } else {
    check('sample-rate', false, `${timed.length} windows over ${seconds.toFixed(1)} s: too few to measure (need 3 over 3 s)`);
  }

  const runSeconds = obs.length > 1 ? (obs.at(-1)!.atMs - obs[0]!.atMs) / 1000 : 0;
  let statusOk = statuses.length >= Math.floor(runSeconds) - 1 && statuses.length >= 2;
  let statusDetail = `${statuses.length} status frames in ${runSeconds.toFixed(1)} s`;
  if (firstStatus && lastStatus && statuses.length >= 2) {
    const hostMs = statuses.at(-1)!.atMs - statuses[0]!.atMs;
    const deviceMs = lastStatus.uptime_ms - firstStatus.uptime_ms;
    const overflows = lastStatus.fifo_overflows - firstStatus.fifo_overflows;
    const lost = lastStatus.samples_dropped - firstStatus.samples_dropped;
    const adc = lastStatus.adc_errors - firstStatus.adc_errors;
    statusOk &&= Math.abs(deviceMs - hostMs) <= Math.max(250, 0.02 * hostMs) && overflows === 0 && lost === 0 && adc === 0;
    statusDetail +=
      `; device uptime advanced ${deviceMs} ms in ${hostMs.toFixed(0)} ms; during the run ${overflows} FIFO overflows, ` +
      `${lost} samples dropped, ${adc} ADC errors; ${lastStatus.watchdog_resets} watchdog resets since power-on`;
  }
  check('status', statusOk, statusDetail);

  let implausible = 0;
  let vrmsMax = 0;
  let irmsMax = 0;
  for (const w of windows) {
    const extremes = [w.min_v, w.max_v, w.min_i, w.max_i];
    const d = fs > 0 && w.samples > 0 ? derive(w, { ...scale, fs }) : undefined;
    const finite = d && [d.vrms, d.irms, d.p, d.s, d.n].every(Number.isFinite);
    const inRange = d && d.vrms <= scale.kv * FULL_SCALE_LSB && d.irms <= scale.ki * FULL_SCALE_LSB;
    if (!finite || !inRange || w.min_v > w.max_v || w.min_i > w.max_i || extremes.some((x) => Math.abs(x) > FULL_SCALE_LSB)) {
      implausible++;
    } else {
      vrmsMax = Math.max(vrmsMax, d.vrms);
      irmsMax = Math.max(irmsMax, d.irms);
    }
  }
  check('values', windows.length > 0 && implausible === 0, `${implausible} implausible windows; largest vrms ${vrmsMax.toFixed(3)}, irms ${irmsMax.toFixed(3)} (kv ${scale.kv}, ki ${scale.ki})`);

  return results;
}

function version(v: number): string {
  return `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}
