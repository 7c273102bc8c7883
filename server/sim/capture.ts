// The simulated device's capture buffer: the raw history the capture reads from, and a capture in
// progress with the gateware's semantics (hdl/crabwatt/capture.py, docs/protocol.md "Captures").
// device.ts arms, feeds and drains it; what goes on the link (acks, chunks, the ring) stays there.

import { CAPTURE_TRIGGER, WINDOW_MODE } from '../protocol/definition.ts';
import type { CapturePair, FrameFields } from '../protocol/codec.ts';
import { CODE_MID, DspCore, RESET_CONFIG, type DspConfig } from '../dsp/model.ts';
import { SAMPLE_RATE_HZ } from './load.ts';

export const SIM_CAPTURE_DEPTH = 4096;
/** Pairs per capture_chunk frame (the protocol's maximum tail). */
export const CAPTURE_CHUNK_PAIRS = 256;
/**
 * A level trigger that has not fired this many samples after its pretrigger has filled fires anyway
 * (a scope's "auto" mode; the firmware's APP_CAPTURE_AUTO_TRIGGER_MS).
 */
export const CAPTURE_AUTO_TRIGGER_SAMPLES = SAMPLE_RATE_HZ;
/**
 * Raw history kept for captures, which record their pairs block by block as the samples come: a block
 * (≤ the device's capture block, 4 096 samples) plus the delay line's reach before it.
 */
const RAW_RING_SAMPLES = 16384;

export type CaptureRequest = FrameFields<'cmd_capture'>;

/** Whether the gateware takes the request (else the firmware acks BAD_ARGS). */
export function validCaptureRequest(r: CaptureRequest): boolean {
  const validTrigger = (Object.values(CAPTURE_TRIGGER) as number[]).includes(r.trigger);
  return r.pairs >= 1 && r.pairs <= SIM_CAPTURE_DEPTH && validTrigger && r.pretrigger < r.pairs && r.decimation >= 1 && r.hysteresis <= 32767;
}

/**
 * At unit gains, zero offsets and no phase shift the calibrated sample in whole LSB (y >> 2, what the capture
 * buffer records) is the centred code (docs/dsp.md).
 */
function isIdentityCalibration(c: DspConfig): boolean {
  return c.phase === 0 && c.v_offset === 0 && c.i_offset === 0 && c.v_gain === RESET_CONFIG.v_gain && c.i_gain === RESET_CONFIG.i_gain;
}

/** The last RAW_RING_SAMPLES raw code pairs, by sample index. */
export class RawHistory {
  private readonly v = new Uint16Array(RAW_RING_SAMPLES);
  private readonly i = new Uint16Array(RAW_RING_SAMPLES);

  /** Keep the block of samples [index, index + count) (its last RAW_RING_SAMPLES, in two pieces at most). */
  remember(index: number, cv: Uint16Array, ci: Uint16Array, count: number): void {
    let from = Math.max(0, count - RAW_RING_SAMPLES);
    while (from < count) {
      const slot = (index + from) % RAW_RING_SAMPLES;
      const n = Math.min(count - from, RAW_RING_SAMPLES - slot);
      this.v.set(cv.subarray(from, from + n), slot);
      this.i.set(ci.subarray(from, from + n), slot);
      from += n;
    }
  }

  /** Raw codes of samples [from, to); before index 0 the delay line holds zeros. */
  private span(from: number, to: number): { cv: Uint16Array; ci: Uint16Array } {
    const cv = new Uint16Array(to - from);
    const ci = new Uint16Array(to - from);
    for (let n = from; n < to; n++) {
      cv[n - from] = n < 0 ? CODE_MID : this.v[n % RAW_RING_SAMPLES]!;
      ci[n - from] = n < 0 ? CODE_MID : this.i[n % RAW_RING_SAMPLES]!;
    }
    return { cv, ci };
  }

