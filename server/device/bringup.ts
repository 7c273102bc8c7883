// `crabwatt bringup`: the first power-up of a board with the ADC wing, as guided steps. Each step
// measures, says PASS or FAIL (SKIP where it cannot apply) and, on a FAIL, what to check on the bench.
// docs/hardware-setup.md "Bring-up" is the procedure a user follows.
//
// The capture-point scan reads raw codes through captures at identity calibration: the calibration
// the device had is put back afterwards (on a board that rewrites it in flash, where it was anyway).
// The chosen READ_DELAY is set on the device, not saved: a reset returns the gateware's default; the
// host is where it belongs (docs/hardware-setup.md "Bring-up" says why).

import { BOARD, CALIBRATION_SOURCE, WINDOW_FLAG } from '../protocol/definition.ts';
import type { Frame } from '../protocol/codec.ts';
import { deriveQuantities } from '../dsp/derive.ts';
import { choose, judge, MID_SCALE, OFFSET_TOLERANCE_LSB, type Verdict } from './adc-judge.ts';
import { IDENTITY_CALIBRATION, Probe, ProbeError, type Calibration } from './bringup-probe.ts';
import type { DeviceLink } from './link.ts';

export type Inputs = { kind: 'shorted' } | { kind: 'dc'; volts: number; amps: number };
export type StepStatus = 'PASS' | 'FAIL' | 'SKIP';
export const STEP_NAMES = ['identity', 'link', 'scan', 'codes', 'noise', 'rate', 'live'] as const;
export type StepName = (typeof STEP_NAMES)[number];

export interface StepResult {
  step: StepName;
  status: StepStatus;
  /** What was measured, one line each. */
  lines: string[];
  /** On a FAIL: what to check on the bench. */
  advice?: string;
  data: Record<string, unknown>;
}

export interface BringupOptions {
  inputs: Inputs;
  /** Front-end scale, V and A per LSB (the wing's defaults until calibrated). */
  scale: { kv: number; ki: number };
  /** READ_DELAY settings scanned: from, from + step, ... < to. */
  scan?: { from: number; to: number; step: number };
  /** Raw pairs judged per setting (at most one capture chunk keeps it quick). */
  scanPairs?: number;
  /** Raw pairs for the codes and noise steps. */
  codePairs?: number;
  /** Host time the sample rate is measured over, and how late a capture may reach the host. */
  rateSeconds?: number;
  rateJitterMs?: number;
  liveWindows?: number;
  liveTimeoutMs?: number;
  /** How long a command's answer may take before the step fails (default 10 s: a board answers in
   *  milliseconds, the RTL twin on a busy machine in up to seconds). */
  requestTimeoutMs?: number;
  /** Progress lines while a step runs (the scan's settings). */
  progress?: (line: string) => void;
  now?: () => number;
}

/** Shorted inputs: the codes' spread around their mean, above which the front end is noisy. */
export const NOISE_LIMIT_LSB_RMS = 4;
/** A 48 MHz crystal within ±50 ppm; the USB/host delivery jitter is added over the measured span. */
export const CRYSTAL_TOLERANCE_PPM = 50;

const PINS = 'CS on Feather io 5 and SCLK on SCK (FPGA to ADC), SDATA_A on CIPO (voltage) and SDATA_B on io 6 (current)';

export interface BringupReport {
  ok: boolean;
  steps: StepResult[];
  summary: Record<string, unknown>;
}

function fail(step: StepName, lines: string[], advice: string, data: Record<string, unknown> = {}): StepResult {
  return { step, status: 'FAIL', lines, advice, data };
}
const version = (v: number) => `${v >>> 16}.${(v >>> 8) & 0xff}.${v & 0xff}`;
const nameOf = (table: Record<string, number>, value: number) =>
  Object.entries(table).find(([, v]) => v === value)?.[0].toLowerCase() ?? `unknown (${value})`;

/** The row of marks: `#` a passing setting, `.` a failing one, `^` the chosen. */
export function eyeRow(verdicts: readonly Verdict[], chosen: number | null): string {
  return verdicts.map((v) => (v.readDelay === chosen ? '^' : v.ok ? '#' : '.')).join('');
}

function meanAndRms(values: readonly number[]): { mean: number; rms: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return { mean, rms: Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length) };
}

