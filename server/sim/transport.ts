// Two ways to put the simulated device behind a serial port, so that the host reaches it through the
// same code as hardware (serial port → delimiter → FrameDecoder → link → ingest):
//
//   attachToMockBinding(sim, path)  an in-process @serialport/binding-mock port. Use the returned
//                                   `binding` wherever a serialport binding is injected (SerialPortStream,
//                                   DeviceLink): for `path` it opens a MockBinding port whose reads are the
//                                   device's bytes and whose writes reach the device's command decoder;
//                                   other paths go to MockBinding unchanged.
//   startPtySim(sim)                a real pseudo-terminal pair made by socat; the device holds one end
//                                   and the host opens `path`, a /dev/pts/N tty, like /dev/ttyACM0.
//
// In both, a frame that the link cannot take (port closed, host not reading) is dropped by the device
// and counted in status.frames_dropped, as the firmware does with a full USB endpoint.

import { spawn, type ChildProcess } from 'node:child_process';
import { SerialPort, SerialPortMock } from 'serialport';
import { USB_PID_CRABWATT, USB_VID } from '../protocol/definition.ts';
import type { SimulatedDevice } from './device.ts';

// The MockBinding reached through `serialport` (its CommonJS build): the ESM build of
// @serialport/binding-mock is a second instance with its own port table and ships no ESM typings.
// Hosts open our ports through the `binding` returned below, which delegates to this instance.
const MockBinding = SerialPortMock.binding;
type MockBindingInterface = typeof MockBinding;
type MockPortBinding = Awaited<ReturnType<MockBindingInterface['open']>>;
type MockOpenOptions = Parameters<MockBindingInterface['open']>[0];

const hex4 = (n: number) => n.toString(16).padStart(4, '0');

export interface MockAttachment {
  readonly path: string;
  /** The binding to open `path` with (a MockBinding that routes `path` to the device). */
  readonly binding: MockBindingInterface;
  /** Disconnect the device from the port (the port itself stays until MockBinding.reset()). */
  detach(): void;
}

/**
 * Create a MockBinding port at `path` served by `sim`. The port reports our USB VID:PID, so that
 * discovery over MockBinding.list() sees a crabwatt device. The device is not started here: call
 * sim.start() for paced output, or sim.advance() in tests.
 */
export function attachToMockBinding(sim: SimulatedDevice, path: string): MockAttachment {
  if (typeof path !== 'string' || path.length === 0) throw new TypeError('attachToMockBinding: path must be a non-empty string');
  MockBinding.createPort(path, {
    echo: false,
    record: false,
    manufacturer: 'crabwatt (simulated)',
    vendorId: hex4(USB_VID),
    productId: hex4(USB_PID_CRABWATT),
  });
  let attached = true;
  let open: MockPortBinding | null = null;

  const connect = (port: MockPortBinding): void => {
    open = port;
    const write = port.write.bind(port);
    // The binding's write resolves once the bytes are "on the wire"; they then reach the device,
    // after the host's write has completed, as with a real port.
    port.write = async (buffer: Buffer): Promise<void> => {
      await write(buffer);
      if (attached && open === port) sim.receive(buffer);
    };
    const close = port.close.bind(port);
    port.close = async (): Promise<void> => {
      if (open === port) {
        open = null;
        sim.setOutput(null);
      }
      await close();
    };
    sim.setOutput((bytes) => {
      if (!attached || open !== port || !port.isOpen) return false;
      port.emitData(bytes);
      return true;
    });
    sim.hostConnected();
  };

  const binding: MockBindingInterface = {
    ...MockBinding,
    async open(options: MockOpenOptions) {
      const port = await MockBinding.open(options);
      if (attached && options.path === path) connect(port);
      return port;
    },
  };

  return {
    path,
    binding,
    detach() {
      attached = false;
      open = null;
      sim.setOutput(null);
    },
  };
}

export interface PtySim {
  /** The tty the host opens (like /dev/ttyACM0). */
  readonly path: string;
  /** The tty the device holds. */
  readonly devicePath: string;
  close(): Promise<void>;
}

