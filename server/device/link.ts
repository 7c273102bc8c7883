// DeviceLink: one serial connection to a crabwatt device (or anything that speaks like one: the
// simulated device behind a pseudo-terminal or serialport's MockBinding, the RTL twin's pty).
//
// Exports (stable; the ingest, CLI and sim code against these):
//   new DeviceLink(options)            options.path: a port path (tty, pty, mock path) or 'auto'
//   link.open(): Promise<void>         connects (rejects with DeviceLinkError when it cannot, unless
//                                      options.waitForDevice, which keeps retrying with backoff)
//   link.close(): Promise<void>        stops for good; pending requests reject
//   link.send(name, fields): number    writes a host→device command, returns the seq it used
//   link.request(name, fields, {timeoutMs}): Promise<Frame<'ack'>>
//                                      resolves with the ack whose command_seq is the command's seq,
//                                      whatever its status (the caller reads ack.fields.status);
//                                      rejects with DeviceLinkError 'timeout' or 'disconnected';
//                                      one command is in flight at a time: a request waits for the
//                                      previous one to settle before it is sent
//   link.counters                      decoder counters (bytes: all bytes read) + reconnects
//   events: 'frame' (Frame), 'connected' ({path}), 'disconnected' ({path, reason}),
//           'reconnecting' ({attempt, delayMs}), 'error' (Error), 'decode-error' (DecodeFailure),
//           'gap' (SeqGap), 'reset' (DeviceReset)
//
// Bytes go port → BoundedDelimiterParser(0x00) → FrameDecoder.pushChunk, so no byte sequence can
// throw out of the link: damaged input only moves counters. After a connection is lost (unplug,
// close, read or write error) the link reconnects by itself with capped, jittered exponential
// backoff; with path 'auto' it looks for the board again each time, since it may come back under
// another /dev/ttyACM number. 'error' is emitted only while someone listens: the link recovers by
// itself, so an unheard error must not crash the process the way EventEmitter would.

import { EventEmitter } from 'node:events';
import { SerialPortStream, type OpenOptions } from '@serialport/stream';
import { encodeFrame, FrameDecoder, type DecodeFailure, type DecoderCounters, type DeviceReset, type Frame, type FrameFields, type SeqGap } from '../protocol/codec.ts';
import { FRAMES } from '../protocol/definition.ts';
import { MAX_ENCODED_FRAME_BYTES, layoutOf } from '../protocol/layout.ts';
import { BoundedDelimiterParser } from './bounded-delimiter.ts';
import { DEFAULT_ASK_IDENTITY_DELAYS, IdentityAsker, type AskIdentityDelays } from './ask-identity.ts';
import { listDevices, type DiscoveredDevice } from './discovery.ts';
import { nativeBinding } from './native-binding.ts';
import { notSerialMessage } from './serial-path.ts';

export type SerialBinding = OpenOptions['binding'];

/** Frames the host may send. */
export type CommandName = Extract<(typeof FRAMES)[number], { direction: 'host-to-device' }>['name'];

export type DeviceLinkErrorCode =
  | 'bootloader' // auto: only a board in foboot was found
  | 'not-found' // auto: no crabwatt board
  | 'open-failed' // the port exists but would not open (busy, permissions, vanished)
  | 'not-connected' // send() while no port is open
  | 'disconnected' // a request's port went away before its ack
  | 'timeout' // no ack in time
  | 'version' // the device speaks another protocol version: its frames are all rejected
  | 'closed'; // the link was closed

export class DeviceLinkError extends Error {
  readonly code: DeviceLinkErrorCode;
  constructor(code: DeviceLinkErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeviceLinkError';
    this.code = code;
  }
}

