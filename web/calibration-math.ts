// The calibration procedure's arithmetic (no DOM): from the instrument's own windows over a measuring interval and
// a reference meter's V, I and P read over the same interval, the registers of docs/dsp.md that make the
// instrument read what the reference reads, each with its uncertainty, and the readings a window would give with
// them (the preview).
//
// Method. The windows were measured with the calibration in force (`cal`), so each register is corrected from it:
// - offsets (optional zero-load step: no current, voltage applied): the channel's mean over those windows (v_dc,
//   i_dc) is the DC the front end adds; the offset register is subtracted before the gain, in q of the aligned
//   sample, so it grows by 4·dc / (k·g) (k = kv or ki, g = gain / 16384);
// - gains: the load windows' mean RMS with that DC taken out (√(rms² − 2·o·dc + o²)) against the reference RMS;
//   the gain register is scaled by reference / measured. The load must be steady (the windows' RMS within
//   STEADY_MAX of their mean): a reading taken from a changing load compares two different things;
// - phase (only with a reactive load, reference PF ≤ PHASE_PF_MAX: near PF 1 the active power hardly depends on
//   the phase): each window's angle acos(P / S) after the offsets against the reference's acos(P / (V·I)), signed
//   by the load (lagging: current after voltage); the difference in samples at the window's frequency moves the
//   phase register (1/65536 sample; positive delays the current).
// Uncertainty: one standard error of the mean (sample standard deviation / √n) over the n windows, of the
// measured RMS (propagated to the gain factor relatively), of the DC means and of the per-window phase shifts. It is the instrument's repeatability over the
// interval; the reference meter's own accuracy and the registers' rounding (gain step 61 ppm) come on top.

import type { CalibrationBodyJson } from './api.ts';

/** The registers and scale as the calibration API carries them (server/api/schemas.ts CalibrationSchema). */
export type CalRegisters = CalibrationBodyJson;

/** What a window of the live stream gives the procedure. */
export interface CalWindow {
  vrms: number;
  irms: number;
  p: number;
  v_dc: number | null;
  i_dc: number | null;
  freq_hz: number | null;
}

export interface Reference {
  /** RMS volts, RMS amperes and active watts the reference meter read. */
  v: number;
  i: number;
  p: number;
  /** The load's current lags the voltage (inductive: motors, fans); false: leads it (capacitive). */
  lagging: boolean;
}

/** A mean over windows with one standard error of the mean. */
export interface Estimate {
  mean: number;
  u: number;
  n: number;
}

export interface CalibrationResult {
  registers: CalRegisters;
  /** One standard error of each register's new value, in register units. */
  u: { v_offset: number; i_offset: number; v_gain: number; i_gain: number; phase: number };
  /** DC taken out (V, A), from the zero-load step; null without one. */
  offsets: { v: Estimate; i: Estimate } | null;
  /** Factors the gains are multiplied by. */
  gains: { v: Estimate; i: Estimate };
  /** Phase shift in samples (positive: the current is delayed more), null when the phase is kept. */
  phaseShift: Estimate | null;
  notes: string[];
}

export class CalibrationError extends Error {
  override readonly name = 'CalibrationError';
}

/** Fewest windows a step needs for a spread to mean something. */
export const MIN_WINDOWS = 5;
/** Above this reference PF the phase is kept (cos is flat near 0°: P says almost nothing about the angle). */
export const PHASE_PF_MAX = 0.95;
/** Largest relative spread (standard deviation / mean) of the load windows' V and I for a steady load. */
export const STEADY_MAX = 0.02;
/** A gain moving more than this is reported (likely a wrong reading or wiring, not a tolerance). */
const LARGE_GAIN_CHANGE = 0.1;
const PHASE_MAX = 1023 * 65536 - 1;

export function estimate(xs: readonly number[]): Estimate {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1) : NaN;
  return { mean, u: Math.sqrt(variance / n), n };
}

/** RMS with a DC of `o` taken out of a signal whose RMS is `rms` and mean `dc`. */
function withoutDc(rms: number, dc: number, o: number): number {
  return Math.sqrt(Math.max(0, rms * rms - 2 * o * dc + o * o));
}

