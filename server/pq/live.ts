// The power-quality analysis of one device link while serve runs (issue 13): the `waveform` frames and the
// booked `window` frames of the device go into a PqStream configured from the device's identify; what it
// completes goes to a sink (the store's pq rows) with the clock that maps device sample indices to wall time.
//
// A stream never crosses a reset: a new boot (identify, status or energy with another boot_id), a sample index
// that goes back, or a new scale closes the stream (its open events and the partial 10-minute interval are
// released, cut) and the next waveform frame starts a fresh one. The link's `seq` is shared by every frame
// type, so losses are found from `first_index` (server/protocol/waveform.ts), not from `seq`.

import type { Frame, FrameFields } from '../protocol/codec.ts';
import { WINDOW_MODE } from '../protocol/definition.ts';
import { waveformBlock, WaveformGaps, WaveformStreamError } from '../protocol/waveform.ts';
import type { HalfCycleValue, PqEvent } from './iec61000-4-30.ts';
import { pqStreamConfig, type PqSettings } from './settings.ts';
import { PqStream, type PqOutput, type PqStreamConfig } from './stream.ts';
import type { PqAggregate } from './aggregate.ts';

/** Maps a device sample index of one epoch to wall time: the last booked window's end and time. */
export interface PqClock {
  device: string;
  epoch: number;
  endIndex: bigint;
  tMs: number;
  msPerSample: number;
}

/** An event with the Urms(1/2) values around it: `[t_s, urms]` pairs, t_s from the event's start. */
export interface TracedEvent extends PqEvent {
  trace: number[];
}

/** What one drain of the stream completed, with the clock of its epoch. */
export interface PqBatch {
  clock: PqClock;
  /** the 10-minute aggregates (the 150/180-cycle blocks stay in memory) */
  aggregates: PqAggregate[];
  events: TracedEvent[];
}

export type PqSink = (batch: PqBatch) => void;

export interface LivePqCounters {
  /** waveform frames received */
  waveformFrames: number;
  /** stream samples lost between frames (jumps of first_index), each 512 device samples */
  waveformLostSamples: number;
  /** discontinuities of the stream: a lost stretch, or a stream restarted (reset, index back, new scale) */
  waveformGaps: number;
  /** 10/12-cycle windows analysed */
  pqWindows: number;
  /** whole-cycle windows the stream did not cover (a gap, the stream's start): not analysed */
  pqGapWindows: number;
  /** dips, swells and interruptions detected */
  pqEvents: number;
}

/** Urms(1/2) values kept for the traces: before an event starts and after it ends. */
export const TRACE_MARGIN_S = 0.5;
/** A longer event keeps the first and last half of this many values (its edges), not the steady middle. */
export const MAX_TRACE_POINTS = 4000;
/** Urms(1/2) history kept while no event waits for its trace. */
const HISTORY_S = 60;

interface DeviceSetup {
  rateHz: number;
  kv: number;
  ki: number;
  cycles: number;
  /** FIXED windows are not whole cycles: only the voltage events run */
  wholeCycles: boolean;
  configSeq: number;
}

export class LivePq {
  readonly counters: LivePqCounters = { waveformFrames: 0, waveformLostSamples: 0, waveformGaps: 0, pqWindows: 0, pqGapWindows: 0, pqEvents: 0 };
  /** Why there is no analysis (settings the device's rate cannot serve), else null. */
  error: string | null = null;
  private setup: DeviceSetup | null = null;
  private stream: PqStream | null = null;
  private gaps = new WaveformGaps();
  private seq = 0;
  private clock: PqClock | null = null;
  /** results completed before a window of this epoch was booked (a replay of windows already stored) */
  private held: Omit<PqBatch, 'clock'> = { aggregates: [], events: [] };
  private halfCycles: HalfCycleValue[] = [];
  /** events waiting for the Urms(1/2) values after their end */
  private waiting: PqEvent[] = [];

  constructor(readonly settings: PqSettings, private readonly sink: PqSink) {}

  /** The device introduced itself (or its scale changed): the stream restarts with this configuration. */
  configure(f: Pick<FrameFields<'identify'>, 'sample_rate_num' | 'sample_rate_den' | 'mode' | 'cycles' | 'config_seq'>, kv: number, ki: number): void {
    this.restart();
    this.error = null;
    this.setup = {
      rateHz: f.sample_rate_num / f.sample_rate_den, kv, ki, cycles: f.cycles,
      wholeCycles: f.mode === WINDOW_MODE.CYCLES, configSeq: f.config_seq,
    };
  }

