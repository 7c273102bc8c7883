// The simulated device: a synthetic load sampled at 4 Msps, run through the exact DSP model, framed
// as the firmware frames it. The host cannot tell it from hardware except by identify's board and
// adc_part (both SIMULATED): the bytes go through the same decoder, link and ingest.
//
// What it sends, in the order the firmware would:
//   identify       at boot (construction, reset()), when a host opens the port, and on cmd_identify
//   window         one per closed window (exact DspCore records)
//   energy         after every `energyEveryWindows`-th window (default 1: after every window), E at that
//                  window's end_index, so Σ window.sum_vi between two snapshots equals their difference
//   status         once per second of device time (sample index, not host clock) and on cmd_status
//   capture_chunk  the pairs of a completed capture, ≤ 256 per chunk, as fast as the link has room
//   ack            one per command, with the command's seq
// Every generated frame takes the next u32 seq, also when it is dropped, and the drop is counted in
// status.frames_dropped, as the firmware does: when no host is listening (the output sink is absent
// or refuses it), or when the frames would exceed what the link carries (`linkBytesPerS` of device
// time, default 1 MB/s, about what USB full-speed CDC-ACM delivers; windows of a few samples would
// otherwise produce more than any real link could).
//
// Time: the device's clock is its sample index. In paced mode (start()) the sample index follows the
// wall clock from the moment of start, computed from the elapsed time since then (not accumulated per
// tick, so it does not drift); `speed` scales it, and Infinity runs as fast as the CPU allows.
// advance(n) runs n samples synchronously, for tests.
//
// Commands take effect at the next sample boundary: they are handled between two blocks, and a
// configuration is committed into DspCore, which applies it at the first sample of the next block.

import { ADC_PART, BOARD, CAPTURE_TRIGGER, PROTOCOL_VERSION, ACK_STATUS, WINDOW_MODE } from '../protocol/definition.ts';
import type { FrameName } from '../protocol/definition.ts';
import { decodePayload, encodeFrame, type Frame, type FrameFields, type CapturePair } from '../protocol/codec.ts';
import { cobsDecode } from '../protocol/cobs.ts';
import { MAX_ENCODED_FRAME_BYTES, layoutOf } from '../protocol/layout.ts';
import { DELAY_LINE_LENGTH, DspConfigError, DspCore, RESET_CONFIG, validateConfig, type DspConfig } from '../dsp/model.ts';
import { SAMPLE_RATE_HZ, SyntheticLoad, XorShift32, type ScenarioName } from './load.ts';

/** major << 16 | minor << 8 | patch of the (simulated) gateware and firmware. */
export const SIM_VERSION = (0 << 16) | (1 << 8) | 0;
export const SIM_CAPTURE_DEPTH = 4096;
/** Pairs per capture_chunk frame (the protocol's maximum tail). */
export const CAPTURE_CHUNK_PAIRS = 256;
/** A level trigger that has not fired after this many samples fires anyway (a scope's "auto" mode). */
export const CAPTURE_AUTO_TRIGGER_SAMPLES = SAMPLE_RATE_HZ;
/** Samples the pipeline handles per step: large for speed, small while a capture collects samples. */
const BLOCK_SAMPLES = 65536;
const CAPTURE_BLOCK_SAMPLES = 4096;
/**
 * Raw history kept for captures: a capture needs its pairs (≤ depth), plus the delay line's history
 * before them, and the trigger may lie anywhere in the last block.
 */
const RAW_RING_SAMPLES = 16384;
const STATUS_INTERVAL_SAMPLES = SAMPLE_RATE_HZ;
/** Longest a paced tick computes before yielding to the event loop (ms of host time). */
const TICK_BUDGET_MS = 40;
const TICK_INTERVAL_MS = 5;

function checkSpeed(speed: number): number {
  if (typeof speed !== 'number' || !(speed > 0)) {
    throw new RangeError(`speed must be > 0 (Infinity for as fast as possible), got ${String(speed)}`);
  }
  return speed;
}

