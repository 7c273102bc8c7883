import { describe, expect, it } from 'vitest';
import { DEFAULT_THRESHOLDS } from '../../server/pq/iec61000-4-30.ts';
import { PqStream, type WaveformFrame } from '../../server/pq/stream.ts';
import { sampleTones } from '../../server/pq/synth.ts';

const R = 4_000_000;
const D = 512;
const KV = 0.05; // volts per ADC LSB: q = 4·V/KV
const KI = 0.002;
const FRAME = 64;
const WINDOW = (10 * R) / 50;

/** `seconds` of 50 Hz mains as waveform frames of 64 samples (q), and the DSP's 10-cycle windows. */
function stream(seconds: number): { frames: WaveformFrame[]; windows: { end_index: bigint; samples: number; flags: number }[] } {
  const n = Math.ceil((seconds * R) / D / FRAME) * FRAME;
  const v = sampleTones([{ hz: 50, rms: 230, phase: -Math.PI / 2 }, { hz: 250, rms: 11.5, phase: 0 }], n, 0, D, R);
  const i = sampleTones([{ hz: 50, rms: 4, phase: -Math.PI / 2 }], n, 0, D, R);
  const frames: WaveformFrame[] = [];
  for (let k = 0; k < n; k += FRAME) {
    frames.push({
      seq: k / FRAME,
      firstIndex: BigInt(k * D),
      v: Int32Array.from(v.subarray(k, k + FRAME), (x) => Math.round((4 * x) / KV)),
      i: Int32Array.from(i.subarray(k, k + FRAME), (x) => Math.round((4 * x) / KI)),
    });
  }
  const windows = [];
  for (let e = WINDOW; e <= n * D; e += WINDOW) windows.push({ end_index: BigInt(e), samples: WINDOW, flags: 0 });
  return { frames, windows };
}

function makeStream(): PqStream {
  return new PqStream({ deviceRateHz: R, decimation: D, kv: KV, ki: KI, cycles: 10, thresholds: { declaredV: 230, nominalHz: 50, ...DEFAULT_THRESHOLDS } });
}

/** Interleaves frames and windows as the device sends them (a window after the frame that reaches its end). */
function feed(s: PqStream, frames: WaveformFrame[], windows: { end_index: bigint; samples: number; flags: number }[]): void {
  let w = 0;
  for (const f of frames) {
    s.pushWaveform(f);
    const reached = f.firstIndex + BigInt(f.v.length * D);
    while (w < windows.length && windows[w]!.end_index <= reached) s.pushWindow(windows[w++]!);
  }
}

describe('PqStream', () => {
  it('analyses every whole-cycle window the stream covers, in q scaled by kv and ki', () => {
    const { frames, windows } = stream(2);
    const s = makeStream();
    feed(s, frames, windows);
    const out = s.drain(true);
    // The first window lacks resampling margin before it; the stream runs 55 samples past the last one.
    expect(out.windows.map((w) => w.gap)).toEqual([true, ...Array(9).fill(false)]);
    for (const w of out.windows.filter((x) => !x.gap)) {
      expect(w.analysis!.h_v[0]).toBeCloseTo(230, 1);
      expect(w.analysis!.h_v[4]).toBeCloseTo(11.5, 1);
      expect(w.analysis!.h_i[0]).toBeCloseTo(4, 2);
      expect(w.analysis!.thd_v).toBeCloseTo(0.05, 3);
    }
    expect(s.droppedFrames).toBe(0);
    expect(s.gaps).toBe(0);
    expect(out.events).toEqual([]);
  });

  it('invalidates the windows a lost frame touches, counts it, and never interpolates across it', () => {
    const { frames, windows } = stream(2);
    const lost = 130; // stream samples 8320 … 8383, inside the 6th window (7812.5 … 9375)
    const s = makeStream();
    feed(s, frames.filter((_, k) => k !== lost), windows);
    const out = s.drain(true);
    expect(s.droppedFrames).toBe(1);
    expect(s.gaps).toBe(1);
    const lostStart = lost * FRAME * D;
    const lostEnd = lostStart + FRAME * D;
    const touched = out.windows.filter((w) => w.start - 49 * D < lostEnd && w.end + 49 * D > lostStart);
    expect(touched.length).toBeGreaterThan(0);
    for (const w of touched) expect(w).toMatchObject({ gap: true, analysis: null });
    expect(out.windows.filter((w) => !w.gap).length).toBe(out.windows.length - touched.length - 1);
  });

  it('skips windows that are not whole cycles and refuses a frame with unequal channels', () => {
    const s = makeStream();
    s.pushWindow({ end_index: 800_000n, samples: 800_000, flags: 1 << 4 });
    expect(s.drain().windows).toEqual([]);
    expect(() => s.pushWaveform({ seq: 0, firstIndex: 0n, v: new Int32Array(3), i: new Int32Array(2) })).toThrow(/unequal|3 voltage/);
  });

  it('flags the 10-minute interval by an event drained before the interval was (the live analysis drains often)', () => {
    const { frames, windows } = stream(2);
    // An interruption of 6 frames (≈ 49 ms) a second in.
    for (const f of frames.slice(120, 126)) f.v.fill(0);
    const s = makeStream();
    let w = 0;
    const events = [];
    for (const f of frames) {
      s.pushWaveform(f);
      const reached = f.firstIndex + BigInt(f.v.length * D);
      while (w < windows.length && windows[w]!.end_index <= reached) s.pushWindow(windows[w++]!);
      events.push(...s.drain().events);
    }
    const out = s.drain(true);
    expect(events.map((e) => e.kind)).toContain('interruption');
    const interval = out.aggregates.find((a) => a.kind === '10min')!;
    expect(interval.windows).toBeGreaterThan(5);
    expect(interval.flagged).toBe(true);
  });
});