export interface BackoffOptions {
  /** First retry delay. */
  initialDelayMs: number;
  /** Cap of the delay. */
  maxDelayMs: number;
  factor: number;
  /** Each delay is scaled by a uniform factor in [1 − jitter, 1 + jitter]. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 250, maxDelayMs: 10_000, factor: 2, jitter: 0.2 };

export interface DeviceLinkOptions {
  /** A serial port path (tty, pty, or a MockBinding path) or 'auto' (first board with our VID:PID). */
  path: string;
  /** Serial binding; default serialport's native binding (with the end-of-file repair of
   *  native-binding.ts). Tests pass MockBinding. */
  binding?: SerialBinding;
  /** Irrelevant for USB CDC-ACM; the Feather UART runs at 3 Mbaud. */
  baudRate?: number;
  /** Device discovery for 'auto'; default listDevices(). */
  discover?: () => Promise<DiscoveredDevice[]>;
  /** Reconnect policy after a lost connection; false to stay down. */
  reconnect?: Partial<BackoffOptions> | false;
  /** open() retries with backoff until a device appears instead of rejecting. */
  waitForDevice?: boolean;
  /** Default timeout of request(). */
  requestTimeoutMs?: number;
  /** Ask with cmd_identify on every connect (again, backing off, until the identify frame comes), so a host
   * attaching to a running device learns who it is. */
  identifyOnConnect?: boolean;
  /** When to ask again while no identify frame has come (default: after 2 s, doubling up to 30 s). */
  identifyRetry?: AskIdentityDelays;
  /** Uniform [0, 1) source for the jitter; tests make it deterministic. */
  random?: () => number;
}

export interface LinkCounters extends DecoderCounters {
  /** Successful connections after the first. */
  reconnects: number;
}

export interface DeviceLinkEvents {
  frame: [Frame];
  connected: [{ path: string }];
  disconnected: [{ path: string; reason: string }];
  reconnecting: [{ attempt: number; delayMs: number }];
  error: [Error];
  'decode-error': [DecodeFailure];
  gap: [SeqGap];
  reset: [DeviceReset];
}

interface PendingRequest {
  type: number;
  resolve: (ack: Frame<'ack'>) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const SEQ_MODULUS = 2 ** 32;

function describeOpenError(path: string, error: Error): string {
  const m = error.message;
  if (/lock|busy|EBUSY|temporarily unavailable/i.test(m)) {
    return `${path} is in use by another process (another crabwatt serve?): ${m}`;
  }
  if (/EACCES|permission/i.test(m)) {
    return `no permission to open ${path}: add your user to the dialout group or install the udev rule (${m})`;
  }
  if (/ENOENT|no such file|does not exist/i.test(m)) return `${path} does not exist (unplugged?): ${m}`;
  // serialport's tcsetattr/ioctl on a regular file or /dev/null: "Inappropriate ioctl for device … baud rate".
  if (/ENOTTY|inappropriate ioctl/i.test(m)) return notSerialMessage(path, 'it does not answer terminal requests');
  return `cannot open ${path}: ${m}`;
}

export class DeviceLink extends EventEmitter<DeviceLinkEvents> {
  private readonly options: DeviceLinkOptions;
  private readonly backoff: BackoffOptions | false;
  private readonly decoder: FrameDecoder;
  private port: SerialPortStream | undefined;
  private portPath: string | undefined;
  private parserOversize = 0;
  /** Every byte read from any port of this link, also those the parser dropped. */
  private bytesRead = 0;
  private versionReported = false;
  private reconnects = 0;
  private everConnected = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private nextSeq = 0;
  private readonly pending = new Map<number, PendingRequest>();
  /** Settles when the last command requested so far has been acked or has failed. */
  private commandTail: Promise<unknown> = Promise.resolve();
  /** Repeats cmd_identify on a connection until the device's identify frame comes. */
  private readonly identity: IdentityAsker;
  /** open() with waitForDevice, until the first connection. */
  private openWaiter: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor(options: DeviceLinkOptions) {
    super();
    if (!options.path) throw new TypeError('DeviceLink needs a path, or "auto"');
    this.options = options;
    this.identity = new IdentityAsker(
      () => (this.port?.isOpen ? this.request('cmd_identify', {}) : Promise.resolve()),
      (error) => this.emitError(error),
      options.identifyRetry ?? DEFAULT_ASK_IDENTITY_DELAYS,
    );
    this.backoff = options.reconnect === false ? false : { ...DEFAULT_BACKOFF, ...options.reconnect };
    this.decoder = new FrameDecoder({
      onError: (failure) => {
        this.emit('decode-error', failure);
        // Unlike noise, a version mismatch rejects every frame until someone acts: say it once per connection.
        if (failure.error === 'version' && !this.versionReported) {
          this.versionReported = true;
          this.emitError(new DeviceLinkError('version', `${this.portPath}: ${failure.detail}`));
        }
      },
      onGap: (gap) => this.emit('gap', gap),
      onReset: (reset) => this.emit('reset', reset),
    });
  }

