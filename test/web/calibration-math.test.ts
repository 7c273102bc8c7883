// The calibration procedure's arithmetic (web/calibration-math.ts) on windows synthesised from a known instrument
// error: gains, DC offsets and a phase error must come back as the registers that cancel them, with the spread of
// the windows as their uncertainty, and the preview of a window must then read what the reference reads.

import { describe, expect, it } from 'vitest';
import {
  CalibrationError, MIN_WINDOWS, computeCalibration, correctWindow, estimate, type CalRegisters, type CalWindow,
} from '../../web/calibration-math.ts';

const FS = 4e6;
const F = 50;
const IDENTITY: CalRegisters = { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0, kv: 0.05, ki: 0.004 };

/** The truth: 230 V, 5 A at 60° lagging (PF 0.5). */
const TRUE = { v: 230, i: 5, phiRad: Math.PI / 3 };
/** The instrument before calibration: reads V 2 % low, I 3 % high, adds 0.2 V and 10 mA of DC, 0.5° more lag. */
const ERR = { gv: 0.98, gi: 1.03, ov: 0.2, oi: 0.01, extraLagRad: (0.5 * Math.PI) / 180 };

/** A window as that instrument measures it, with a small deterministic wobble `e` (relative) on V and I. */
function loadWindow(e: number, truth = TRUE, err = ERR): CalWindow {
  const vac = truth.v * err.gv * (1 + e);
  const iac = truth.i * err.gi * (1 - e);
  return {
    vrms: Math.hypot(vac, err.ov),
    irms: Math.hypot(iac, err.oi),
    p: vac * iac * Math.cos(truth.phiRad + err.extraLagRad) + err.ov * err.oi,
    v_dc: err.ov,
    i_dc: err.oi,
    freq_hz: F,
  };
}
const zeroWindow = (e: number): CalWindow => ({
  vrms: Math.hypot(TRUE.v * ERR.gv, ERR.ov), irms: ERR.oi, p: ERR.ov * ERR.oi, v_dc: ERR.ov * (1 + e), i_dc: ERR.oi * (1 + e), freq_hz: F,
});
const WOBBLE = [-2e-4, 1e-4, 0, 2e-4, -1e-4, 3e-4, -3e-4, 0];
const ref = { v: TRUE.v, i: TRUE.i, p: TRUE.v * TRUE.i * Math.cos(TRUE.phiRad), lagging: true };

