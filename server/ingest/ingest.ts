// Ingest: decoded frames of one device link → store rows + live events.
//
// One Ingest per link. It needs the device's identify frame before it can book anything (device id, boot id,
// sample rate); windows that arrive before it are dropped, counted, and `requestIdentify` is called once so
// the link can ask for one. Physical quantities come from server/dsp/derive.ts with the device's stored scale;
// energy is booked by the store's exact ledger, never from the derived floats.
//
// Events (EventEmitter):
//   'window'   LiveWindow        a booked window in physical units (duplicates are not re-emitted)
//   'gap'      BookedGap         energy the windows did not carry, booked from an accumulator snapshot
//   'epoch'    {device, bootId}  the device reset (new boot_id): a new energy epoch
//   'identify' {device, frame}   the device introduced itself
//   'status'   {device, fields}  a status frame
//   'frame'    Frame             every frame, after it was handled (acks and capture chunks included)
//   'link'     LinkEvent         forwarded from the link with linkEvent()
//   'ingest-error' Error         a frame the store refused (counted; ingest goes on)
//   'duplicates' {device, warning} duplicates started (warning: a sentence) or stopped (null) to dominate
//   'pq'       PqBatch           10-minute power-quality aggregates and voltage events, queued for the store (startPq)

import { EventEmitter } from 'node:events';
import { deriveQuantities, type DeriveScale } from '../dsp/derive.ts';
import { LivePq, type PqBatch } from '../pq/live.ts';
import type { PqSettings } from '../pq/settings.ts';
import type { Frame, FrameFields } from '../protocol/codec.ts';
import type { BookedGap, CalibrationRegisters, Derived, DeviceRef, Store, WindowInput } from '../store/store.ts';

export type DeviceKind = 'hardware' | 'simulated' | 'rtl';


export interface LiveWindow {
  device: string;
  tMs: number;
  samples: number;
  vrms: number;
  irms: number;
  p: number;
  s: number;
  pf: number | null;
  n: number;
  freq_hz: number | null;
  v_dc: number | null;
  i_dc: number | null;
  energy_nwh: bigint;
  total_nwh: bigint;
  flags: number;
  config_seq: number;
  /** Host clock when the frame was handed to ingest, for latency measurement. */
  receivedAtMs: number;
}

export interface LinkEvent {
  device: string;
  state: 'connected' | 'disconnected' | 'reconnecting' | 'bootloader' | 'absent';
  detail: string;
}

export interface IngestOptions {
  store: Store;
  kind: DeviceKind;
  /** Front-end scale for a device the store has never seen (the sim knows its own; hardware uses defaults). */
  defaultScale: { kv: number; ki: number };
  /** Wall clock, injectable for tests and benchmarks. */
  now?: () => number;
  /** Called (once per missing identify) when frames arrive before the device introduced itself. */
  requestIdentify?: () => void;
  name?: string;
}

export interface IngestCounters {
  frames: number;
  windows: number;
  duplicates: number;
  gaps: number;
  epochs: number;
  /** Windows/energy frames dropped because no identify had arrived yet. */
  beforeIdentify: number;
  /** Frames the store refused (out-of-range values), with the last message. */
  errors: number;
  /**
   * Windows not booked because the database could not take them: writes failing (disk full) and the store's
   * memory queue full. Their energy is booked as a gap from the device's next snapshot once writes succeed.
   */
  dropped: number;
}

/**
 * Window frames per look at the share of duplicates. Most duplicates in a block means the device repeats windows
 * the store already has (a replay, or a simulator restarted with its old boot): stored nothing new, it must show.
 */
export const DUPLICATE_BLOCK_WINDOWS = 64;