  /** Close the stream (a reset): what it holds is released, the next waveform frame starts a new one. */
  restart(): void {
    if (this.stream) {
      this.release(this.stream.drain(true), true);
      this.counters.waveformGaps++;
    }
    // Held results of a boot that booked no window were all stored before (a replay): nothing to map them with.
    this.held = { aggregates: [], events: [] };
    this.clock = null;
    this.stream = null;
    this.gaps = new WaveformGaps();
    this.halfCycles = [];
  }

  /**
   * The host stops (serve exits): the events detected or still open are released (open ones cut) so nothing
   * seen is lost; the interval in progress is not, as the device runs on and a restarted serve may still
   * complete it (an interval is stored once).
   */
  stop(): void {
    if (!this.stream) return;
    this.release({ ...this.stream.drain(true), aggregates: [] }, true);
    this.stream = null;
  }

  waveform(frame: Frame<'waveform'>): void {
    this.counters.waveformFrames++;
    // Settings this device cannot be analysed with stay refused until it is configured anew.
    if (!this.setup || this.error !== null) return;
    const block = waveformBlock(frame);
    let lost: bigint;
    try {
      lost = this.gaps.push(block);
    } catch (err) {
      if (!(err instanceof WaveformStreamError)) throw err;
      // The index went back or off the grid without a new boot_id we saw: a reset, as the store takes it.
      this.restart();
      lost = this.gaps.push(block);
    }
    this.counters.waveformLostSamples += Number(lost);
    if (lost > 0n) this.counters.waveformGaps++;
    const stream = this.stream ?? this.start();
    if (!stream) return;
    // A local seq: the link's is shared by all frame types; losses show in first_index.
    stream.pushWaveform({ ...block, seq: this.seq++ });
  }

  /**
   * A window frame: a whole-cycle window of the identified configuration is analysed once the stream covers
   * it. `clock`: the store booked it (its end and time map the results to wall time); null for a duplicate,
   * whose results wait for the next booked window of the epoch (the store keeps each result once).
   */
  window(f: Pick<FrameFields<'window'>, 'end_index' | 'samples' | 'flags' | 'config_seq'>, clock: PqClock | null): void {
    if (clock) this.clock = clock;
    if (!this.stream || !this.setup) return;
    if (this.setup.wholeCycles && f.config_seq === this.setup.configSeq) this.stream.pushWindow(f);
    this.release(this.stream.drain(false), false);
  }

  private start(): PqStream | null {
    const s = this.setup!;
    let config: PqStreamConfig;
    try {
      config = pqStreamConfig(this.settings, s.rateHz, s.kv, s.ki, s.cycles);
    } catch (err) {
      this.error = (err as Error).message;
      return null;
    }
    this.seq = 0;
    this.stream = new PqStream(config);
    return this.stream;
  }

  private release(out: PqOutput, final: boolean): void {
    for (const w of out.windows) {
      if (w.gap) this.counters.pqGapWindows++;
      else this.counters.pqWindows++;
    }
    this.counters.pqEvents += out.events.length;
    this.halfCycles.push(...out.halfCycles);
    this.waiting.push(...out.events);
    const rate = this.setup?.rateHz ?? 1;
    const lastEnd = this.halfCycles.at(-1)?.end ?? -Infinity;
    const margin = TRACE_MARGIN_S * rate;
    const ready = this.waiting.filter((e) => final || lastEnd >= e.end + margin);
    this.waiting = this.waiting.filter((e) => !ready.includes(e));
    const events = ready.map((e) => ({ ...e, trace: this.trace(e, rate) }));
    const oldest = Math.min(lastEnd - HISTORY_S * rate, ...this.waiting.map((e) => e.start - margin));
    const keepFrom = this.halfCycles.findIndex((h) => h.end >= oldest);
    this.halfCycles.splice(0, keepFrom < 0 ? this.halfCycles.length : keepFrom);
    this.held.aggregates.push(...out.aggregates.filter((a) => a.kind === '10min'));
    this.held.events.push(...events);
    if ((this.held.aggregates.length === 0 && this.held.events.length === 0) || !this.clock) return;
    const batch = { clock: this.clock, ...this.held };
    this.held = { aggregates: [], events: [] };
    this.sink(batch);
  }

  private trace(e: PqEvent, rate: number): number[] {
    const margin = TRACE_MARGIN_S * rate;
    let values = this.halfCycles.filter((h) => h.end >= e.start - margin && h.end <= e.end + margin);
    if (values.length > MAX_TRACE_POINTS) values = [...values.slice(0, MAX_TRACE_POINTS / 2), ...values.slice(-MAX_TRACE_POINTS / 2)];
    return values.flatMap((h) => [(h.end - e.start) / rate, h.urms]);
  }
}

/** Wall time (ms) of a device sample index on the batch's clock, as the window times are (store/ledger.ts). */
export function pqTimeMs(clock: PqClock, index: number): number {
  return Math.round(clock.tMs + (index - Number(clock.endIndex)) * clock.msPerSample);
}