describe('calibration arithmetic', () => {
  it('finds the gains, offsets and phase that cancel a known error', () => {
    const r = computeCalibration(IDENTITY, WOBBLE.map((e) => loadWindow(e)), WOBBLE.map((e) => zeroWindow(e)), ref, FS);
    expect(r.registers.v_gain).toBe(Math.round(16384 / ERR.gv));
    expect(r.registers.i_gain).toBe(Math.round(16384 / ERR.gi));
    // Offsets in q of the aligned sample: 4·dc / k at unit gain.
    expect(r.registers.v_offset).toBe(Math.round((4 * ERR.ov) / IDENTITY.kv));
    expect(r.registers.i_offset).toBe(Math.round((4 * ERR.oi) / IDENTITY.ki));
    // 0.5° at 50 Hz is 27.8 µs: 111.1 samples at 4 MS/s, taken off the current's delay.
    const shiftSamples = -(ERR.extraLagRad / (2 * Math.PI * F)) * FS;
    expect(r.phaseShift!.mean).toBeCloseTo(shiftSamples, 3);
    expect(r.registers.phase).toBe(Math.round(shiftSamples * 65536));
    expect(r.registers).toMatchObject({ kv: IDENTITY.kv, ki: IDENTITY.ki });
    expect(r.notes).toEqual([]);
  });

  it('gives each register the standard error of the mean of its per-window estimates', () => {
    const load = WOBBLE.map((e) => loadWindow(e));
    const r = computeCalibration(IDENTITY, load, WOBBLE.map((e) => zeroWindow(e)), ref, FS);
    // The voltage the windows read with the DC taken out, its mean and standard error; the factor's relative
    // uncertainty is the mean's.
    const vac = load.map((w) => Math.sqrt(w.vrms ** 2 - ERR.ov ** 2));
    const n = vac.length;
    const mean = vac.reduce((a, b) => a + b) / n;
    const sd = Math.sqrt(vac.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
    expect(r.gains.v.n).toBe(n);
    expect(r.gains.v.mean).toBeCloseTo(TRUE.v / mean, 12);
    expect(r.gains.v.u).toBeCloseTo((TRUE.v / mean) * (sd / Math.sqrt(n) / mean), 12);
    expect(r.u.v_gain).toBeCloseTo(16384 * r.gains.v.u, 9);
    expect(r.u.v_offset).toBeCloseTo((4 * estimate(WOBBLE.map((e) => ERR.ov * (1 + e))).u) / IDENTITY.kv, 9);
    expect(r.u.phase).toBeGreaterThanOrEqual(0);
    // No wobble: no spread.
    const still = computeCalibration(IDENTITY, new Array(6).fill(0).map(() => loadWindow(0)), null, ref, FS);
    expect(still.u.v_gain).toBe(0);
  });

  it('previews a window with the new registers as the reference reads it', () => {
    const r = computeCalibration(IDENTITY, WOBBLE.map((e) => loadWindow(e)), WOBBLE.map((e) => zeroWindow(e)), ref, FS);
    const c = correctWindow(loadWindow(0), IDENTITY, r.registers, true, FS);
    // To the registers' rounding: gain steps of 61 ppm, offset steps of a q, phase of 1/65536 sample.
    expect(c.vrms / ref.v - 1).toBeLessThan(1e-4);
    expect(Math.abs(c.irms / ref.i - 1)).toBeLessThan(1e-4);
    expect(Math.abs(c.p / ref.p - 1)).toBeLessThan(1e-4);
    // The same registers again change nothing.
    expect(correctWindow(loadWindow(0), IDENTITY, IDENTITY, true, FS)).toEqual({
      vrms: loadWindow(0).vrms, irms: loadWindow(0).irms, p: expect.closeTo(loadWindow(0).p, 9),
    });
  });

  it('corrects from a calibration already in force, and for a leading load', () => {
    const cal = { ...IDENTITY, v_gain: 16500, i_gain: 16000, v_offset: 10, i_offset: -5, phase: 1000 * 65536 };
    const leading = { ...TRUE, phiRad: -Math.PI / 3 };
    const load = WOBBLE.map((e) => loadWindow(e, leading));
    const r = computeCalibration(cal, load, null, { ...ref, lagging: false }, FS);
    expect(r.registers.v_gain).toBe(Math.round(16500 / ERR.gv));
    expect(r.registers.v_offset).toBe(10);
    expect(r.offsets).toBeNull();
    // Measured: −60° + 0.5° (less lead); the current must be delayed less… i.e. the shift is negative here too.
    expect(r.phaseShift!.mean).toBeLessThan(0);
    const c = correctWindow(loadWindow(0, leading), cal, r.registers, false, FS);
    expect(Math.abs(c.p / ref.p - 1)).toBeLessThan(2e-3); // the 0.2 V / 10 mA DC stays in: no zero-load step
  });

  it('keeps the phase with a resistive load, and says why', () => {
    const resistive = { ...TRUE, phiRad: 0 };
    const r = computeCalibration(IDENTITY, WOBBLE.map((e) => loadWindow(e, resistive)), null, { v: 230, i: 5, p: 1150, lagging: true }, FS);
    expect(r.registers.phase).toBe(0);
    expect(r.phaseShift).toBeNull();
    expect(r.notes.join()).toMatch(/phase kept: at a reference PF of 1.000 .*inductive load/);
  });

  it('refuses what it cannot compute, saying what to do', () => {
    const load = WOBBLE.map((e) => loadWindow(e));
    const cases: [() => unknown, RegExp][] = [
      [() => computeCalibration(IDENTITY, load.slice(0, MIN_WINDOWS - 1), null, ref, FS), /only 4 windows .*measure for longer/],
      [() => computeCalibration(IDENTITY, load, null, { ...ref, v: 0 }, FS), /enter the reference meter's V and I/],
      [() => computeCalibration(IDENTITY, load, null, { ...ref, p: 2000 }, FS), /cannot exceed V·I/],
      [() => computeCalibration(IDENTITY, load, null, { ...ref, v: 230 * 5 }, FS), /v_gain = \d+, outside the register's 1 … 65535/],
      [() => computeCalibration(IDENTITY, load.map((w) => ({ ...w, freq_hz: null })), null, ref, FS), /no mains frequency/],
      [() => computeCalibration(IDENTITY, load.map((w) => ({ ...w, irms: 0 })), null, ref, FS), /no voltage or no current/],
      // A kettle switching on half way: the current doubles.
      [() => computeCalibration(IDENTITY, load.map((w, k) => ({ ...w, irms: w.irms * (k < 4 ? 1 : 2) })), null, ref, FS), /the current varied by 3\d\.\d % .*hold one steady load/],
    ];
    for (const [run, message] of cases) {
      expect(run).toThrow(CalibrationError);
      expect(run).toThrow(message);
    }
  });

  it('notes a large gain change and a zero-load step that still drew current', () => {
    const r = computeCalibration(IDENTITY, WOBBLE.map((e) => loadWindow(e)), WOBBLE.map((e) => ({ ...zeroWindow(e), irms: 1 })), { ...ref, v: 280, p: (ref.p * 280) / 230 }, FS);
    expect(r.notes.join('\n')).toMatch(/voltage gain changes by 24\.\d %/);
    expect(r.notes.join('\n')).toMatch(/zero-load step still drew 1 A/);
  });
});
