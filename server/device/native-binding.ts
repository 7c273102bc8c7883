// serialport's native binding, with one repair: on Linux and macOS its read loop retries forever
// when read() returns 0 bytes (bindings-cpp issue #162). A tty returns 0 only after a hangup, i.e.
// when a USB-serial device is unplugged or a pseudo-terminal's other side closes, so the stock
// binding spins, growing memory, and never reports the disconnect that would let DeviceLink
// reconnect. This wrapper reads the same way (non-blocking read, wait on the binding's poller on
// EAGAIN) but turns end-of-file into a disconnect error, which @serialport/stream handles by closing
// the port with a DisconnectedError.
//
// Exports (stable): nativeBinding(): Promise<SerialBinding>.

import { read as fsRead } from 'node:fs';
import { promisify } from 'node:util';
import type { OpenOptions } from '@serialport/stream';

type SerialBinding = OpenOptions['binding'];
type PortBinding = Awaited<ReturnType<SerialBinding['open']>>;

/** What the Unix port bindings of bindings-cpp expose beyond the interface. */
interface UnixPortInternals {
  fd: number | null;
  poller: { once(event: 'readable', listener: (error?: Error | null) => void): unknown };
}

const readAsync = promisify(fsRead);

const canceled = (message: string) => Object.assign(new Error(message), { canceled: true });

function isUnixPort(port: PortBinding): port is PortBinding & UnixPortInternals {
  const p = port as Partial<UnixPortInternals>;
  return 'fd' in port && typeof p.poller?.once === 'function';
}

async function readUntilData(port: PortBinding & UnixPortInternals, buffer: Buffer, offset: number, length: number) {
  for (;;) {
    if (!port.isOpen || port.fd === null) throw canceled('Port is not open');
    try {
      const { bytesRead } = await readAsync(port.fd, buffer, offset, length, null);
      if (bytesRead === 0) {
        throw Object.assign(new Error('end of file on the serial port: the device hung up (unplugged?)'), {
          code: 'EOF',
          disconnect: true,
        });
      }
      return { bytesRead, buffer };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw error;
      if (!port.isOpen) throw canceled('Port is not open');
      await new Promise<void>((resolve, reject) => port.poller.once('readable', (e) => (e ? reject(e) : resolve())));
    }
  }
}

export async function nativeBinding(): Promise<SerialBinding> {
  // Imported lazily: it loads the native addon, which tests on MockBinding never need.
  const { SerialPort } = await import('serialport');
  const inner = SerialPort.binding as SerialBinding;
  return {
    list: () => inner.list(),
    open: async (options) => {
      const port = await inner.open(options);
      if (isUnixPort(port)) port.read = (buffer, offset, length) => readUntilData(port, buffer, offset, length);
      return port;
    },
  };
}
