// The simulated device: a synthetic load sampled at 4 Msps, run through the exact DSP model, framed
// as the firmware frames it. The host cannot tell it from hardware except by identify's board and
// adc_part (both SIMULATED): the bytes go through the same decoder, link and ingest.
//
// What it sends, in the order the firmware would:
//   identify       at boot (construction, reset(), cmd_reboot), when a host opens the port, and on cmd_identify
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

import { ADC_DELAY, ADC_PART, BOARD, CALIBRATION_SOURCE, PROTOCOL_VERSION, ACK_STATUS, TX_RESERVE, TX_RING, WINDOW_MODE } from '../protocol/definition.ts';
import type { FrameName } from '../protocol/definition.ts';
import { decodePayload, encodeFrame, type Frame, type FrameFields, type TailRecordInput } from '../protocol/codec.ts';
import { cobsDecode } from '../protocol/cobs.ts';
import { MAX_ENCODED_FRAME_BYTES, layoutOf } from '../protocol/layout.ts';
import { DspConfigError, DspCore, RESET_CONFIG, validateConfig, type DspConfig } from '../dsp/model.ts';
import { DEFAULT_READ_DELAY, SimAdcFront, type SimAdcOptions } from './adc-front.ts';
import type { SupplyEventSpec } from './supply-events.ts';
import { WaveformFramer } from './waveform.ts';
import { SAMPLE_RATE_HZ, SyntheticLoad, XorShift32 } from './load.ts';
import type { ScenarioName } from './scenarios.ts';
import { RawHistory, SIM_CAPTURE_DEPTH, SimCapture, validCaptureRequest } from './capture.ts';

export { CAPTURE_AUTO_TRIGGER_SAMPLES, CAPTURE_CHUNK_PAIRS, SIM_CAPTURE_DEPTH } from './capture.ts';

/** major << 16 | minor << 8 | patch of the (simulated) gateware and firmware. */
export const SIM_VERSION = (0 << 16) | (1 << 8) | 0;
/** Samples the pipeline handles per step: large for speed, small while a capture collects samples. */
const BLOCK_SAMPLES = 65536;
const CAPTURE_BLOCK_SAMPLES = 4096;
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

/**
 * Where the device's frames go. `reserve`: bytes of the sink's own queue this frame must leave free (a
 * waveform frame leaves TX_RESERVE_BYTES, as the firmware leaves them in its ring), so a sink that fills
 * up refuses the stream first and still takes an identify, an ack or a window. Returns false to refuse.
 */
export type ByteSink = (bytes: Buffer, reserve: number) => boolean | void;

export interface SimulatedDeviceOptions {
  scenario?: ScenarioName;
  seed?: number;
  /** Pin appliances on or off by name (see load.ts). */
  pins?: Readonly<Record<string, boolean>>;
  /** The supply events instead of the scenario's (see load.ts). */
  supplyEvents?: readonly SupplyEventSpec[];
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
  /**
   * Where each boot's boot_id comes from (the firmware mixes a hardware entropy source, hal_boot_entropy):
   * a u32 per call. Default: the seeded stream, so that a run is reproducible from its seed; a host that starts
   * the simulator again on the same database must give a fresh source (serve does), or the new run repeats
   * the old boot's ids and indices and is stored as duplicates.
   */
  bootEntropy?: () => number;
  /** The ADC read path: shorted inputs, and which READ_DELAY settings read right (adc-front.ts). */
  adc?: SimAdcOptions;
}

/** USB full-speed bulk carries 1.2 MB/s at best; CDC-ACM on a soft core delivers about this much. */
export const DEFAULT_LINK_BYTES_PER_S = 1_000_000;
/** The device's transmit ring (the protocol's TX_RING): frames that find no room in it are dropped. */
export const TX_RING_BYTES = TX_RING.BYTES;
/** Room in the transmit ring the waveform stream leaves to every other frame (the protocol's TX_RESERVE). */
export const TX_RESERVE_BYTES = TX_RESERVE.STREAM_BYTES;
/** Capture chunks wait for room, leaving this much for live frames (the protocol's TX_RESERVE). */
const CAPTURE_RESERVE_BYTES = TX_RESERVE.CAPTURE_BYTES;

type Counters = {
  frames_dropped: number;
  fifo_overflows: number;
  samples_dropped: number;
  adc_errors: number;
  watchdog_resets: number;
};

export class SimulatedDevice {
  readonly load: SyntheticLoad;
  private readonly adc: SimAdcFront;
  readonly deviceId: bigint;
  readonly energyEveryWindows: number;
  private speedValue: number;