export async function runBringup(link: DeviceLink, options: BringupOptions): Promise<BringupReport> {
  const o = {
    scan: { from: 0, to: 192, step: 1 }, scanPairs: 256, codePairs: 1024, rateSeconds: 5, rateJitterMs: 5,
    liveWindows: 3, liveTimeoutMs: 10_000, requestTimeoutMs: 10_000, progress: () => {}, now: () => performance.now(),
    ...options,
  };
  const probe = new Probe(link, o.requestTimeoutMs, o.now);
  const expect: [number, number] = o.inputs.kind === 'shorted' ? [MID_SCALE, MID_SCALE]
    : [MID_SCALE + Math.round(o.inputs.volts / o.scale.kv), MID_SCALE + Math.round(o.inputs.amps / o.scale.ki)];
  const steps: StepResult[] = [];
  const guard = async (step: StepName, run: () => Promise<StepResult>, advice: string) => {
    try {
      steps.push(await run());
    } catch (error) {
      if (!(error instanceof ProbeError) && (error as Error).name !== 'DeviceLinkError') throw error;
      steps.push(fail(step, [(error as Error).message], advice));
    }
    return steps.at(-1)!;
  };

  // 1. Identity.
  let identify: Frame<'identify'> | null = null;
  const identity = await guard('identity', async () => {
    identify = await probe.identify();
    const f = identify.fields;
    const lines = [
      `device_id ${f.device_id.toString(16).padStart(16, '0')}, board ${nameOf(BOARD, f.board)}, ` +
        `firmware ${version(f.firmware_version)}, gateware ${version(f.gateware_version)}`,
      `calibration: ${nameOf(CALIBRATION_SOURCE, f.calibration_source)}`,
    ];
    const data = { device_id: f.device_id.toString(16), board: f.board, calibration_source: f.calibration_source };
    const isBoard = f.board === BOARD.ORANGECRAB_R0_1 || f.board === BOARD.ORANGECRAB_R0_2;
    if (isBoard && (f.device_id === 0n || f.calibration_source === CALIBRATION_SOURCE.NO_FLASH)) {
      return fail('identity', lines, 'The configuration flash did not answer (no unique ID, nothing can be saved): ' +
        'reflash with `crabwatt flash`; if it persists the board\'s SPI flash is faulty.', data);
    }
    return { step: 'identity', status: 'PASS', lines, data };
  }, 'No identify frame: check the USB cable (a data cable, not charge-only), that the board runs crabwatt and ' +
    'not the bootloader (`crabwatt devices`; `crabwatt flash` to install it), and the port you gave.');
  if (identity.status === 'FAIL' || identify === null) return finish(steps, {});
  const id: Frame<'identify'> = identify;
  const fs = id.fields.sample_rate_num / id.fields.sample_rate_den;

  // 2. USB link: a few commands answered, nothing lost or damaged meanwhile.
  await guard('link', async () => {
    const before = { ...link.counters };
    const status0 = await probe.status();
    for (let k = 0; k < 4; k++) await probe.status();
    const status1 = await probe.status();
    const c = link.counters;
    const damaged = c.crcErrors - before.crcErrors + c.framingErrors - before.framingErrors + c.protocolErrors - before.protocolErrors;
    const lost = c.seqGaps - before.seqGaps;
    const dropped = status1.fields.frames_dropped - status0.fields.frames_dropped;
    const lines = [`${c.frames - before.frames} frames, ${damaged} damaged, ${lost} missing, ${dropped} dropped by the device`];
    const data = { frames: c.frames - before.frames, damaged, missing: lost, dropped };
    if (damaged || lost || dropped) {
      return fail('link', lines, 'Frames were damaged or lost: use another USB cable and port (no unpowered hub), keep ' +
        'the cable away from mains wiring; on the Feather UART, check TX/RX and ground and the 3 Mbaud rate.', data);
    }
    return { step: 'link', status: 'PASS', lines, data };
  }, 'The device stopped answering: check the cable and the port, then run again.');

  // 3-5 need identity calibration for raw codes; the device's own is put back afterwards.
  const saved: Calibration = {
    v_offset: id.fields.v_offset, i_offset: id.fields.i_offset, v_gain: id.fields.v_gain, i_gain: id.fields.i_gain, phase: id.fields.phase,
  };
  const isIdentity = (Object.keys(IDENTITY_CALIBRATION) as (keyof Calibration)[]).every((k) => saved[k] === IDENTITY_CALIBRATION[k]);
  const summary: Record<string, unknown> = { device_id: id.fields.device_id.toString(16) };
  try {
    if (!isIdentity) await probe.command('cmd_calibrate', IDENTITY_CALIBRATION);
    await scanStep(probe, o, expect, steps, summary, guard);
    await codeSteps(probe, o, expect, steps, guard);
  } finally {
    if (!isIdentity) await probe.command('cmd_calibrate', saved).catch(() => undefined);
  }

  // 6. Sample rate against the host clock.
  if (id.fields.board === BOARD.RTL_TWIN || id.fields.board === BOARD.SIMULATED) {
    steps.push({ step: 'rate', status: 'SKIP', lines: ['a simulation: its sample clock is not a crystal'], data: {} });
  } else {
    await guard('rate', async () => {
      const a = await probe.rawCodes(1);
      await new Promise((r) => setTimeout(r, o.rateSeconds * 1000));
      const b = await probe.rawCodes(1);
      const rate = judgeRate(a, b, fs, o.rateJitterMs);
      const lines = [`${(rate.sps / 1e6).toFixed(6)} Msps over ${(rate.spanMs / 1000).toFixed(1)} s of host time: ` +
        `${rate.ppm.toFixed(0)} ppm from ${fs} (tolerance ±${rate.tolerancePpm.toFixed(0)} ppm)`];
      summary.rate_ppm = Math.round(rate.ppm);
      if (!rate.ok) {
        return fail('rate', lines, 'The sample clock is off: check the board\'s 48 MHz oscillator and that the bitstream ' +
          'matches the board revision (`crabwatt flash`); a host under heavy load spoils the measurement, so run again first.', rate);
      }
      return { step: 'rate', status: 'PASS', lines, data: rate };
    }, 'No capture came back for the sample-rate measurement: check the link and run again.');
  }

  // 7. A short live reading.
  await guard('live', async () => {
    // Windows computed from now on, at the chosen capture point and the device's own calibration.
    const { firstIndex } = await probe.rawCodes(1);
    const windows = await probe.windows(o.liveWindows, o.liveTimeoutMs, firstIndex);
    const last = windows.at(-1)!;
    const q = deriveQuantities(last.fields, { ...o.scale, fs });
    const lines = [`V ${q.vrms.toFixed(2)} V, I ${q.irms.toFixed(3)} A, P ${q.p.toFixed(1)} W, ` +
      `f ${q.freq_hz === null ? '- (no crossings)' : `${q.freq_hz.toFixed(3)} Hz`}, ${windows.length} windows`];
    const data = { v: q.vrms, i: q.irms, p: q.p, f: q.freq_hz };
    summary.live = data;
    const overload = WINDOW_FLAG.CLIP_V | WINDOW_FLAG.CLIP_I | WINDOW_FLAG.SAT_V | WINDOW_FLAG.SAT_I;
    if (windows.some((w) => w.fields.flags & overload)) {
      return fail('live', lines, 'The inputs clip or saturate: the signal is beyond the front end\'s range; check the ' +
        'divider/shunt and that nothing but the intended source is connected.', data);
    }
    return { step: 'live', status: 'PASS', lines, data };
  }, 'No measurement windows arrived: check `crabwatt devices` for the link and that the DSP is configured ' +
    '(cycles windows need a voltage that crosses zero, or they close only at max_samples).');
  return finish(steps, summary);
}

