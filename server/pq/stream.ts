// The ingest-side consumer of the decimated waveform: assembles `waveform` frames into a continuous
// stream, detects gaps (by seq and by firstIndex), and runs the IEC 61000-4-7 analysis on each whole-cycle
// DSP window once the stream covers it, the IEC 61000-4-30 voltage monitor on every sample, and the
// aggregation. A window the stream does not cover completely (a gap, or the stream started after it) is
// reported as invalid: nothing is interpolated across a gap.

import { WINDOW_FLAG } from '../protocol/definition.ts';
import { Aggregator, INTERVAL_S, type EventSource, type PqAggregate } from './aggregate.ts';
import { analyzeWindow, marginSamples, type FilterResponse, type HarmonicAnalysis } from './iec61000-4-7.ts';
import { VoltageMonitor, type FrequencyValue, type HalfCycleValue, type PqEvent, type VoltageThresholds } from './iec61000-4-30.ts';

/** A decoded `waveform` frame: samples in q (quarter LSB of the calibrated samples). */
export interface WaveformFrame {
  seq: number;
  firstIndex: bigint;
  v: Int32Array;
  i: Int32Array;
}

/** The fields of a `window` frame the analysis needs. */
export interface WindowRef {
  end_index: bigint;
  samples: number;
  flags: number;
}

export interface PqStreamConfig {
  /** device samples per second (4 000 000) */
  deviceRateHz: number;
  /** device samples per stream sample (512) */
  decimation: number;
  /** volts and amperes per ADC LSB (the stream is in quarter LSB) */
  kv: number;
  ki: number;
  /** cycles per DSP window (the device's `cycles` setting) */
  cycles: number;
  thresholds: VoltageThresholds;
  /** the decimator's response (decimatorResponse), to correct each bin */
  response?: FilterResponse;
}

export interface PqWindowResult {
  start: number;
  end: number;
  /** null when the stream does not cover the window (`gap`) */
  analysis: HarmonicAnalysis | null;
  gap: boolean;
}

export interface PqOutput {
  windows: PqWindowResult[];
  events: PqEvent[];
  aggregates: PqAggregate[];
  halfCycles: HalfCycleValue[];
  frequencies: FrequencyValue[];
}

/** Windows that do not span the configured whole cycles are not analysed (no synchronous grid). */
const NOT_WHOLE_CYCLES = WINDOW_FLAG.PARTIAL | WINDOW_FLAG.TIMEOUT | WINDOW_FLAG.CONFIG;
const SEQ_MODULUS = 2 ** 32;

export class PqStream {
  readonly monitor: VoltageMonitor;
  /** frames known lost (seq jumps) */
  droppedFrames = 0;
  /** discontinuities of the stream (a seq jump or a first_index that does not continue) */
  gaps = 0;
  private readonly aggregator: Aggregator;
  private readonly margin: number;
  private v = new Float64Array(1 << 14);
  private i = new Float64Array(1 << 14);
  private len = 0;
  /** device index of v[0]; segment covers [first, first + len·decimation) */
  private first = 0;
  private lastSeq: number | null = null;
  private pending: { start: number; end: number }[] = [];
  private out: PqWindowResult[] = [];
  /** events already drained, for the flags of the aggregates still waiting */
  private drained: PqEvent[] = [];

  constructor(private readonly cfg: PqStreamConfig) {
    this.monitor = new VoltageMonitor(cfg.thresholds, cfg.deviceRateHz, cfg.decimation);
    this.aggregator = new Aggregator(cfg.deviceRateHz);
    this.margin = marginSamples(cfg.decimation);
  }

  private get next(): number {
    return this.first + this.len * this.cfg.decimation;
  }

  pushWaveform(frame: WaveformFrame): void {
    if (frame.v.length !== frame.i.length) {
      throw new RangeError(`waveform frame ${frame.seq}: ${frame.v.length} voltage but ${frame.i.length} current samples`);
    }
    const firstIndex = Number(frame.firstIndex);
    const seqJump = this.lastSeq === null ? 0 : (frame.seq - this.lastSeq - 1 + SEQ_MODULUS) % SEQ_MODULUS;
    this.droppedFrames += seqJump;
    if (this.len > 0 && (seqJump !== 0 || firstIndex !== this.next)) {
      this.gaps++;
      this.endSegment();
    }
    this.lastSeq = frame.seq;
    if (this.len === 0) this.first = firstIndex;
    const kv = this.cfg.kv / 4;
    const ki = this.cfg.ki / 4;
    const scaled = new Float64Array(frame.v.length);
    this.reserve(frame.v.length);
    for (let k = 0; k < frame.v.length; k++) {
      scaled[k] = this.v[this.len + k] = frame.v[k]! * kv;
      this.i[this.len + k] = frame.i[k]! * ki;
    }
    this.len += frame.v.length;
    this.monitor.push(scaled, firstIndex);
    this.analyzeReady();
  }