  /**
   * Calibrated pairs (v, i interleaved) of samples n0, n0 + step, ... (count of them), in whole LSB as
   * the capture buffer records them (y >> 2: a one-sample window's min_v / min_i), computed by the DSP
   * model itself with the configuration `cfg`, one sample per window. Sample n depends on
   * x0[n − d] and x0[n − d − 1] only, d = |phase| >> 16 (docs/dsp.md "Phase alignment"), so a core
   * primed with the d + 1 samples before the first is exact; far-apart samples each get their own
   * short core instead of running the model over every sample between them.
   */
  calibratedPairs(cfg: DspConfig, n0: number, step: number, count: number): Int32Array {
    const out = new Int32Array(2 * count);
    if (isIdentityCalibration(cfg)) {
      for (let k = 0; k < count; k++) {
        const slot = (n0 + k * step) % RAW_RING_SAMPLES;
        out[2 * k] = this.v[slot]! - CODE_MID;
        out[2 * k + 1] = this.i[slot]! - CODE_MID;
      }
      return out;
    }
    const config: DspConfig = { ...cfg, mode: WINDOW_MODE.FIXED, fixed_samples: 1 };
    const reach = Math.floor(Math.abs(cfg.phase) / 65536) + 1;
    const span = (count - 1) * step + 1;
    if (span + reach <= count * (reach + 1)) {
      const { cv, ci } = this.span(n0 - reach, n0 + span);
      const records = new DspCore(config).process(cv, ci);
      for (let k = 0; k < count; k++) {
        const r = records[reach + k * step]!;
        out[2 * k] = r.min_v;
        out[2 * k + 1] = r.min_i;
      }
    } else {
      for (let k = 0; k < count; k++) {
        const n = n0 + k * step;
        const { cv, ci } = this.span(n - reach, n + 1);
        const r = new DspCore(config).process(cv, ci)[reach]!;
        out[2 * k] = r.min_v;
        out[2 * k + 1] = r.min_i;
      }
    }
    return out;
  }
}

export interface CaptureChunk {
  fields: FrameFields<'capture_chunk'>;
  pairs: CapturePair[];
}

/**
 * A capture in progress: from the arming sample A on, every D-th calibrated pair is recorded (samples
 * A, A + D, ...). The trigger looks at recorded pairs only, once Q of them are in: at once for
 * IMMEDIATE; for a level trigger when the channel is past `level` (rising: ≥ level, falling: < level)
 * while primed, primed meaning a recorded pair beyond the hysteresis band (rising: < level − H,
 * falling: ≥ level + H) has come since the channel was last past the level. With H = 0 that is a
 * crossing between two consecutive recorded pairs.
 */
export class SimCapture {
  private trigger: number;
  /** Sample index of the first recorded pair: the decimation grid's origin. */
  private armedAt: number;
  /**
   * When a level trigger that has not fired is re-armed as IMMEDIATE (the firmware's auto-trigger:
   * a second after the pretrigger has filled); null for IMMEDIATE.
   */
  private autoAt: number | null;
  /** Pairs recorded since armedAt. */
  private recorded = 0;
  private primed = false;
  /** Sample index of the trigger pair, and how many pairs had been recorded before it, once known. */
  private triggerIndex: number | null = null;
  private triggerRecord = 0;
  /** config_seq of the trigger pair. */
  private configSeq = 0;
  /** The last `depth` recorded pairs, v and i interleaved, at (recorded mod depth). */
  private readonly ring = new Int16Array(2 * SIM_CAPTURE_DEPTH);
  /** Once all pairs are in: the chunks still to send, oldest first (encoded when sent, for their seq). */
  chunks: CaptureChunk[] | null = null;

  /** `request` must be valid (validCaptureRequest); armed at sample index `at`. */
  constructor(readonly id: number, private readonly request: CaptureRequest, at: number) {
    this.trigger = request.trigger;
    this.armedAt = at;
    this.autoAt = request.trigger === CAPTURE_TRIGGER.IMMEDIATE
      ? null
      : at + request.pretrigger * request.decimation + CAPTURE_AUTO_TRIGGER_SAMPLES;
  }