/**
 * The sample rate from two captures' first sample indices and the host times they arrived, against
 * the nominal `fs`: within a crystal's tolerance plus the delivery jitter (either arrival may be late
 * by up to `jitterMs`) over the span.
 */
export function judgeRate(a: { firstIndex: bigint; arrivedMs: number }, b: { firstIndex: bigint; arrivedMs: number },
  fs: number, jitterMs: number) {
  const spanMs = b.arrivedMs - a.arrivedMs;
  const sps = Number(b.firstIndex - a.firstIndex) / (spanMs / 1000);
  const ppm = (sps / fs - 1) * 1e6;
  const tolerancePpm = CRYSTAL_TOLERANCE_PPM + ((2 * jitterMs) / spanMs) * 1e6;
  return { ok: spanMs > 0 && Math.abs(ppm) <= tolerancePpm, sps, ppm, tolerancePpm, spanMs };
}

function finish(steps: StepResult[], summary: Record<string, unknown>): BringupReport {
  const ok = steps.every((s) => s.status !== 'FAIL');
  const byStep = Object.fromEntries(STEP_NAMES.map((n) => [n, steps.find((s) => s.step === n)?.status ?? 'SKIP']));
  return { ok, steps, summary: { ok, steps: byStep, ...summary } };
}

type Opts = Required<Omit<BringupOptions, 'inputs' | 'scale'>> & Pick<BringupOptions, 'inputs' | 'scale'>;
type Guard = (step: StepName, run: () => Promise<StepResult>, advice: string) => Promise<StepResult>;