  get counters(): LinkCounters {
    const c = this.decoder.counters;
    return { ...c, oversize: c.oversize + this.parserOversize, bytes: this.bytesRead, reconnects: this.reconnects };
  }

  get connected(): boolean {
    return this.port?.isOpen ?? false;
  }

  /** Connected, and still asking the device who it is (no identify frame yet on this connection). */
  get identifying(): boolean {
    return this.identity.asking;
  }

  /** The port currently open, if any. */
  get path(): string | undefined {
    return this.port ? this.portPath : undefined;
  }

  async open(): Promise<void> {
    if (this.closed) throw new DeviceLinkError('closed', 'this DeviceLink was closed; make a new one');
    if (this.port || this.retryTimer || this.openWaiter) throw new DeviceLinkError('open-failed', 'open() was already called');
    if (!this.options.waitForDevice) {
      await this.connect();
      return;
    }
    await new Promise<void>((resolve, reject) => {
      this.openWaiter = { resolve, reject };
      this.connect().catch((error: unknown) => {
        this.emitError(error);
        this.scheduleReconnect();
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.identity.stop();
    this.openWaiter?.reject(new DeviceLinkError('closed', 'the device link was closed before a device appeared'));
    this.openWaiter = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.failPending(new DeviceLinkError('closed', 'the device link was closed'));
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) {
      await new Promise<void>((resolve) => port.close(() => resolve()));
    }
    port?.removeAllListeners();
    port?.on('error', () => {}); // late errors of a port we no longer want
  }

  send<N extends CommandName>(name: N, fields: FrameFields<N>): number {
    const port = this.port;
    if (!port?.isOpen) throw new DeviceLinkError('not-connected', `cannot send ${name}: no device connected`);
    if (layoutOf(name).def.direction !== 'host-to-device') throw new TypeError(`${name} is not a host command`);
    const seq = this.nextSeq;
    const bytes = encodeFrame(name, seq, fields); // throws on bad values before the seq is used
    this.nextSeq = (seq + 1) % SEQ_MODULUS;
    port.write(bytes, (error) => {
      if (error) this.emitError(new DeviceLinkError('disconnected', `writing ${name} failed: ${error.message}`, { cause: error }));
    });
    return seq;
  }

  request<N extends CommandName>(name: N, fields: FrameFields<N>, options: { timeoutMs?: number } = {}): Promise<Frame<'ack'>> {
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 1000;
    // One command in flight at a time: the device's receive FIFO is 64 bytes and the firmware answers a
    // command in about the time its bytes take on a UART, so a burst of back-to-back commands can outrun it
    // (measured in the RTL twin). Each waits for the previous one's ack (or failure); its timeout starts
    // when it is sent.
    const run = (): Promise<Frame<'ack'>> =>
      new Promise((resolve, reject) => {
        if (this.closed) {
          reject(new DeviceLinkError('closed', `cannot send ${name}: the device link was closed`));
          return;
        }
        let seq: number;
        try {
          seq = this.send(name, fields);
        } catch (error) {
          reject(error);
          return;
        }
        const timer = setTimeout(() => {
          this.pending.delete(seq);
          reject(new DeviceLinkError('timeout', `no ack for ${name} (seq ${seq}) within ${timeoutMs} ms`));
        }, timeoutMs);
        this.pending.set(seq, { type: layoutOf(name).type, resolve, reject, timer });
      });
    const result = this.commandTail.then(run, run);
    this.commandTail = result.catch(() => undefined);
    return result;
  }

  // -------------------------------------------------------------------------------------------

  private emitError(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error instanceof Error ? error : new Error(String(error)));
  }

  private async resolvePath(): Promise<string> {
    if (this.options.path !== 'auto') return this.options.path;
    const devices = await (this.options.discover ?? listDevices)();
    const board = devices.find((d) => d.mode === 'crabwatt' && d.path !== null);
    if (board) return board.stablePath ?? board.path!;
    if (devices.some((d) => d.mode === 'bootloader')) {
      throw new DeviceLinkError(
        'bootloader',
        'the crabwatt board is in bootloader mode (USB 1209:5af0, foboot DFU): flash the firmware with ' +
          '`crabwatt flash crabwatt.dfu` (dfu-util -a 0 -D), or start the installed bitstream with `dfu-util -a 0 -e` (r0.1 stays in DFU until then; r0.2 also starts it when replugged without the button)',
      );
    }
    const others = devices.filter((d) => d.path).map((d) => d.path).join(', ');
    throw new DeviceLinkError(
      'not-found',
      'no crabwatt board found (USB 1209:5af1)' +
        (others ? `; serial ports present: ${others} (name one with --device PATH)` : '') +
        '; use --device sim to run without hardware',
    );
  }

  private async connect(): Promise<void> {
    const path = await this.resolvePath();
    const binding = this.options.binding ?? (await nativeBinding());
    const port = new SerialPortStream({ binding, path, baudRate: this.options.baudRate ?? 3_000_000, autoOpen: false });
    // Registered before open so an early failure is never an unhandled 'error' event.
    port.on('error', (error) => this.onPortTrouble(port, error));
    await new Promise<void>((resolve, reject) => {
      port.open((error) => {
        if (error) reject(new DeviceLinkError('open-failed', describeOpenError(path, error), { cause: error }));
        else resolve();
      });
    });
    if (this.closed) {
      port.close();
      throw new DeviceLinkError('closed', 'the device link was closed while opening');
    }
    const parser = new BoundedDelimiterParser({
      delimiter: [0],
      maxChunkBytes: MAX_ENCODED_FRAME_BYTES,
      onOversize: () => {
        this.parserOversize++;
        this.decoder.chunkSkipped();
        this.emit('decode-error', { ok: false, error: 'oversize', detail: `more than ${MAX_ENCODED_FRAME_BYTES} bytes without a delimiter, dropped` });
      },
    });
    parser.on('data', (chunk: Buffer) => {
      for (const frame of this.decoder.pushChunk(chunk)) this.deliver(frame);
    });
    port.on('data', (bytes: Buffer) => {
      this.bytesRead += bytes.length;
    });
    port.pipe(parser);
    port.on('close', (error: Error | null) => this.onPortGone(port, error ? error.message : 'port closed'));
    // A read of zero bytes ends the stream without closing the port: that is how a pseudo-terminal
    // reports its other side closing (and some drivers a vanished device). Release the fd ourselves.
    port.on('end', () => {
      this.onPortGone(port, 'the other end closed the connection');
      if (port.isOpen) port.close();
    });

    this.port = port;
    this.portPath = path;
    this.decoder.restart();
    this.versionReported = false;
    if (this.everConnected) this.reconnects++;
    this.everConnected = true;
    this.attempt = 0;
    this.emit('connected', { path });
    this.openWaiter?.resolve();
    this.openWaiter = undefined;
    if (this.options.identifyOnConnect ?? true) this.identity.start();
  }

  private deliver(frame: Frame): void {
    if (frame.name === 'identify') this.identity.identified();
    if (frame.name === 'ack') {
      const pending = this.pending.get(frame.fields.command_seq);
      if (pending && pending.type === frame.fields.command_type) {
        this.pending.delete(frame.fields.command_seq);
        clearTimeout(pending.timer);
        pending.resolve(frame);
      }
    }
    this.emit('frame', frame);
  }

  private onPortTrouble(port: SerialPortStream, error: Error): void {
    this.emitError(error);
    // A failed read or write on an open port closes it and 'close' follows; a port that is not
    // open any more will not say 'close' again, so treat it as gone here.
    if (port === this.port && !port.isOpen) this.onPortGone(port, error.message);
  }

  private onPortGone(port: SerialPortStream, reason: string): void {
    if (port !== this.port) return;
    this.port = undefined;
    this.identity.stop();
    port.unpipe();
    port.removeAllListeners('close');
    port.removeAllListeners('end');
    this.decoder.discardPartial();
    this.failPending(new DeviceLinkError('disconnected', `${this.portPath} went away before the ack: ${reason}`));
    this.emit('disconnected', { path: this.portPath ?? this.options.path, reason });
    if (!this.closed) this.scheduleReconnect();
  }

  private failPending(error: DeviceLinkError): void {
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer || !this.backoff) return;
    const b = this.backoff;
    this.attempt++;
    const base = Math.min(b.maxDelayMs, b.initialDelayMs * b.factor ** (this.attempt - 1));
    const random = this.options.random ?? Math.random;
    const delayMs = Math.round(Math.min(b.maxDelayMs, base * (1 - b.jitter + 2 * b.jitter * random())));
    this.emit('reconnecting', { attempt: this.attempt, delayMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch((error: unknown) => {
        this.emitError(error);
        this.scheduleReconnect();
      });
    }, delayMs);
  }
}