function checkRegister(name: string, value: number, min: number, max: number, hint: string): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new CalibrationError(`the correction needs ${name} = ${Number.isFinite(value) ? Math.round(value) : value}, outside the register's ${min} … ${max}: ${hint}`);
  }
  return value;
}

/** The lag of the current behind the voltage, rad, from cos φ and the load's kind. */
function angle(cos: number, lagging: boolean): number {
  return (lagging ? 1 : -1) * Math.acos(Math.min(1, Math.max(-1, cos)));
}

export function computeCalibration(
  cal: CalRegisters, load: readonly CalWindow[], zero: readonly CalWindow[] | null, ref: Reference, sampleRateHz: number,
): CalibrationResult {
  if (!(ref.v > 0) || !(ref.i > 0)) throw new CalibrationError('enter the reference meter\'s V and I (both above 0) with the load on');
  if (!Number.isFinite(ref.p) || Math.abs(ref.p) > ref.v * ref.i * 1.0001) {
    throw new CalibrationError(`the reference P (${ref.p} W) cannot exceed V·I (${+(ref.v * ref.i).toPrecision(6)} VA): check the readings`);
  }
  if (load.length < MIN_WINDOWS) throw new CalibrationError(`only ${load.length} windows with the load measured with the current calibration: measure for longer (at least ${MIN_WINDOWS})`);
  if (zero && zero.length < MIN_WINDOWS) throw new CalibrationError(`only ${zero.length} windows in the zero-load step: measure it for longer, or skip it`);
  const notes: string[] = [];
  const gv = cal.v_gain / 16384;
  const gi = cal.i_gain / 16384;

  let offsets: CalibrationResult['offsets'] = null;
  let vOffset = cal.v_offset;
  let iOffset = cal.i_offset;
  let uvOffset = 0;
  let uiOffset = 0;
  if (zero) {
    if (zero.some((w) => w.v_dc === null || w.i_dc === null)) throw new CalibrationError('the zero-load windows carry no DC means: this server is too old for the offset step; skip it');
    offsets = { v: estimate(zero.map((w) => w.v_dc!)), i: estimate(zero.map((w) => w.i_dc!)) };
    const zeroIrms = estimate(zero.map((w) => w.irms)).mean;
    if (zeroIrms > 0.05 * ref.i) notes.push(`the zero-load step still drew ${+zeroIrms.toPrecision(3)} A: was the load off?`);
    vOffset = checkRegister('v_offset', Math.round(cal.v_offset + (4 * offsets.v.mean) / (cal.kv * gv)), -32768, 32767, 'the voltage channel\'s DC is beyond what the register corrects; check the front end');
    iOffset = checkRegister('i_offset', Math.round(cal.i_offset + (4 * offsets.i.mean) / (cal.ki * gi)), -32768, 32767, 'the current channel\'s DC is beyond what the register corrects; check the front end');
    uvOffset = (4 * offsets.v.u) / (cal.kv * gv);
    uiOffset = (4 * offsets.i.u) / (cal.ki * gi);
  }
  const ov = offsets?.v.mean ?? 0;
  const oi = offsets?.i.mean ?? 0;
  const dc = (x: number | null) => x ?? 0;
  const vrms = load.map((w) => withoutDc(w.vrms, dc(w.v_dc), ov));
  const irms = load.map((w) => withoutDc(w.irms, dc(w.i_dc), oi));
  if (vrms.some((x) => !(x > 0)) || irms.some((x) => !(x > 0))) throw new CalibrationError('a window with the load read no voltage or no current: is the load on and the device measuring?');
  const measured = { v: estimate(vrms), i: estimate(irms) };
  for (const [ch, m] of [['voltage', measured.v], ['current', measured.i]] as const) {
    const spread = (m.u * Math.sqrt(m.n)) / m.mean;
    if (spread > STEADY_MAX) {
      throw new CalibrationError(`the ${ch} varied by ${(spread * 100).toFixed(1)} % over the measurement (standard deviation / mean of the windows, at most ${STEADY_MAX * 100} %): hold one steady load for the instrument and the reference meter, and measure again`);
    }
  }
  const factor = (refValue: number, m: Estimate): Estimate => ({ mean: refValue / m.mean, u: (refValue / m.mean) * (m.u / m.mean), n: m.n });
  const gains = { v: factor(ref.v, measured.v), i: factor(ref.i, measured.i) };
  for (const [ch, g] of [['voltage', gains.v], ['current', gains.i]] as const) {
    if (Math.abs(g.mean - 1) > LARGE_GAIN_CHANGE) notes.push(`the ${ch} gain changes by ${((g.mean - 1) * 100).toFixed(1)} %: check the reference reading and the wiring before applying`);
  }
  const vGain = checkRegister('v_gain', Math.round(cal.v_gain * gains.v.mean), 1, 65535, 'the voltage reads far from the reference; check kv and the wiring');
  const iGain = checkRegister('i_gain', Math.round(cal.i_gain * gains.i.mean), 1, 65535, 'the current reads far from the reference; check ki, the CT and the wiring');

  let phase = cal.phase;
  let phaseShift: Estimate | null = null;
  const pfRef = ref.p / (ref.v * ref.i);
  if (Math.abs(pfRef) > PHASE_PF_MAX) {
    notes.push(`phase kept: at a reference PF of ${pfRef.toFixed(3)} the active power hardly depends on the phase; repeat with an inductive load (PF ≈ 0.5) to correct it`);
  } else {
    if (load.some((w) => w.freq_hz === null || !(w.freq_hz > 0))) throw new CalibrationError('a window with the load has no mains frequency: the phase needs an AC supply');
    const target = angle(pfRef, ref.lagging);
    const shifts = load.map((w, k) => {
      const p = w.p - ov * dc(w.i_dc) - oi * dc(w.v_dc) + ov * oi;
      const lag = angle(p / (vrms[k]! * irms[k]!), ref.lagging);
      return ((target - lag) * sampleRateHz) / (2 * Math.PI * w.freq_hz!);
    });
    phaseShift = estimate(shifts);
    phase = checkRegister('phase', Math.round(cal.phase + phaseShift.mean * 65536), -PHASE_MAX, PHASE_MAX, 'the angle is beyond the 1023-sample delay line; check the load kind (lagging/leading) and the CT orientation');
  }
  return {
    registers: { v_offset: vOffset, i_offset: iOffset, v_gain: vGain, i_gain: iGain, phase, kv: cal.kv, ki: cal.ki },
    u: {
      v_offset: uvOffset, i_offset: uiOffset, v_gain: cal.v_gain * gains.v.u, i_gain: cal.i_gain * gains.i.u,
      phase: phaseShift ? phaseShift.u * 65536 : 0,
    },
    offsets, gains, phaseShift, notes,
  };
}