  pushWindow(w: WindowRef): void {
    if ((w.flags & NOT_WHOLE_CYCLES) !== 0) return;
    const end = Number(w.end_index);
    this.pending.push({ start: end - w.samples, end });
    this.analyzeReady();
  }

  /** Everything produced since the last drain. `final`: the stream ended, close what is open. */
  drain(final = false): PqOutput {
    if (final) this.endSegment();
    const m = this.monitor;
    const events = m.events.splice(0);
    // An aggregate still waiting is flagged by the events of earlier drains too, not only by those the
    // monitor holds now: they are kept for as long as an interval can wait.
    this.drained.push(...events);
    const latest = this.drained.reduce((x, e) => Math.max(x, e.end), -Infinity);
    this.drained = this.drained.filter((e) => e.end >= latest - 2 * INTERVAL_S * this.cfg.deviceRateHz);
    const source: EventSource = {
      eventDuring: (start, end) => m.eventDuring(start, end) || this.drained.some((e) => e.start < end && e.end > start),
      settledAfter: (index) => m.settledAfter(index),
    };
    const out: PqOutput = {
      windows: this.out,
      events,
      aggregates: this.aggregator.drain(source, final),
      halfCycles: m.halfCycles.splice(0),
      frequencies: m.frequencies.splice(0),
    };
    this.out = [];
    return out;
  }

  /** The segment ends: windows it does not cover are invalid, open events end, a new segment starts. */
  private endSegment(): void {
    if (this.len === 0) return;
    for (const p of this.pending) this.out.push({ ...p, analysis: null, gap: true });
    this.pending = [];
    this.monitor.gap(this.next);
    this.len = 0;
  }

  private analyzeReady(): void {
    const keep: { start: number; end: number }[] = [];
    for (const p of this.pending) {
      if (p.end + this.margin > this.next) {
        keep.push(p);
      } else if (p.start - this.margin < this.first) {
        this.out.push({ ...p, analysis: null, gap: true });
      } else {
        const slice = { v: this.v.subarray(0, this.len), i: this.i.subarray(0, this.len), firstIndex: this.first, decimation: this.cfg.decimation };
        const analysis = analyzeWindow(slice, { ...p, cycles: this.cfg.cycles }, {
          deviceRateHz: this.cfg.deviceRateHz,
          ...(this.cfg.response ? { response: this.cfg.response } : {}),
        });
        this.aggregator.add({ ...p, vrms: analysis.vrms, irms: analysis.irms, h_v: analysis.h_v, h_i: analysis.h_i, p_h: analysis.p_h });
        this.out.push({ ...p, analysis, gap: false });
      }
    }
    this.pending = keep;
    this.trim();
  }

  /**
   * Drops samples no pending or future window can need. A window's frame arrives about when the stream
   * reaches its end, so twice a window's nominal duration of history is kept for windows not yet announced.
   */
  private trim(): void {
    const windowSamples = (this.cfg.cycles / this.cfg.thresholds.nominalHz) * this.cfg.deviceRateHz;
    const oldest = this.pending[0]?.start ?? this.next - 2 * windowSamples;
    const drop = Math.floor((oldest - this.margin - this.first) / this.cfg.decimation) - 1;
    if (drop < this.len / 2 || drop <= 0) return;
    this.v.copyWithin(0, drop, this.len);
    this.i.copyWithin(0, drop, this.len);
    this.len -= drop;
    this.first += drop * this.cfg.decimation;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.v.length) return;
    const size = Math.max(this.v.length * 2, this.len + n);
    const v = new Float64Array(size);
    const i = new Float64Array(size);
    v.set(this.v.subarray(0, this.len));
    i.set(this.i.subarray(0, this.len));
    this.v = v;
    this.i = i;
  }
}