export class Ingest extends EventEmitter {
  readonly counters: IngestCounters = { frames: 0, windows: 0, duplicates: 0, gaps: 0, epochs: 0, beforeIdentify: 0, errors: 0, dropped: 0 };
  lastError: string | null = null;
  /** Set while most recent window frames were duplicates (see DUPLICATE_BLOCK_WINDOWS), else null. */
  duplicateWarning: string | null = null;
  private blockWindows = 0;
  private blockDuplicates = 0;
  private readonly store: Store;
  private readonly now: () => number;
  private readonly options: IngestOptions;
  private device: DeviceRef | undefined;
  private scale: DeriveScale | undefined;
  private identifyRequested = false;
  /** The power-quality analysis, once started (startPq). */
  pq: LivePq | undefined;

  constructor(options: IngestOptions) {
    super();
    this.options = options;
    this.store = options.store;
    this.now = options.now ?? Date.now;
    // No analysis across a reset: the stream of the old boot ends here.
    this.on('epoch', () => this.pq?.restart());
  }

  /** The device this ingest books for, once identified (16 hex digits). */
  get deviceId(): string | undefined {
    return this.device?.hex;
  }

  get deviceRef(): DeviceRef | undefined {
    return this.device;
  }

  get kind(): DeviceKind {
    return this.options.kind;
  }

  /** Handle one decoded frame. Never throws for frame content: bad values are counted and reported. */
  handleFrame(frame: Frame, receivedAtMs = this.now()): void {
    this.counters.frames++;
    try {
      switch (frame.name) {
        case 'identify':
          this.onIdentify(frame.fields);
          break;
        case 'window':
          this.onWindow(frame.fields, receivedAtMs);
          break;
        case 'energy':
          this.onEnergy(frame.fields);
          break;
        case 'waveform':
          if (this.device) this.pq?.waveform(frame);
          break;
        case 'status':
          if (this.device && this.store.noteBoot(this.device, frame.fields.boot_id, this.now())) {
            this.counters.epochs++;
            this.lastBootId = frame.fields.boot_id;
            this.emit('epoch', { device: this.device.hex, bootId: frame.fields.boot_id });
          }
          this.emit('status', { device: this.device?.hex, fields: frame.fields });
          break;
        default:
          break;
      }
    } catch (err) {
      this.counters.errors++;
      this.lastError = (err as Error).message;
      if (this.listenerCount('ingest-error') > 0) this.emit('ingest-error', err);
    }
    this.emit('frame', frame);
  }

  /** Run the power-quality analysis of the device's waveform stream (server/pq/live.ts) from the next identify on. */
  startPq(settings: PqSettings): void {
    this.pq = new LivePq(settings, (batch) => this.onPq(batch));
  }

  /** Forward a link state change to the live listeners, tagged with this device. */
  linkEvent(state: LinkEvent['state'], detail: string): void {
    const ev: LinkEvent = { device: this.device?.hex ?? '', state, detail };
    this.emit('link', ev);
  }

  /** Store the calibration in force from now on (after the device accepted its registers). */
  setCalibration(registers: CalibrationRegisters, kv: number, ki: number): void {
    if (!this.device || !this.scale) throw new Error('no device identified yet');
    this.device = this.store.setCalibration(this.device, registers, kv, ki);
    this.scale = { ...this.scale, kv, ki };
    if (this.lastIdentify) this.pq?.configure(this.lastIdentify, kv, ki);
  }

  private onPq(batch: PqBatch): void {
    this.store.pqRows?.add(batch);
    this.emit('pq', batch);
  }

  private onIdentify(f: FrameFields<'identify'>): void {
    const previous = this.device;
    const hadEpochBoot = previous !== undefined;
    const { device_id, ...rest } = f;
    this.device = this.store.attachDevice(
      {
        deviceId: device_id,
        bootId: f.boot_id,
        fsNum: f.sample_rate_num,
        fsDen: f.sample_rate_den,
        board: f.board,
        adcPart: f.adc_part,
        identify: { device_id: device_id.toString(16).padStart(16, '0'), ...rest },
        calibration: { v_offset: f.v_offset, i_offset: f.i_offset, v_gain: f.v_gain, i_gain: f.i_gain, phase: f.phase },
        defaultKv: this.options.defaultScale.kv,
        defaultKi: this.options.defaultScale.ki,
        ...(this.options.name ? { name: this.options.name } : {}),
      },
      this.now(),
    );
    this.scale = { kv: this.device.kv, ki: this.device.ki, fs: f.sample_rate_num / f.sample_rate_den };
    this.identifyRequested = false;
    if (hadEpochBoot && this.lastBootId !== f.boot_id) {
      this.counters.epochs++;
      this.emit('epoch', { device: this.device.hex, bootId: f.boot_id });
    }
    this.lastBootId = f.boot_id;
    this.lastIdentify = f;
    this.pq?.configure(f, this.device.kv, this.device.ki);
    this.emit('identify', { device: this.device.hex, frame: f });
  }

