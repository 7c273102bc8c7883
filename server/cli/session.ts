// A device session: one device source (hardware link, simulated device, RTL twin) feeding one Ingest.
// This is the seam between `serve` and the API: the API reads link state and counters here, sends commands
// through `send`, and listens to `ingest` for live windows.

import { EventEmitter } from 'node:events';
import { FrameDecoder, encodeFrame, type DecoderCounters, type Frame, type FrameFields } from '../protocol/codec.ts';
import type { FrameName } from '../protocol/definition.ts';
import { Ingest, type DeviceKind, type LinkEvent } from '../ingest/ingest.ts';
import type { SimulatedDevice } from '../sim/device.ts';
import type { Store } from '../store/store.ts';

export type LinkState = LinkEvent['state'];

export interface SessionCounters extends DecoderCounters {
  reconnects: number;
}

export interface DeviceSession extends EventEmitter {
  readonly kind: DeviceKind;
  /** Serial path, or `sim:<scenario>` for the in-process simulated device. */
  readonly path: string;
  readonly ingest: Ingest;
  readonly state: LinkState;
  readonly detail: string;
  readonly counters: SessionCounters;
  /** Send a host→device command; resolves with the ack frame (rejects after timeoutMs without one). */
  request<N extends FrameName>(name: N, fields: FrameFields<N>, opts?: { timeoutMs?: number }): Promise<Frame<'ack'>>;
  /** Begin reading the device; listeners attached before this see the first identify. */
  start(): void;
  close(): Promise<void>;
}

/**
 * The simulated device, in process: its bytes go through the real FrameDecoder (COBS, CRC, sequence
 * tracking) into ingest, and commands go back as encoded frames, as over a port.
 */
export class SimSession extends EventEmitter implements DeviceSession {
  readonly kind: DeviceKind = 'simulated';
  readonly path: string;
  readonly ingest: Ingest;
  state: LinkState = 'disconnected';
  detail = 'simulated device (no board attached)';
  private readonly decoder = new FrameDecoder();
  private readonly sim: SimulatedDevice;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (f: Frame<'ack'>) => void; timer: NodeJS.Timeout }>();

  constructor(sim: SimulatedDevice, store: Store, scenario: string) {
    super();
    this.sim = sim;
    this.path = `sim:${scenario}`;
    this.ingest = new Ingest({
      store,
      kind: 'simulated',
      defaultScale: { kv: sim.kv, ki: sim.ki },
      requestIdentify: () => this.sendCommand('cmd_identify', {}),
      name: `simulated ${scenario}`,
    });
    sim.setOutput((bytes) => {
      const now = Date.now();
      for (const frame of this.decoder.push(bytes)) this.onFrame(frame, now);
      return true;
    });
  }

  start(): void {
    this.state = 'connected';
    this.ingest.linkEvent('connected', this.detail);
    this.sendCommand('cmd_identify', {});
    this.sim.start();
  }

  private onFrame(frame: Frame, receivedAtMs: number): void {
    this.ingest.handleFrame(frame, receivedAtMs);
    if (frame.name === 'ack') {
      const waiter = this.pending.get(frame.fields.command_seq);
      if (waiter) {
        clearTimeout(waiter.timer);
        this.pending.delete(frame.fields.command_seq);
        waiter.resolve(frame);
      }
    }
  }

  private sendCommand<N extends FrameName>(name: N, fields: FrameFields<N>): number {
    const seq = this.seq;
    this.seq = (this.seq + 1) >>> 0;
    this.sim.receive(encodeFrame(name, seq, fields));
    return seq;
  }

  get counters(): SessionCounters {
    return { ...this.decoder.counters, reconnects: 0 };
  }

  request<N extends FrameName>(name: N, fields: FrameFields<N>, opts: { timeoutMs?: number } = {}): Promise<Frame<'ack'>> {
    const timeoutMs = opts.timeoutMs ?? 2000;
    return new Promise((resolve, reject) => {
      const seq = this.seq;
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`no ack for ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(seq, { resolve, timer });
      this.sendCommand(name, fields);
    });
  }

  async close(): Promise<void> {
    this.sim.stop();
    this.sim.setOutput(null);
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    this.state = 'disconnected';
    this.ingest.linkEvent('disconnected', 'stopped');
  }
}