export class PtyUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PtyUnavailableError';
  }
}

export interface PtySimOptions {
  /** socat executable (default: `socat` on PATH). */
  socat?: string;
  /** How long to wait for socat to report its two ptys, ms. */
  startTimeoutMs?: number;
  /** Bytes the device may have queued towards the host before it drops frames. */
  maxQueuedBytes?: number;
}

/**
 * Start `socat -d -d pty,raw,echo=0 pty,raw,echo=0`, give the first pty to the device and return the
 * second for the host. The device is not started here (sim.start() paces it).
 */
export async function startPtySim(sim: SimulatedDevice, options: PtySimOptions = {}): Promise<PtySim> {
  const socatPath = options.socat ?? 'socat';
  const maxQueued = options.maxQueuedBytes ?? 64 * 1024;
  const child = spawn(socatPath, ['-d', '-d', 'pty,raw,echo=0', 'pty,raw,echo=0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let ptys: [string, string];
  try {
    ptys = await socatPtys(child, socatPath, options.startTimeoutMs ?? 5000);
  } catch (error) {
    child.kill();
    throw error;
  }
  // socat keeps logging to stderr now and then; a pipe nobody reads would eventually block it.
  child.stderr?.on('data', () => undefined);
  const [devicePath, hostPath] = ptys;
  const port = new SerialPort({ path: devicePath, baudRate: 115200, autoOpen: false });
  try {
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  } catch (error) {
    child.kill();
    throw new PtyUnavailableError(`could not open the device side of the pty pair (${devicePath}): ${(error as Error).message}`);
  }
  let closed = false;
  port.on('data', (bytes: Buffer) => sim.receive(bytes));
  // A pty whose far side nobody reads fills up; beyond that the device drops frames, never memory. The
  // waveform stream stops `reserve` bytes short of the limit, so a slow host still gets the answers to
  // its commands (an identify, an ack) and the windows: the frames behind them are not all stream.
  port.on('error', () => undefined);
  sim.setOutput((bytes, reserve) => {
    if (closed || !port.isOpen || port.writableLength + reserve > maxQueued) return false;
    port.write(bytes);
    return true;
  });
  // No identify on connection here: the device cannot see the host open its end, and opening a
  // serial port flushes what was queued before. The host asks with cmd_identify, as with hardware.
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    path: hostPath,
    devicePath,
    async close() {
      if (closed) return;
      closed = true;
      sim.setOutput(null);
      if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
      child.kill();
      await exited;
    },
  };
}

/** Read socat's stderr until it has announced both ptys ("N PTY is /dev/pts/7"). */
function socatPtys(child: ChildProcess, socatPath: string, timeoutMs: number): Promise<[string, string]> {
  return new Promise((resolve, reject) => {
    let text = '';
    const paths: string[] = [];
    const finish = (error: Error | null) => {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('error', onError);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve([paths[0]!, paths[1]!]);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      for (const match of text.matchAll(/PTY is (\S+)/g)) {
        if (!paths.includes(match[1]!)) paths.push(match[1]!);
      }
      if (paths.length >= 2) finish(null);
    };
    const onError = (error: NodeJS.ErrnoException) => {
      finish(new PtyUnavailableError(
        error.code === 'ENOENT'
          ? `'${socatPath}' was not found: install socat (Debian: apt-get install socat) or use the in-process MockBinding simulation`
          : `could not start ${socatPath}: ${error.message}`,
      ));
    };
    const onExit = (code: number | null) => {
      finish(new PtyUnavailableError(`${socatPath} exited (code ${code}) before creating the ptys: ${text.trim()}`));
    };
    const timer = setTimeout(() => {
      finish(new PtyUnavailableError(`${socatPath} did not report two ptys within ${timeoutMs} ms: ${text.trim()}`));
    }, timeoutMs);
    child.stderr?.on('data', onData);
    child.once('error', onError);
    child.once('exit', onExit);
  });
}