  private lastBootId: number | undefined;
  private lastIdentify: FrameFields<'identify'> | undefined;

  private needIdentify(): void {
    this.counters.beforeIdentify++;
    if (!this.identifyRequested) {
      this.identifyRequested = true;
      this.options.requestIdentify?.();
    }
  }

  private onWindow(f: FrameFields<'window'>, receivedAtMs: number): void {
    if (!this.device || !this.scale) return this.needIdentify();
    if (!this.store.hasRoom) {
      this.counters.dropped++;
      return;
    }
    const derived: Derived = deriveQuantities(f, this.scale);
    const win: WindowInput = f;
    const booked = this.store.addWindow(this.device, win, derived, this.now());
    this.noteWindow(booked === undefined);
    if (!booked) {
      this.counters.duplicates++;
      this.pq?.window(f, null);
      return;
    }
    this.counters.windows++;
    this.pq?.window(f, { device: booked.device, epoch: booked.epoch, endIndex: booked.end_index, tMs: booked.t_end_ms, msPerSample: 1000 / this.scale.fs });
    if (this.listenerCount('window') === 0) return;
    const live: LiveWindow = {
      device: booked.device,
      tMs: booked.t_end_ms,
      samples: f.samples,
      vrms: derived.vrms ?? 0,
      irms: derived.irms ?? 0,
      p: derived.p ?? 0,
      s: derived.s ?? 0,
      pf: derived.pf,
      n: derived.n ?? 0,
      freq_hz: derived.freq_hz,
      v_dc: derived.v_dc,
      i_dc: derived.i_dc,
      energy_nwh: booked.energy_nwh,
      total_nwh: booked.total_nwh,
      flags: f.flags,
      config_seq: f.config_seq,
      receivedAtMs,
    };
    this.emit('window', live);
  }

  /** Count a window frame in the current block; at the block's end, say when duplicates start or stop to dominate. */
  private noteWindow(duplicate: boolean): void {
    this.blockWindows++;
    if (duplicate) this.blockDuplicates++;
    if (this.blockWindows < DUPLICATE_BLOCK_WINDOWS) return;
    const dominate = 2 * this.blockDuplicates > this.blockWindows;
    const share = this.blockDuplicates;
    this.blockWindows = 0;
    this.blockDuplicates = 0;
    if (dominate === (this.duplicateWarning !== null)) return;
    this.duplicateWarning = dominate
      ? `${share} of the last ${DUPLICATE_BLOCK_WINDOWS} windows were already stored and were not stored again: the device ` +
        'repeats windows of a boot that is already recorded (a replay, or a simulated device restarted with the ' +
        'same boot). Nothing new is recorded while this lasts.'
      : null;
    this.emit('duplicates', { device: this.device?.hex ?? '', warning: this.duplicateWarning });
  }

  private onEnergy(f: FrameFields<'energy'>): void {
    if (!this.device) return this.needIdentify();
    if (this.lastBootId !== undefined && f.boot_id !== this.lastBootId) {
      this.counters.epochs++;
      this.lastBootId = f.boot_id;
      this.emit('epoch', { device: this.device.hex, bootId: f.boot_id });
    }
    const gap: BookedGap | undefined = this.store.addEnergy(this.device, f, this.now());
    if (gap) {
      this.counters.gaps++;
      this.emit('gap', gap);
    }
  }

  /** Write everything queued now (shutdown, tests). */
  flush(): void {
    this.store.flush();
  }
}