  private readonly rng: XorShift32;
  private readonly bootEntropy: () => number;
  private readonly bootConfigValue: DspConfig;
  private core!: DspCore;
  /** The latest configuration committed (in force from the next sample). */
  private staged!: DspConfig;
  /** The simulation has no flash: its calibration is the boot configuration's until a host sets one. */
  private calibrationSource: number = CALIBRATION_SOURCE.NO_FLASH;
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
  private readonly calibrated = { v: new Int32Array(BLOCK_SAMPLES), i: new Int32Array(BLOCK_SAMPLES) };
  private waveform = new WaveformFramer();
  private readonly ci = new Uint16Array(BLOCK_SAMPLES);
  private readonly history = new RawHistory();
  private capture: SimCapture | null = null;
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
    this.load = new SyntheticLoad({ scenario, seed, pins: options.pins, ...(options.supplyEvents ? { supplyEvents: options.supplyEvents } : {}) });
    this.adc = new SimAdcFront({ seed, ...options.adc });
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
    this.bootEntropy = options.bootEntropy ?? (() => this.rng.nextU32());
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
    // 0 reads as "no boot yet" to a host, and a reset must change the id: draw again (a few times at most).
    let id = 0;
    for (let draws = 0; id === 0 || id === this.bootIdValue; draws++) {
      if (draws === 64) throw new RangeError('bootEntropy keeps returning 0 or the previous boot_id');
      id = this.bootEntropy() >>> 0;
    }
    this.bootIdValue = id;
    this.core = new DspCore(this.bootConfigValue);
    this.waveform = new WaveformFramer();
    this.staged = { ...this.bootConfigValue };
    this.calibrationSource = CALIBRATION_SOURCE.NO_FLASH;
    this.adc.readDelay = DEFAULT_READ_DELAY;
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
    this.counters.adc_errors += this.adc.apply(cv, ci, count);
    this.history.remember(start, cv, ci, count);
    this.capture?.track(this.history, this.staged, this.core.configSeq, start, count);
    const windows = this.core.process(cv, ci, count, this.calibrated);
    const energies = this.core.lastEnergies;
    const waveform = this.waveform.push(this.calibrated.v, this.calibrated.i, count);
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
    for (const frame of waveform) this.send('waveform', { first_index: frame.first_index }, frame.pairs);
    if (this.capture?.chunks) this.pumpCapture();
    while (this.index >= this.nextStatusIndex) {
      this.sendStatus();
      this.nextStatusIndex += STATUS_INTERVAL_SAMPLES;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Frames out

  /** Encode with the next seq and put it on the link as of device time `at` (default: now). */
  private send<N extends FrameName>(name: N, fields: FrameFields<N>, pairs?: readonly TailRecordInput[], at = this.index): void {
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0;
    // A frame that cannot fit even at its smallest encoding (COBS adds ≥ 1 byte, the delimiter 1) is
    // dropped without being encoded: at thousands of windows a second most of them are.
    const layout = layoutOf(name);
    const rawBytes = layout.minFrameBytes + (layout.tail ? layout.tail.recordBytes * (pairs?.length ?? 0) : 0);
    const reserve = name === 'waveform' ? TX_RESERVE_BYTES : 0;
    if (this.sink && this.ringRoom(at) < rawBytes + 2 + reserve) {
      this.counters.frames_dropped = (this.counters.frames_dropped + 1) >>> 0;
      return;
    }
    this.transmit(encodeFrame(name, seq, fields, pairs), at, reserve);
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
  private transmit(bytes: Buffer, at: number, reserve: number): void {
    let accepted = false;
    if (this.sink && this.ringRoom(at) >= bytes.length) {
      accepted = this.sink(bytes, reserve) !== false;
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
      calibration_source: this.calibrationSource,
    });
  }

  private sendStatus(): void {
    this.send('status', {
      boot_id: this.bootIdValue,
      // u32 milliseconds wrap after 49.7 days, as on the device.
      uptime_ms: Math.floor(this.index / (SAMPLE_RATE_HZ / 1000)) >>> 0,
      ...this.counters,
      config_seq: this.core.configSeq,
      // One link, which takes every byte (a slow host costs dropped frames), and no UART line.
      link_stalls: 0,
      uart_rx_overruns: 0,
      // The model's stream has no FIFO to overflow: a slow link drops whole frames (frames_dropped).
      waveform_drops: 0,
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
          if (frame.name === 'cmd_calibrate') this.calibrationSource = CALIBRATION_SOURCE.HOST_UNSAVED;
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
      case 'cmd_adc_delay': {
        const want = frame.fields.read_delay;
        if (want !== ADC_DELAY.KEEP && want > ADC_DELAY.MAX) {
          this.ack(frame.seq, frame.type, ACK_STATUS.BAD_ARGS);
          return;
        }
        if (want !== ADC_DELAY.KEEP) this.adc.readDelay = want;
        // As the firmware: the PLL here settles at once.
        const value = this.adc.readDelay | ADC_DELAY.SETTLED_BIT | ((this.counters.adc_errors & 0xffff) << ADC_DELAY.ERRORS_SHIFT);
        this.ack(frame.seq, frame.type, ACK_STATUS.OK, value >>> 0);
        return;
      }
      // As the firmware: the ack goes out first, then the device starts again (a new boot_id).
      case 'cmd_reboot':
        this.ack(frame.seq, frame.type, ACK_STATUS.OK);
        this.reset();
        return;
      default:
        // A device-to-host frame type sent to the device.
        this.ack(frame.seq, frame.type, ACK_STATUS.UNKNOWN_COMMAND);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Captures

  private armCapture(frame: Frame<'cmd_capture'>): void {
    if (!validCaptureRequest(frame.fields)) {
      this.ack(frame.seq, frame.type, ACK_STATUS.BAD_ARGS);
      return;
    }
    // One capture at a time, until its last chunk has gone out (as the firmware does).
    if (this.capture) {
      this.ack(frame.seq, frame.type, ACK_STATUS.BUSY);
      return;
    }
    this.captureIdCounter = (this.captureIdCounter + 1) & 0xffff || 1;
    this.capture = new SimCapture(this.captureIdCounter, frame.fields, this.index);
    this.ack(frame.seq, frame.type, ACK_STATUS.OK, this.capture.id);
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