/** Where the device's bytes go. Returning false means the link refused the frame (it is dropped). */
export type ByteSink = (bytes: Buffer) => boolean | void;

export interface SimulatedDeviceOptions {
  scenario?: ScenarioName;
  seed?: number;
  /** Pin appliances on or off by name (see load.ts). */
  pins?: Readonly<Record<string, boolean>>;
  /** 1 = real time; 10 = ten times faster; Infinity = as fast as possible. */
  speed?: number;
  /** Window configuration and calibration at boot; defaults to the gateware's reset values, except
   * that the `dc` scenario boots in FIXED mode with 400 000 samples (10 windows/s), as DC has no cycles. */
  bootConfig?: Partial<DspConfig>;
  /** An energy frame after every this many windows (≥ 1). */
  energyEveryWindows?: number;
  /** Where frames go from boot on (see setOutput); without one, the boot identify is dropped. */
  output?: ByteSink;
  /** Link throughput in bytes per second of device time (Infinity: unlimited). */
  linkBytesPerS?: number;
}

/** USB full-speed bulk carries 1.2 MB/s at best; CDC-ACM on a soft core delivers about this much. */
export const DEFAULT_LINK_BYTES_PER_S = 1_000_000;
/** The firmware's transmit ring (firmware/src/txring.h): frames that find no room in it are dropped. */
export const TX_RING_BYTES = 8192;
/** Capture chunks wait for room, leaving this much for live frames (firmware APP_CAPTURE_RESERVE_BYTES). */
const CAPTURE_RESERVE_BYTES = 1024;

interface Capture {
  id: number;
  pairs: number;
  trigger: number;
  pretrigger: number;
  /** Raw-code threshold equivalent to the level (level triggers only). */
  rawThreshold: number;
  armedAt: number;
  /** Sample index of the trigger once it has fired. */
  triggerIndex: number | null;
  /** Once all samples are in: the chunks still to send, oldest first (encoded when sent, for their seq). */
  chunks: { fields: FrameFields<'capture_chunk'>; pairs: CapturePair[] }[] | null;
}

type Counters = {
  frames_dropped: number;
  fifo_overflows: number;
  samples_dropped: number;
  adc_errors: number;
  watchdog_resets: number;
};

export class SimulatedDevice {
  readonly load: SyntheticLoad;
  readonly deviceId: bigint;
  readonly energyEveryWindows: number;
  private speedValue: number;

  private readonly rng: XorShift32;
  private readonly bootConfigValue: DspConfig;
  private core!: DspCore;
  /** The latest configuration committed (in force from the next sample). */
  private staged!: DspConfig;
  private bootIdValue = 0;
  private seq = 0;
  private index = 0;
  private windowsSinceEnergy = 0;
  private nextStatusIndex = STATUS_INTERVAL_SAMPLES;
  private counters: Counters = { frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0, adc_errors: 0, watchdog_resets: 0 };
  private sink: ByteSink | null = null;
  private readonly linkBytesPerSample: number;
  /** Bytes waiting in the transmit ring, as of device time ringAt (it drains at the link's rate). */
  private ringBytes = 0;
  private ringAt = 0;

  private readonly cv = new Uint16Array(BLOCK_SAMPLES);
  private readonly ci = new Uint16Array(BLOCK_SAMPLES);
  private readonly ringV = new Uint16Array(RAW_RING_SAMPLES);
  private readonly ringI = new Uint16Array(RAW_RING_SAMPLES);
  private capture: Capture | null = null;
  private captureIdCounter = 0;

  /** Command bytes since the last delimiter. */
  private readonly rx = new Uint8Array(MAX_ENCODED_FRAME_BYTES);
  private rxBytes = 0;
  private rxDiscarding = false;

  private timer: NodeJS.Timeout | null = null;
  private pacing = false;
  private paceStartMs = 0;
  private paceStartIndex = 0;

