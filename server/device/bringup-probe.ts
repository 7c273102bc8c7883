// What `crabwatt bringup` asks of a device, over an open DeviceLink: identify, the ADC capture point
// (cmd_adc_delay), raw codes (a capture at identity calibration records code − 8192 exactly,
// docs/dsp.md), windows. Every wait ends on the answer it waits for or on a timeout that fails the step.

import { ACK_STATUS, ADC_DELAY, CAPTURE_TRIGGER } from '../protocol/definition.ts';
import type { Frame, FrameFields } from '../protocol/codec.ts';
import type { CommandName, DeviceLink } from './link.ts';
import { MID_SCALE } from './adc-judge.ts';

export class ProbeError extends Error {
  override name = 'ProbeError';
}

export interface AdcDelayState {
  readDelay: number;
  settled: boolean;
  /** The adc_errors counter's low 16 bits. */
  errors16: number;
}

export interface RawCodes {
  codes: [number, number][];
  /** Sample index of the first pair. */
  firstIndex: bigint;
  /** Host clock (ms) when the capture's last chunk arrived. */
  arrivedMs: number;
}

export type Calibration = Pick<FrameFields<'cmd_calibrate'>, 'v_offset' | 'i_offset' | 'v_gain' | 'i_gain' | 'phase'>;
export const IDENTITY_CALIBRATION: Calibration = { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0 };

export class Probe {
  constructor(
    private readonly link: DeviceLink,
    private readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  async command<N extends CommandName>(name: N, fields: FrameFields<N>): Promise<number> {
    const ack = await this.link.request(name, fields, { timeoutMs: this.timeoutMs });
    if (ack.fields.status !== ACK_STATUS.OK) {
      const status = Object.entries(ACK_STATUS).find(([, v]) => v === ack.fields.status)?.[0] ?? ack.fields.status;
      throw new ProbeError(`${name} was refused (${status})${ack.fields.status === ACK_STATUS.UNKNOWN_COMMAND
        ? ': the firmware is older than this host, update it with `crabwatt flash`' : ''}`);
    }
    return ack.fields.value;
  }

  /** Frames of one name while `during` runs and until `done` says enough (or the timeout). */
  async collect<N extends Frame['name']>(name: N, during: () => Promise<unknown>, done: (got: Frame<N>[]) => boolean,
    what: string, timeoutMs = this.timeoutMs): Promise<Frame<N>[]> {
    const got: Frame<N>[] = [];
    let wake: () => void = () => {};
    const onFrame = (f: Frame) => {
      if (f.name === name) {
        got.push(f as Frame<N>);
        wake();
      }
    };
    this.link.on('frame', onFrame);
    try {
      await during();
      const deadline = this.now() + timeoutMs;
      while (!done(got)) {
        const left = deadline - this.now();
        if (left <= 0) throw new ProbeError(`no ${what} within ${Math.round(timeoutMs)} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => { clearTimeout(timer); resolve(); };
        });
      }
      return got;
    } finally {
      this.link.off('frame', onFrame);
    }
  }

  async identify(): Promise<Frame<'identify'>> {
    const got = await this.collect('identify', () => this.command('cmd_identify', {}), (g) => g.length > 0, 'identify frame');
    return got.at(-1)!;
  }

  async status(): Promise<Frame<'status'>> {
    const got = await this.collect('status', () => this.command('cmd_status', {}), (g) => g.length > 0, 'status frame');
    return got.at(-1)!;
  }

  async adcDelay(readDelay: number = ADC_DELAY.KEEP): Promise<AdcDelayState> {
    const value = await this.command('cmd_adc_delay', { read_delay: readDelay });
    return {
      readDelay: value & ADC_DELAY.VALUE_MASK,
      settled: (value & ADC_DELAY.SETTLED_BIT) !== 0,
      errors16: value >>> ADC_DELAY.ERRORS_SHIFT,
    };
  }

  /** Sets READ_DELAY and waits for the read clock to get there (asking again until SETTLED). */
  async setAdcDelay(readDelay: number, maxPolls = 200): Promise<AdcDelayState> {
    let state = await this.adcDelay(readDelay);
    for (let polls = 0; !state.settled; polls++) {
      if (polls === maxPolls) throw new ProbeError(`ADC.STATUS.SETTLED never came after READ_DELAY ${readDelay}`);
      state = await this.adcDelay();
    }
    return state;
  }

  /** `pairs` consecutive raw code pairs (the calibration in force must be the identity). */
  async rawCodes(pairs: number): Promise<RawCodes> {
    let id = -1;
    const chunks = await this.collect('capture_chunk', async () => {
      id = await this.command('cmd_capture', {
        pairs, trigger: CAPTURE_TRIGGER.IMMEDIATE, level: 0, pretrigger: 0, decimation: 1, hysteresis: 0,
      });
    }, (got) => {
      const mine = got.filter((c) => c.fields.capture_id === id);
      return mine.length > 0 && mine.length === mine[0]!.fields.chunk_count;
    }, `capture of ${pairs} pairs`);
    const arrivedMs = this.now();
    const mine = chunks.filter((c) => c.fields.capture_id === id).sort((a, b) => a.fields.chunk_index - b.fields.chunk_index);
    const codes = mine.flatMap((c) => c.pairs.map((p): [number, number] => [p.v + MID_SCALE, p.i + MID_SCALE]));
    return { codes, firstIndex: mine[0]!.fields.first_index, arrivedMs };
  }

  /** `count` windows whose samples all come from `fromIndex` on (not older ones still queued on the link). */
  async windows(count: number, timeoutMs: number, fromIndex: bigint): Promise<Frame<'window'>[]> {
    const fresh = (g: Frame<'window'>[]) => g.filter((w) => w.fields.end_index - BigInt(w.fields.samples) >= fromIndex);
    return fresh(await this.collect('window', async () => {}, (g) => fresh(g).length >= count, `${count} window(s)`, timeoutMs));
  }
}
