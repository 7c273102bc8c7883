// The calibration of one device link: what the host stored is what the device runs with.
//
// A write (PUT) is checked against server/dsp/limits.ts, pushed to the device, and stored only once the device
// accepted it; if the device gives no answer or the store fails, the previous registers are pushed back, so
// host and device keep the previous calibration. A device that resets comes back at the gateware's reset
// values (gain 1.0): every identify whose registers differ from the stored ones makes the keeper push them again.
// configSeq says from which device configuration on (in the current boot) the windows carry the stored
// calibration; null while that is not confirmed.

import type { EventEmitter } from 'node:events';
import { checkFrontEndScale } from '../dsp/limits.ts';
import type { FrameFields } from '../protocol/codec.ts';
import type { CalibrationRegisters } from '../store/store.ts';
import { DeviceCommandError, type Calibration } from './deps.ts';

/** What the keeper needs of an Ingest: its identify events, the stored calibration, and storing a new one. */
export interface CalibrationIngest extends EventEmitter {
  readonly deviceRef: { readonly kv: number; readonly ki: number; readonly calibration: CalibrationRegisters | null } | undefined;
  setCalibration(registers: CalibrationRegisters, kv: number, ki: number): void;
}

/** Sends cmd_calibrate; resolves with the device's config_seq, rejects with DeviceCommandError. */
export type SendCalibrate = (registers: CalibrationRegisters) => Promise<number>;

const REGISTERS = ['v_offset', 'i_offset', 'v_gain', 'i_gain', 'phase'] as const;

function registersOf(x: CalibrationRegisters): CalibrationRegisters {
  return { v_offset: x.v_offset, i_offset: x.i_offset, v_gain: x.v_gain, i_gain: x.i_gain, phase: x.phase };
}

function sameRegisters(a: CalibrationRegisters | null, b: CalibrationRegisters | null): boolean {
  return a !== null && b !== null && REGISTERS.every((k) => a[k] === b[k]);
}

export class CalibrationKeeper {
  /** The device configuration from which the stored registers are in force in this boot; null: not confirmed. */
  configSeq: number | null = null;
  /** The registers the device runs with as far as the host knows (identify or ack); null: unknown. */
  private deviceRegisters: CalibrationRegisters | null = null;
  private bootId: number | undefined;
  /** One push at a time, in order: a write and a re-push never interleave. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ingest: CalibrationIngest,
    private readonly send: SendCalibrate,
    private readonly log: (message: string) => void = () => undefined,
  ) {
    ingest.on('identify', this.onIdentify);
  }

  close(): void {
    this.ingest.off('identify', this.onIdentify);
  }

  /** The stored calibration (registers and scale), or undefined before the device identified itself. */
  current(): Calibration | undefined {
    const ref = this.ingest.deviceRef;
    if (!ref?.calibration) return undefined;
    return { ...registersOf(ref.calibration), kv: ref.kv, ki: ref.ki };
  }

  /**
   * Write a calibration: refused (ScaleRangeError, 422) outside the limits; pushed, then stored. Resolves with the
   * config_seq from which it is in force; on any failure the previous calibration stays in force.
   */
  set(cal: Calibration): Promise<number> {
    checkFrontEndScale(cal.kv, cal.ki);
    return this.serial(async () => {
      const previous = this.ingest.deviceRef?.calibration ?? null;
      const registers = registersOf(cal);
      let seq: number;
      try {
        seq = await this.send(registers);
      } catch (err) {
        // A refusal (422) or busy device (409) kept its registers; with no answer it may have taken them.
        const kept = err instanceof DeviceCommandError && (err.statusCode === 409 || err.statusCode === 422);
        if (!kept) await this.restore(previous);
        throw err;
      }
      this.deviceRegisters = registers;
      try {
        this.ingest.setCalibration(registers, cal.kv, cal.ki);
      } catch (err) {
        await this.restore(previous);
        throw new DeviceCommandError(
          `the device took the calibration but it could not be stored (${(err as Error).message}); the previous one was put back: retry`,
          503,
        );
      }
      this.configSeq = seq;
      return seq;
    });
  }

  private readonly onIdentify = ({ frame }: { frame: FrameFields<'identify'> }): void => {
    if (frame.boot_id !== this.bootId) {
      // A new boot numbers its configurations from 0 again.
      this.bootId = frame.boot_id;
      this.configSeq = null;
    }
    this.deviceRegisters = registersOf(frame);
    const stored = this.ingest.deviceRef?.calibration ?? null;
    if (sameRegisters(stored, this.deviceRegisters)) {
      this.configSeq ??= frame.config_seq;
      return;
    }
    this.configSeq = null;
    this.serial(() => this.pushStored()).catch((err: Error) => this.log(`calibration: could not push the stored registers: ${err.message}`));
  };

  /** Push the stored registers unless the device is known to run with them already. */
  private async pushStored(): Promise<void> {
    const stored = this.ingest.deviceRef?.calibration ?? null;
    if (stored === null || sameRegisters(stored, this.deviceRegisters)) return;
    this.deviceRegisters = null;
    const seq = await this.send(registersOf(stored));
    this.deviceRegisters = registersOf(stored);
    this.configSeq = seq;
    this.log(`calibration: pushed the stored registers to the device (config_seq ${seq})`);
  }

  /** Best effort: put the previous registers back; if that fails too, the next identify pushes them. */
  private async restore(previous: CalibrationRegisters | null): Promise<void> {
    this.deviceRegisters = null;
    this.configSeq = null;
    if (previous === null) return;
    try {
      this.configSeq = await this.send(previous);
      this.deviceRegisters = previous;
    } catch (err) {
      this.log(`calibration: could not put the previous registers back (${(err as Error).message}); pushed again at the next identify`);
    }
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }
}
