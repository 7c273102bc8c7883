// A device session: one DeviceLink (a board's tty, or the simulated device behind serialport's MockBinding)
// feeding one Ingest. The simulated device goes through the same link, delimiter parser and decoder as a
// board, so the host code path is the same for both. Serve hands sessions to the API (server/api/wire.ts),
// which reads link state and counters, sends commands with `request`, and listens to `ingest`.

import { EventEmitter } from 'node:events';
import type { Frame, FrameFields } from '../protocol/codec.ts';
import { DeviceLink, type CommandName, type LinkCounters, type SerialBinding } from '../device/link.ts';
import { Ingest, type DeviceKind, type LinkEvent } from '../ingest/ingest.ts';
import type { SimulatedDevice } from '../sim/device.ts';
import { attachToMockBinding, type MockAttachment } from '../sim/transport.ts';
import type { Store } from '../store/store.ts';

export type LinkState = LinkEvent['state'];

/** Default front-end scale of the AD7357 wing (±400 V and ±32 A over ±8192 LSB) until calibrated. */
export const HARDWARE_DEFAULT_SCALE = { kv: 400 / 8192, ki: 32 / 8192 };

export interface SessionOptions {
  kind: DeviceKind;
  /** Port path, 'auto', or the MockBinding path of the simulated device. */
  path: string;
  store: Store;
  defaultScale: { kv: number; ki: number };
  binding?: SerialBinding;
  /** Keep looking for the board instead of failing when it is absent (a board in its bootloader). */
  waitForDevice?: boolean;
  initialState?: { state: LinkState; detail: string };
  name?: string;
  /** Shown for the simulated device, which has no real path. */
  label?: string;
  sim?: { device: SimulatedDevice; attachment: MockAttachment };
  /** Runs after the link has closed: stops what serves the port (the RTL twin's process). */
  onClose?: () => Promise<unknown>;
}

export class DeviceSession extends EventEmitter {
  readonly kind: DeviceKind;
  readonly path: string;
  readonly ingest: Ingest;
  readonly link: DeviceLink;
  state: LinkState;
  detail: string;
  readonly initialState: { state: LinkState; detail: string } | undefined;
  private readonly options: SessionOptions;

  constructor(options: SessionOptions) {
    super();
    this.options = options;
    this.kind = options.kind;
    this.path = options.label ?? options.path;
    this.initialState = options.initialState;
    this.state = options.initialState?.state ?? 'disconnected';
    this.detail = options.initialState?.detail ?? '';
    this.link = new DeviceLink({
      path: options.path,
      ...(options.binding ? { binding: options.binding } : {}),
      ...(options.waitForDevice ? { waitForDevice: true } : {}),
    });
    this.ingest = new Ingest({
      store: options.store,
      kind: options.kind,
      defaultScale: options.defaultScale,
      requestIdentify: () => {
        if (this.state === 'connected') this.link.request('cmd_identify', {}).catch(() => undefined);
      },
      ...(options.name ? { name: options.name } : {}),
    });
    this.link.on('frame', (frame) => this.ingest.handleFrame(frame));
    this.link.on('connected', ({ path }) => this.setState('connected', `connected on ${path}`));
    this.link.on('disconnected', ({ reason }) => this.setState('disconnected', reason));
    this.link.on('reconnecting', ({ attempt, delayMs }) =>
      this.setState('reconnecting', `reconnecting (attempt ${attempt}, next in ${Math.round(delayMs)} ms)`),
    );
    // The link recovers by itself; errors only inform.
    this.link.on('error', (err) => this.emit('link-error', err));
  }

  private setState(state: LinkState, detail: string): void {
    this.state = state;
    this.detail = detail;
    this.ingest.linkEvent(state, detail);
  }

  get counters(): LinkCounters {
    return this.link.counters;
  }

  request<N extends CommandName>(name: N, fields: FrameFields<N>, opts: { timeoutMs?: number } = {}): Promise<Frame<'ack'>> {
    return this.link.request(name, fields, opts);
  }

  /**
   * Open the link and, for the simulated device, start it. Listeners attached before this see the first
   * identify. (serve locks a board's port before it makes the session, so two hosts never read one device.)
   */
  async start(): Promise<void> {
    await this.link.open();
    this.options.sim?.device.start();
  }

  async close(): Promise<void> {
    this.options.sim?.device.stop();
    await this.link.close();
    this.options.sim?.attachment.detach();
    await this.options.onClose?.();
    this.setState('disconnected', 'stopped');
  }
}

/** The simulated device behind a MockBinding port, read through DeviceLink like a board. */
export function simulatedSession(store: Store, device: SimulatedDevice, scenario: string): DeviceSession {
  const path = `/dev/crabwatt-sim-${process.pid}-${device.deviceId.toString(16)}`;
  const attachment = attachToMockBinding(device, path);
  return new DeviceSession({
    kind: 'simulated',
    path,
    label: `sim:${scenario}`,
    store,
    binding: attachment.binding,
    defaultScale: { kv: device.kv, ki: device.ki },
    name: `simulated ${scenario}`,
    sim: { device, attachment },
  });
}