/**
 * What a window measured with `from` would read with `to` (the preview): the offsets' DC taken out, the RMS scaled
 * by the gains' ratio, the power's angle moved by the phase change at the window's frequency.
 */
export function correctWindow(w: CalWindow, from: CalRegisters, to: CalRegisters, lagging: boolean, sampleRateHz: number): { vrms: number; irms: number; p: number } {
  const ov = ((to.v_offset - from.v_offset) * from.kv * (from.v_gain / 16384)) / 4;
  const oi = ((to.i_offset - from.i_offset) * from.ki * (from.i_gain / 16384)) / 4;
  const v = withoutDc(w.vrms, w.v_dc ?? 0, ov);
  const i = withoutDc(w.irms, w.i_dc ?? 0, oi);
  const p = w.p - ov * (w.i_dc ?? 0) - oi * (w.v_dc ?? 0) + ov * oi;
  const rv = to.v_gain / from.v_gain;
  const ri = to.i_gain / from.i_gain;
  const s = v * i;
  const shiftRad = w.freq_hz ? (((to.phase - from.phase) / 65536) * 2 * Math.PI * w.freq_hz) / sampleRateHz : 0;
  const pNew = s > 0 ? s * Math.cos(angle(p / s, lagging) + shiftRad) : p;
  return { vrms: v * rv, irms: i * ri, p: pNew * rv * ri };
}
