// What the waveform view asks for and how it reads the answer. A capture holds CAPTURE_PAIRS pairs;
// the server turns a span into the decimation D (one pair every D samples), so "a few mains cycles"
// is a request for a duration: cycles / frequency, at the frequency the dashboard last measured, or
// FALLBACK_CYCLE_MS a cycle (50 Hz) before any was measured. docs/protocol.md "Captures".

import type { CaptureBodyJson, CaptureJson } from './api.ts';

export const CAPTURE_PAIRS = 4096;
export const DEFAULT_CYCLES = 4;
/** A cycle's length before a frequency is known: 50 Hz, so the default asks for 80 ms. */
export const FALLBACK_CYCLE_MS = 20;
/**
 * Trigger hysteresis in ADC LSB: the voltage must dip this far below 0 before a rising zero
 * crossing counts, so ADC noise at the crossing cannot fire the trigger on the falling slope. The
 * DSP's zero-crossing detector uses the same 64 LSB by default (docs/dsp.md, zc_hysteresis).
 */
export const TRIGGER_HYSTERESIS_LSB = 64;
/** The trigger sits an eighth into the view, so the crossing shows with what led up to it. */
export const PRETRIGGER_FRACTION = 1 / 8;

/** The span menu's choices: `cycles:N`, `ms:N` or `full` (every sample: D = 1). */
export type CaptureSpan = { kind: 'cycles'; cycles: number } | { kind: 'ms'; ms: number } | { kind: 'full' };

export function parseSpan(value: string): CaptureSpan {
  if (value === 'full') return { kind: 'full' };
  const m = /^(cycles|ms):(\d+(?:\.\d+)?)$/.exec(value);
  const n = m ? Number(m[2]) : NaN;
  if (!m || !(n > 0)) throw new Error(`capture span '${value}': expected cycles:N, ms:N or full`);
  return m[1] === 'cycles' ? { kind: 'cycles', cycles: n } : { kind: 'ms', ms: n };
}

export interface CapturePlan {
  /** The POST body: a rising voltage trigger, the span as decimation or duration_ms. */
  body: CaptureBodyJson & { trigger: 'v_rising' };
  /** What the user asked for, in words. */
  label: string;
  /** How long the samples may take on the device (the span, and twice it with a slow trigger). */
  spanMs: number;
}

/** The request for a span; `freqHz` is the last measured mains frequency (null: none yet). */
export function planCapture(span: CaptureSpan, freqHz: number | null, sampleRateHz: number): CapturePlan {
  const base = {
    pairs: CAPTURE_PAIRS,
    trigger: 'v_rising' as const,
    level: 0,
    pretrigger: Math.round(CAPTURE_PAIRS * PRETRIGGER_FRACTION),
    hysteresis: TRIGGER_HYSTERESIS_LSB,
  };
  if (span.kind === 'full') {
    return { body: { ...base, decimation: 1 }, label: 'full rate', spanMs: sampleRateHz > 0 ? (CAPTURE_PAIRS / sampleRateHz) * 1000 : 0 };
  }
  if (span.kind === 'ms') return { body: { ...base, duration_ms: span.ms }, label: `${span.ms} ms`, spanMs: span.ms };
  const known = freqHz !== null && freqHz > 0;
  const ms = span.cycles * (known ? 1000 / freqHz : FALLBACK_CYCLE_MS);
  const label = known ? `${span.cycles} cycles at ${freqHz.toFixed(2)} Hz` : `${span.cycles} cycles (no frequency yet: ${ms} ms)`;
  return { body: { ...base, duration_ms: ms }, label, spanMs: ms };
}

/** Time of each pair in ms from the trigger: pair k is sample first_index + k·D. */
export function captureTimesMs(c: Pick<CaptureJson, 'v' | 'decimation' | 'sample_rate_hz' | 'trigger_offset'>): number[] {
  const dtMs = (c.decimation / c.sample_rate_hz) * 1000;
  return c.v.map((_, k) => (k - c.trigger_offset) * dtMs);
}

/** One line for the status next to the button. */
export function describeCapture(c: Pick<CaptureJson, 'id' | 'v' | 'decimation' | 'sample_rate_hz'>, label: string): string {
  const ms = ((c.v.length * c.decimation) / c.sample_rate_hz) * 1000;
  const rate = c.sample_rate_hz / c.decimation;
  const every = c.decimation === 1 ? 'every sample' : `1 sample in ${c.decimation}`;
  return `capture ${c.id}: ${c.v.length} pairs over ${ms.toFixed(ms < 10 ? 2 : 1)} ms (${label}; ${every}, ${formatRate(rate)})`;
}

export function formatRate(perS: number): string {
  if (perS >= 1e6) return `${+(perS / 1e6).toFixed(3)} MS/s`;
  if (perS >= 1e3) return `${+(perS / 1e3).toFixed(2)} kS/s`;
  return `${+perS.toFixed(1)} S/s`;
}