  /**
   * Record the pairs of the block [start, start + count), whose raw codes are in `history` and whose
   * configuration is `cfg` (commits apply at block starts), and watch for the trigger; `configSeq`
   * is the configuration's seq. Once all pairs are in, `chunks` holds what to send.
   */
  track(history: RawHistory, cfg: DspConfig, configSeq: number, start: number, count: number): void {
    const end = start + count;
    const autoAt = this.autoAt;
    const pairsOf = (n0: number, step: number, n: number): Int32Array => history.calibratedPairs(cfg, n0, step, n);
    if (autoAt !== null && end > autoAt) {
      this.record(pairsOf, configSeq, start, autoAt);
      if (this.triggerIndex === null) {
        // The firmware re-arms as IMMEDIATE: recording starts afresh, on a new grid.
        this.trigger = CAPTURE_TRIGGER.IMMEDIATE;
        this.armedAt = autoAt;
        this.autoAt = null;
        this.recorded = 0;
        this.primed = false;
      }
      this.record(pairsOf, configSeq, autoAt, end);
    } else {
      this.record(pairsOf, configSeq, start, end);
    }
    if (!this.chunks && this.complete()) this.chunks = this.makeChunks();
  }

  private complete(): boolean {
    return this.triggerIndex !== null && this.recorded - this.triggerRecord >= this.request.pairs - this.request.pretrigger;
  }

  /** The recorded pairs among samples [from, to) into the ring, trigger included. */
  private record(pairsOf: (n0: number, step: number, n: number) => Int32Array, configSeq: number, from: number, to: number): void {
    const d = this.request.decimation;
    const n0 = this.armedAt + Math.ceil(Math.max(0, from - this.armedAt) / d) * d;
    const count = n0 < to ? Math.floor((to - 1 - n0) / d) + 1 : 0;
    if (count === 0 || this.complete()) return;
    const values = pairsOf(n0, d, count);
    const onCurrent = this.trigger === CAPTURE_TRIGGER.I_RISING || this.trigger === CAPTURE_TRIGGER.I_FALLING;
    const rising = this.trigger === CAPTURE_TRIGGER.V_RISING || this.trigger === CAPTURE_TRIGGER.I_RISING;
    const { level, pretrigger } = this.request;
    const primeBelow = level - this.request.hysteresis;
    const primeAbove = level + this.request.hysteresis;
    for (let k = 0; k < count; k++) {
      const slot = (this.recorded % SIM_CAPTURE_DEPTH) * 2;
      this.ring[slot] = values[2 * k]!;
      this.ring[slot + 1] = values[2 * k + 1]!;
      if (this.triggerIndex === null) {
        const ch = values[2 * k + (onCurrent ? 1 : 0)]!;
        const past = rising ? ch >= level : ch < level;
        const fire = this.recorded >= pretrigger && (this.trigger === CAPTURE_TRIGGER.IMMEDIATE || (this.primed && past));
        this.primed = (rising ? ch < primeBelow : ch >= primeAbove) || (this.primed && !past);
        if (fire) {
          this.triggerIndex = n0 + k * d;
          this.triggerRecord = this.recorded;
          this.configSeq = configSeq;
          this.autoAt = null;
        }
      }
      this.recorded++;
      if (this.complete()) return;
    }
  }

  /** The capture's pairs, oldest first, in chunks of CAPTURE_CHUNK_PAIRS. */
  private makeChunks(): CaptureChunk[] {
    const { pairs: total, pretrigger, decimation: d } = this.request;
    const triggerIndex = this.triggerIndex!;
    const oldest = this.triggerRecord - pretrigger;
    const first = triggerIndex - pretrigger * d;
    const pairs: CapturePair[] = [];
    for (let k = 0; k < total; k++) {
      const slot = ((oldest + k) % SIM_CAPTURE_DEPTH) * 2;
      pairs.push({ v: this.ring[slot]!, i: this.ring[slot + 1]! });
    }
    const chunkCount = Math.ceil(total / CAPTURE_CHUNK_PAIRS);
    const chunks: CaptureChunk[] = [];
    for (let c = 0; c < chunkCount; c++) {
      chunks.push({
        fields: {
          capture_id: this.id,
          chunk_index: c,
          chunk_count: chunkCount,
          first_index: BigInt(first + c * CAPTURE_CHUNK_PAIRS * d),
          trigger_index: BigInt(triggerIndex),
          config_seq: this.configSeq,
          decimation: d,
        },
        pairs: pairs.slice(c * CAPTURE_CHUNK_PAIRS, (c + 1) * CAPTURE_CHUNK_PAIRS),
      });
    }
    return chunks;
  }
}