  constructor(options: SimulatedDeviceOptions = {}) {
    const scenario = options.scenario ?? 'mains-230-50';
    const seed = options.seed ?? 1;
    this.load = new SyntheticLoad({ scenario, seed, pins: options.pins });
    this.speedValue = checkSpeed(options.speed ?? 1);
    this.energyEveryWindows = options.energyEveryWindows ?? 1;
    if (!Number.isInteger(this.energyEveryWindows) || this.energyEveryWindows < 1) {
      throw new RangeError(`energyEveryWindows must be an integer ≥ 1, got ${options.energyEveryWindows}`);
    }
    const scenarioDefaults: Partial<DspConfig> = scenario === 'dc' ? { mode: WINDOW_MODE.FIXED, fixed_samples: 400_000 } : {};
    this.bootConfigValue = { ...RESET_CONFIG, ...scenarioDefaults, ...options.bootConfig };
    validateConfig(this.bootConfigValue);
    // A different stream from the load's, so device identity and load do not shadow each other.
    this.rng = new XorShift32(seed ^ 0x5eedc0de);
    this.deviceId = (BigInt(this.rng.nextU32()) << 32n) | BigInt(this.rng.nextU32());
    this.sink = options.output ?? null;
    const linkRate = options.linkBytesPerS ?? DEFAULT_LINK_BYTES_PER_S;
    if (!(linkRate > 0)) throw new RangeError(`linkBytesPerS must be > 0 (Infinity for unlimited), got ${options.linkBytesPerS}`);
    this.linkBytesPerSample = linkRate / SAMPLE_RATE_HZ;
    this.boot();
  }

  // -------------------------------------------------------------------------------------------
  // Public surface

  get kv(): number {
    return this.load.kv;
  }
  get ki(): number {
    return this.load.ki;
  }
  get fs(): number {
    return SAMPLE_RATE_HZ;
  }
  get bootId(): number {
    return this.bootIdValue;
  }
  /** Device sample index: samples processed since the last reset. */
  get sampleIndex(): number {
    return this.index;
  }
  /** E of the running boot (Σ v·i since reset). */
  get energy(): bigint {
    return this.core.energy;
  }
  get running(): boolean {
    return this.pacing;
  }

  /** Attach (or detach, with null) where frames go. Frames generated without a sink are dropped. */
  setOutput(sink: ByteSink | null): void {
    this.sink = sink;
  }

  /**
   * A host opened the port. The firmware sends identify when the host asserts DTR on the CDC-ACM
   * interface, so that a host that connects after boot learns who it talks to without asking.
   */
  hostConnected(): void {
    this.sendIdentify();
  }

  /** A device reset: new boot_id, sample index, energy and seq from 0, boot configuration, identify. */
  reset(): void {
    this.boot();
    if (this.pacing) {
      this.paceStartMs = performance.now();
      this.paceStartIndex = 0;
    }
  }

  /** Run n samples now, synchronously, sending every frame they produce. */
  advance(samples: number): void {
    if (!Number.isInteger(samples) || samples < 0) throw new RangeError(`advance: samples must be an integer ≥ 0, got ${samples}`);
    let left = samples;
    while (left > 0) {
      const block = this.blockSize(left);
      this.step(block);
      left -= block;
    }
  }

  /** Device seconds per wall-clock second while paced (Infinity: as fast as possible). */
  get speed(): number {
    return this.speedValue;
  }

  /** Change the pace from now on, without a jump in device time. */
  setSpeed(speed: number): void {
    this.speedValue = checkSpeed(speed);
    this.paceStartMs = performance.now();
    this.paceStartIndex = this.index;
  }

  /** Run paced by the wall clock (scaled by `speed`) until stop(). */
  start(): void {
    if (this.pacing) return;
    this.pacing = true;
    this.paceStartMs = performance.now();
    this.paceStartIndex = this.index;
    this.timer = setTimeout(() => this.tick(), 0);
  }

