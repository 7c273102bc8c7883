// The settings of a power-quality analysis (declared voltage, nominal frequency) and the PqStream
// configuration they give for a device's decimated stream: one place for `replay --pq` and `serve`.

import { DECIMATED_BITS, DECIMATION, decimatorResponse, FS_INPUT_HZ } from '../dsp/decimator.ts';
import { MAX_ORDER } from './iec61000-4-7.ts';
import { DEFAULT_THRESHOLDS, ThresholdError, validateThresholds } from './iec61000-4-30.ts';
import type { PqStreamConfig } from './stream.ts';

export interface PqSettings {
  /** declared supply voltage, V */
  declaredV: number;
  /** nominal frequency, Hz */
  nominalHz: number;
}

export const DEFAULT_PQ_SETTINGS: PqSettings = Object.freeze({ declaredV: 230, nominalHz: 50 });

/** The nominal frequencies the analysis supports (the IEC 61000-4-7 window is 10 or 12 cycles of them). */
export const NOMINAL_HZ: readonly number[] = Object.freeze([50, 60]);

/** The decimator's passband edge as a fraction of the stream rate (3 kHz of 7812.5 Hz, docs/dsp.md). */
const PASSBAND_OF_STREAM = 0.4;

/** Terms the analysis' largest sums of squares may hold (a 10-minute aggregate of 3600 windows of 2048 points, with room). */
const SUM_TERMS = 2 ** 24;

/** The cycles of an IEC 61000-4-7 window at a nominal frequency: 200 ms, 10 at 50 Hz, 12 at 60 Hz. */
export function iecCycles(nominalHz: number): number {
  return Math.round(nominalHz / 5);
}

/**
 * The PqStream configuration for a stream decimated by DECIMATION from `rateHz` samples/s. Throws a
 * ThresholdError for settings the analysis cannot use (a voltage ≤ 0, a frequency whose 50th harmonic is
 * outside the stream's band at this rate).
 */
export function pqStreamConfig(settings: PqSettings, rateHz: number, kv: number, ki: number, cycles: number): PqStreamConfig {
  const thresholds = { ...DEFAULT_THRESHOLDS, declaredV: settings.declaredV, nominalHz: settings.nominalHz };
  validateThresholds(thresholds);
  // The decimator is designed for the device's 4 Msps: at a lower rate its band shrinks with it.
  const bandHz = (PASSBAND_OF_STREAM * rateHz) / DECIMATION;
  if (MAX_ORDER * settings.nominalHz > bandHz) {
    throw new ThresholdError(
      `the power-quality analysis needs order ${MAX_ORDER} of ${settings.nominalHz} Hz within the decimated stream's band ` +
        `(${bandHz.toFixed(0)} Hz at ${rateHz} samples/s): record at ≥ ${Math.ceil((MAX_ORDER * settings.nominalHz * DECIMATION) / PASSBAND_OF_STREAM)} samples/s`,
    );
  }
  // The analysis squares and sums the stream in float64: a scale that makes those sums overflow (the
  // calibration route accepts kv, ki up to 2^951 for the exact energy path) would give Infinity and NaN.
  const peak = (2 ** (DECIMATED_BITS - 1) / 4) * Math.max(kv, ki);
  if (!Number.isFinite(peak * peak * SUM_TERMS)) {
    throw new ThresholdError(
      `the power-quality analysis cannot use kv = ${kv}, ki = ${ki}: its float64 sums of squares would overflow ` +
        `(a full-scale sample is ${peak.toPrecision(3)} V or A); calibrate the device with a physical scale`,
    );
  }
  return {
    deviceRateHz: rateHz,
    decimation: DECIMATION,
    kv,
    ki,
    cycles,
    thresholds,
    response: (fHz) => decimatorResponse((fHz * FS_INPUT_HZ) / rateHz),
  };
}