/** 3. The capture-point scan: judge every setting, set the middle of the widest passing run. */
async function scanStep(probe: Probe, o: Opts, expect: [number, number], steps: StepResult[],
  summary: Record<string, unknown>, guard: Guard): Promise<void> {
  await guard('scan', async () => {
    const original = (await probe.adcDelay()).readDelay;
    const verdicts: Verdict[] = [];
    for (let r = o.scan.from; r < o.scan.to; r += o.scan.step) {
      const at = await probe.setAdcDelay(r);
      // Asked again after SETTLED: the few frames read while the phase moved have ended by now (a
      // round trip is many conversions), so their errors are before this count, their codes before the capture.
      const before = (await probe.adcDelay()).errors16;
      const { codes } = await probe.rawCodes(o.scanPairs);
      const errors = ((await probe.adcDelay()).errors16 - before) & 0xffff;
      verdicts.push(judge(at.readDelay, codes, errors, expect));
      o.progress(`read_delay ${r}: ${verdicts.at(-1)!.ok ? 'pass' : verdicts.at(-1)!.reason}`);
    }
    const { readDelay, width } = choose(verdicts);
    const row = eyeRow(verdicts, readDelay);
    const lines = [`read_delay ${o.scan.from}..${o.scan.to - 1} step ${o.scan.step}: ${row}`];
    const passing = verdicts.filter((v) => v.ok);
    const data = { chosen: readDelay, width, eye: row, first: passing[0]?.readDelay ?? null, last: passing.at(-1)?.readDelay ?? null };
    summary.read_delay = readDelay;
    summary.eye = data;
    if (readDelay === null) {
      await probe.setAdcDelay(original);
      const reasons = [...new Set(verdicts.map((v) => v.reason.replace(/[:\d].*$/, '')))].join(', ');
      lines.push(`no setting passed (${reasons}); READ_DELAY left at ${original}`);
      return fail('scan', lines, `No capture point reads the inputs right. Check that the inputs are ${
        o.inputs.kind === 'shorted' ? 'shorted at the wing\'s terminals' : 'at the DC you gave'}, that the wing is seated, ` +
        `the ADC's supplies (VDD 2.5 V from its LDO, VDRIVE 3V3), the wiring: ${PINS}, and the 33 Ω series resistors; ` +
        'then look at SCLK and SDATA with a scope.', data);
    }
    await probe.setAdcDelay(readDelay);
    lines.push(`eye: ${width} settings (${((width * o.scan.step * 1000) / 72 / 64).toFixed(2)} ns), READ_DELAY set to ${readDelay}` +
      `${readDelay === original ? '' : ` (was ${original})`}`);
    return { step: 'scan', status: 'PASS', lines, data };
  }, 'The device stopped answering during the scan: check the link and run again.');
}

/** 4-5. Codes against what the inputs must give, and the noise on them. */
async function codeSteps(probe: Probe, o: Opts, expect: [number, number], steps: StepResult[], guard: Guard): Promise<void> {
  let stats: { mean: number; rms: number }[] = [];
  await guard('codes', async () => {
    const { codes } = await probe.rawCodes(o.codePairs);
    stats = [0, 1].map((ch) => meanAndRms(codes.map((c) => c[ch]!)));
    const lines = stats.map((s, ch) => `${ch ? 'current' : 'voltage'}: mean code ${s.mean.toFixed(1)}, expected ${expect[ch]} ` +
      `(${(s.mean - expect[ch]!).toFixed(1)} LSB)`);
    const data = { v: stats[0]!.mean, i: stats[1]!.mean, expect };
    if (stats.some((s, ch) => Math.abs(s.mean - expect[ch]!) > OFFSET_TOLERANCE_LSB)) {
      return fail('codes', lines, `Codes are off by more than ${OFFSET_TOLERANCE_LSB} LSB: check the inputs (${
        o.inputs.kind === 'shorted' ? 'shorted at the wing\'s terminals' : 'the DC source, its value and polarity'}), ` +
        'the ADC\'s REF decoupling, and that SDATA_A is the voltage and SDATA_B the current channel.', data);
    }
    return { step: 'codes', status: 'PASS', lines, data };
  }, 'No capture came back: check the link and run again.');
  if (stats.length === 0) {
    steps.push(fail('noise', ['not measured: the codes step read nothing'], 'Fix the codes step first.'));
    return;
  }
  await guard('noise', async () => {
    const lines = [`voltage ${stats[0]!.rms.toFixed(2)} LSB rms, current ${stats[1]!.rms.toFixed(2)} LSB rms (limit ${NOISE_LIMIT_LSB_RMS})`];
    const data = { v_lsb_rms: stats[0]!.rms, i_lsb_rms: stats[1]!.rms };
    if (stats.some((s) => s.rms > NOISE_LIMIT_LSB_RMS)) {
      return fail('noise', lines, 'Too much noise: check the ground between wing and board, the analog inputs routed away ' +
        'from SCLK, the REF pins\' decoupling, and the USB supply (try another port or a powered hub).', data);
    }
    return { step: 'noise', status: 'PASS', lines, data };
  }, 'No capture came back: check the link and run again.');
}