  stop(): void {
    this.pacing = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Bytes from the host: split on 0x00, decoded, answered. Never throws on bad input. */
  receive(bytes: Uint8Array): void {
    for (let k = 0; k < bytes.length; k++) {
      const b = bytes[k]!;
      if (b !== 0) {
        if (this.rxDiscarding) continue;
        if (this.rxBytes === this.rx.length) {
          // Longer than any frame: garbage, skip to the next delimiter.
          this.rxDiscarding = true;
          this.rxBytes = 0;
          continue;
        }
        this.rx[this.rxBytes++] = b;
        continue;
      }
      if (!this.rxDiscarding && this.rxBytes > 0) this.handleChunk(this.rx.slice(0, this.rxBytes));
      this.rxBytes = 0;
      this.rxDiscarding = false;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Boot, pacing, pipeline

  private boot(): void {
    let id = 0;
    while (id === 0 || id === this.bootIdValue) id = this.rng.nextU32();
    this.bootIdValue = id;
    this.core = new DspCore(this.bootConfigValue);
    this.staged = { ...this.bootConfigValue };
    this.seq = 0;
    this.index = 0;
    this.windowsSinceEnergy = 0;
    this.nextStatusIndex = STATUS_INTERVAL_SAMPLES;
    this.counters = { frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0, adc_errors: 0, watchdog_resets: 0 };
    this.capture = null;
    this.ringBytes = 0;
    this.ringAt = 0;
    this.rxBytes = 0;
    this.rxDiscarding = false;
    this.sendIdentify();
  }

  private tick(): void {
    this.timer = null;
    const began = performance.now();
    const target = this.speedValue === Infinity
      ? Number.POSITIVE_INFINITY
      : this.paceStartIndex + Math.floor((began - this.paceStartMs) / 1000 * SAMPLE_RATE_HZ * this.speedValue);
    // Behind the clock (a slow host) the simulation catches up as fast as it can, in bounded slices
    // so that commands and the host's own work still get the event loop.
    while (this.pacing && this.index < target && performance.now() - began < TICK_BUDGET_MS) {
      this.step(this.blockSize(target - this.index));
    }
    // A sink may have stopped (and even restarted) the device while frames went out.
    if (!this.pacing || this.timer !== null) return;
    if (this.speedValue === Infinity) this.timer = setTimeout(() => this.tick(), 0);
    else this.timer = setTimeout(() => this.tick(), TICK_INTERVAL_MS);
  }

  /** The next block: at most `left`, small while a capture collects, ending on a status instant. */
  private blockSize(left: number): number {
    return Math.min(left, this.capture ? CAPTURE_BLOCK_SAMPLES : BLOCK_SAMPLES, this.nextStatusIndex - this.index);
  }

  /** One block: load → raw history → capture trigger → DSP → frames. */
  private step(count: number): void {
    const cv = this.cv;
    const ci = this.ci;
    const start = this.index;
    this.load.fill(cv, ci, count);
    this.remember(cv, ci, count);
    if (this.capture) this.scanTrigger(start, count);
    const windows = this.core.process(cv, ci, count);
    const energies = this.core.lastEnergies;
    this.index += count;
    for (let w = 0; w < windows.length; w++) {
      const record = windows[w]!;
      const at = Number(record.end_index);
      this.send('window', record, undefined, at);
      if (++this.windowsSinceEnergy >= this.energyEveryWindows) {
        this.windowsSinceEnergy = 0;
        this.send('energy', { end_index: record.end_index, energy: energies[w]!, boot_id: this.bootIdValue }, undefined, at);
      }
    }
    if (this.capture?.triggerIndex != null) this.maybeFinishCapture();
    if (this.capture?.chunks) this.pumpCapture();
    while (this.index >= this.nextStatusIndex) {
      this.sendStatus();
      this.nextStatusIndex += STATUS_INTERVAL_SAMPLES;
    }
  }

  /** Copy the block's last RAW_RING_SAMPLES pairs into the ring (two memcpy-like pieces). */
  private remember(cv: Uint16Array, ci: Uint16Array, count: number): void {
    let from = Math.max(0, count - RAW_RING_SAMPLES);
    while (from < count) {
      const slot = (this.index + from) % RAW_RING_SAMPLES;
      const n = Math.min(count - from, RAW_RING_SAMPLES - slot);
      this.ringV.set(cv.subarray(from, from + n), slot);
      this.ringI.set(ci.subarray(from, from + n), slot);
      from += n;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Frames out

  /** Encode with the next seq and put it on the link as of device time `at` (default: now). */
  private send<N extends FrameName>(name: N, fields: FrameFields<N>, pairs?: readonly CapturePair[], at = this.index): void {
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0;
    // A frame that cannot fit even at its smallest encoding (COBS adds ≥ 1 byte, the delimiter 1) is
    // dropped without being encoded: at thousands of windows a second most of them are.
    const layout = layoutOf(name);
    const rawBytes = layout.minFrameBytes + (layout.tail ? layout.tail.recordBytes * (pairs?.length ?? 0) : 0);
    if (this.sink && this.ringRoom(at) < rawBytes + 2) {
      this.counters.frames_dropped = (this.counters.frames_dropped + 1) >>> 0;
      return;
    }
    this.transmit(encodeFrame(name, seq, fields, pairs), at);
  }

  /** Bytes free in the transmit ring at device time `at`. */
  private ringRoom(at: number): number {
    if (at > this.ringAt) {
      this.ringBytes = Math.max(0, this.ringBytes - (at - this.ringAt) * this.linkBytesPerSample);
      this.ringAt = at;
    }
    return TX_RING_BYTES - this.ringBytes;
  }

  /** A whole frame goes into the ring or is dropped (and counted); the DSP never waits for the link. */
  private transmit(bytes: Buffer, at: number): void {
    let accepted = false;
    if (this.sink && this.ringRoom(at) >= bytes.length) {
      accepted = this.sink(bytes) !== false;
      if (accepted) this.ringBytes += bytes.length;
    }
    if (!accepted) this.counters.frames_dropped = (this.counters.frames_dropped + 1) >>> 0;
  }

  private sendIdentify(): void {
    const c = this.staged;
    this.send('identify', {
      device_id: this.deviceId,
      boot_id: this.bootIdValue,
      board: BOARD.SIMULATED,
      adc_part: ADC_PART.SIMULATED,
      protocol_version: PROTOCOL_VERSION,
      gateware_version: SIM_VERSION,
      firmware_version: SIM_VERSION,
      sample_rate_num: SAMPLE_RATE_HZ,
      sample_rate_den: 1,
      capture_depth: SIM_CAPTURE_DEPTH,
      config_seq: this.core.configSeq,
      mode: c.mode,
      cycles: c.cycles,
      fixed_samples: c.fixed_samples,
      max_samples: c.max_samples,
      zc_hysteresis: c.zc_hysteresis,
      v_offset: c.v_offset,
      i_offset: c.i_offset,
      v_gain: c.v_gain,
      i_gain: c.i_gain,
      phase: c.phase,
    });
  }

  private sendStatus(): void {
    this.send('status', {
      boot_id: this.bootIdValue,
      // u32 milliseconds wrap after 49.7 days, as on the device.
      uptime_ms: Math.floor(this.index / (SAMPLE_RATE_HZ / 1000)) >>> 0,
      ...this.counters,
      config_seq: this.core.configSeq,
    });
  }

  private ack(commandSeq: number, commandType: number, status: number, value = 0): void {
    this.send('ack', { command_seq: commandSeq, command_type: commandType, status, value });
  }

  // -------------------------------------------------------------------------------------------
  // Commands in

  private handleChunk(chunk: Uint8Array): void {
    const result = decodePayload(chunk);
    if (!result.ok) {
      // An intact frame (its CRC matched) that this firmware cannot use still gets an answer; a
      // corrupted one cannot be answered, as its seq is not trustworthy.
      if (result.error === 'type' || result.error === 'length') {
        const decoded = cobsDecode(chunk);
        if (decoded.ok && decoded.data.length >= 6) {
          const view = new DataView(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength);
          const status = result.error === 'type' ? ACK_STATUS.UNKNOWN_COMMAND : ACK_STATUS.BAD_LENGTH;
          this.ack(view.getUint32(2, true), view.getUint8(1), status);
        }
      }
      return;
    }
    this.handleCommand(result.frame);
  }

  private handleCommand(frame: Frame): void {
    switch (frame.name) {
      // The answer goes before the ack (as in the firmware), so a host that waits for the ack has it.
      case 'cmd_identify':
        this.sendIdentify();
        this.ack(frame.seq, frame.type, ACK_STATUS.OK);
        return;
      case 'cmd_status':
        this.sendStatus();
        this.ack(frame.seq, frame.type, ACK_STATUS.OK);
        return;
      case 'cmd_configure':
      case 'cmd_calibrate': {
        const next: DspConfig = { ...this.staged, ...frame.fields };
        try {
          const configSeq = this.core.commit(next);
          this.staged = next;
          this.ack(frame.seq, frame.type, ACK_STATUS.OK, configSeq);
        } catch (error) {
          if (!(error instanceof DspConfigError)) throw error;
          this.ack(frame.seq, frame.type, ACK_STATUS.BAD_ARGS);
        }
        return;
      }
      case 'cmd_capture':
        this.armCapture(frame);
        return;
      default:
        // A device-to-host frame type sent to the device.
        this.ack(frame.seq, frame.type, ACK_STATUS.UNKNOWN_COMMAND);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Captures

  private armCapture(frame: Frame<'cmd_capture'>): void {
    const { pairs, trigger, level, pretrigger } = frame.fields;
    const validTrigger = (Object.values(CAPTURE_TRIGGER) as number[]).includes(trigger);
    if (pairs < 1 || pairs > SIM_CAPTURE_DEPTH || !validTrigger || pretrigger >= pairs) {
      this.ack(frame.seq, frame.type, ACK_STATUS.BAD_ARGS);
      return;
    }
    // One capture at a time, until its last chunk has gone out (as the firmware does).
    if (this.capture) {
      this.ack(frame.seq, frame.type, ACK_STATUS.BUSY);
      return;
    }
    this.captureIdCounter = (this.captureIdCounter + 1) & 0xffff || 1;
    const onCurrent = trigger === CAPTURE_TRIGGER.I_RISING || trigger === CAPTURE_TRIGGER.I_FALLING;
    this.capture = {
      id: this.captureIdCounter,
      pairs,
      trigger,
      pretrigger,
      rawThreshold: this.rawThreshold(level, onCurrent),
      armedAt: this.index,
      // IMMEDIATE: the trigger is the next sample, so the pretrigger pairs are already in the history
      // (just after boot there may be fewer: then the trigger waits until there are).
      triggerIndex: trigger === CAPTURE_TRIGGER.IMMEDIATE ? Math.max(this.index, pretrigger) : null,
      chunks: null,
    };
    this.ack(frame.seq, frame.type, ACK_STATUS.OK, this.capture.id);
    if (this.capture.triggerIndex !== null) this.maybeFinishCapture();
    if (this.capture?.chunks) this.pumpCapture();
  }

  /**
   * The level, given in calibrated output LSB, mapped back to a centred raw code through the staged
   * offset and gain, so that the trigger can watch the raw stream without calibrating every sample.
   * (The phase delay is ignored: the trigger instant may differ from the calibrated data's crossing by
   * the channel's phase delay and a rounding LSB; the captured pairs themselves are exact.)
   */
  private rawThreshold(level: number, onCurrent: boolean): number {
    const gain = onCurrent ? this.staged.i_gain : this.staged.v_gain;
    const offset = onCurrent ? this.staged.i_offset : this.staged.v_offset;
    if (gain === 0) return level <= 0 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    return (level * 65536 / gain + offset) / 4;
  }

  /** Look for the trigger among the block's samples [start, start + count) (already in the ring). */
  private scanTrigger(start: number, count: number): void {
    const cap = this.capture!;
    if (cap.triggerIndex !== null) return;
    const ring = cap.trigger === CAPTURE_TRIGGER.I_RISING || cap.trigger === CAPTURE_TRIGGER.I_FALLING ? this.ringI : this.ringV;
    const rising = cap.trigger === CAPTURE_TRIGGER.V_RISING || cap.trigger === CAPTURE_TRIGGER.I_RISING;
    const threshold = cap.rawThreshold + 8192;
    // A crossing needs a predecessor seen while armed, and the pretrigger pairs must exist since boot.
    for (let n = Math.max(start, cap.armedAt + 1, cap.pretrigger); n < start + count; n++) {
      const prev = ring[(n - 1) % RAW_RING_SAMPLES]!;
      const cur = ring[n % RAW_RING_SAMPLES]!;
      if (rising ? prev < threshold && cur >= threshold : prev >= threshold && cur < threshold) {
        cap.triggerIndex = n;
        return;
      }
    }
    if (start + count - cap.armedAt >= CAPTURE_AUTO_TRIGGER_SAMPLES) cap.triggerIndex = start + count - 1;
  }

  /** Once all its samples have been produced, calibrate the capture and queue its chunks. */
  private maybeFinishCapture(): void {
    const cap = this.capture!;
    if (cap.chunks) return;
    const first = cap.triggerIndex! - cap.pretrigger;
    const end = first + cap.pairs;
    if (end > this.index) return;
    // Calibrate exactly as the pipeline does by running the same model, one sample per window, over
    // the delay line's history and the captured samples. Before index 0 the delay line holds zeros.
    const history = DELAY_LINE_LENGTH - 1;
    const from = first - history;
    const total = end - from;
    const cv = new Uint16Array(total);
    const ci = new Uint16Array(total);
    for (let k = 0; k < total; k++) {
      const n = from + k;
      cv[k] = n < 0 ? 8192 : this.ringV[n % RAW_RING_SAMPLES]!;
      ci[k] = n < 0 ? 8192 : this.ringI[n % RAW_RING_SAMPLES]!;
    }
    const inForce = this.core.config;
    const calibrator = new DspCore({ ...inForce, mode: WINDOW_MODE.FIXED, fixed_samples: 1 });
    const records = calibrator.process(cv, ci);
    const pairs: CapturePair[] = [];
    for (let k = history; k < records.length; k++) pairs.push({ v: records[k]!.min_v, i: records[k]!.min_i });
    const chunkCount = Math.ceil(cap.pairs / CAPTURE_CHUNK_PAIRS);
    const configSeq = this.core.configSeq;
    cap.chunks = [];
    for (let c = 0; c < chunkCount; c++) {
      cap.chunks.push({
        fields: {
          capture_id: cap.id,
          chunk_index: c,
          chunk_count: chunkCount,
          first_index: BigInt(first + c * CAPTURE_CHUNK_PAIRS),
          trigger_index: BigInt(cap.triggerIndex!),
          config_seq: configSeq,
        },
        pairs: pairs.slice(c * CAPTURE_CHUNK_PAIRS, (c + 1) * CAPTURE_CHUNK_PAIRS),
      });
    }
  }

  /**
   * Capture chunks wait for room in the transmit ring instead of being dropped (the capture buffer
   * holds them), keeping a reserve so that live frames still flow meanwhile.
   */
  private pumpCapture(): void {
    const cap = this.capture!;
    const chunks = cap.chunks!;
    while (chunks.length > 0) {
      const { fields, pairs } = chunks[0]!;
      // Encoded with the seq it would take, which it takes only once it goes out.
      const size = encodeFrame('capture_chunk', this.seq, fields, pairs).length;
      if (this.sink && this.ringRoom(this.index) < size + CAPTURE_RESERVE_BYTES) return;
      // Without a host the chunks are dropped like any frame, so the capture ends.
      chunks.shift();
      this.send('capture_chunk', fields, pairs);
    }
    this.capture = null;
  }
}
