// DeviceLink through a real pseudo-terminal and serialport's native binding: the path the
// simulated device and the RTL twin use. A small Python helper owns the pty master; it writes what
// the test tells it to and reports what the host wrote. Closing the master is the unplug.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceLink } from '../../server/device/link.ts';
import { FrameDecoder, encodeFrame, type Frame } from '../../server/protocol/codec.ts';

const PTY_DEVICE = `
import os, select, tty
master, slave = os.openpty()
tty.setraw(slave)
print(os.ttyname(slave), flush=True)
os.close(slave)
# The host's termios calls on the slave can wake select() on the master with nothing to read.
os.set_blocking(master, False)
pending = b''
while True:
    r, _, _ = select.select([0, master], [], [])
    if 0 in r:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b'\\n')
        for line in lines:
            if line == b'unplug':
                os.close(master)
                master = None
                print('unplugged', flush=True)
            elif master is not None:
                os.write(master, bytes.fromhex(line.split()[1].decode()))
        if master is None:
            break
    elif master in r:
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, OSError):
            continue
        print('recv', data.hex(), flush=True)
`;

const hasPython = spawnSync('python3', ['-c', 'import pty'], { stdio: 'ignore' }).status === 0;

class PtyDevice {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly path: Promise<string>;
  readonly commands: Frame[] = [];
  private readonly decoder = new FrameDecoder();
  onCommand: ((frame: Frame) => void) | undefined;

  constructor() {
    this.proc = spawn('python3', ['-c', PTY_DEVICE]);
    const lines = createInterface({ input: this.proc.stdout });
    this.path = new Promise((resolve) => {
      lines.on('line', (line) => {
        if (line.startsWith('/dev/')) resolve(line);
        if (line.startsWith('recv ')) {
          for (const frame of this.decoder.push(Buffer.from(line.slice(5), 'hex'))) {
            this.commands.push(frame);
            this.onCommand?.(frame);
          }
        }
      });
    });
  }

  write(bytes: Uint8Array): void {
    this.proc.stdin.write(`send ${Buffer.from(bytes).toString('hex')}\n`);
  }

  unplug(): void {
    this.proc.stdin.write('unplug\n');
  }

  stop(): void {
    this.proc.kill();
  }
}

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe.skipIf(!hasPython)('DeviceLink on a pseudo-terminal with the native binding', () => {
  it('reads frames, answers requests, and notices the other end closing', async () => {
    const device = new PtyDevice();
    cleanup.push(() => device.stop());
    const path = await device.path;
    const link = new DeviceLink({ path, identifyOnConnect: false, reconnect: { initialDelayMs: 20, maxDelayMs: 40 } });
    const errors: string[] = [];
    link.on('error', (e) => errors.push(e.message));
    cleanup.push(() => link.close());
    await link.open();
    expect(link.path).toBe(path);

    const frames: Frame[] = [];
    const threeFrames = new Promise<void>((resolve) =>
      link.on('frame', (f) => {
        frames.push(f);
        if (frames.length === 3) resolve();
      }),
    );
    const energy = (seq: number) => encodeFrame('energy', seq, { end_index: BigInt(seq) * 4_000_000n, energy: -(2n ** 90n), boot_id: 5 });
    device.write(Buffer.concat([Buffer.alloc(1), energy(0), Buffer.from('junk\0'), energy(1)]));
    device.write(energy(2));
    await threeFrames;
    expect(frames.map((f) => [f.name, f.seq])).toEqual([['energy', 0], ['energy', 1], ['energy', 2]]);
    expect(frames[0]!.name === 'energy' && frames[0]!.fields.energy).toBe(-(2n ** 90n));
    expect(link.counters.framingErrors + link.counters.crcErrors).toBe(1);

    device.onCommand = (cmd) =>
      device.write(encodeFrame('ack', 3, { command_seq: cmd.seq, command_type: cmd.type, status: 0, value: 7 }));
    const ack = await link.request('cmd_status', {}, { timeoutMs: 5000 });
    expect(ack.fields).toMatchObject({ command_type: 0x85, value: 7 });
    expect(device.commands.map((c) => c.name)).toEqual(['cmd_status']);

    const gone = new Promise<string>((resolve) => link.once('disconnected', (e) => resolve(e.reason)));
    const retrying = new Promise<void>((resolve) => link.on('reconnecting', (e) => e.attempt === 2 && resolve()));
    device.unplug();
    expect(await gone).toBeTruthy();
    await retrying;
    expect(link.connected).toBe(false);
    expect(errors.some((m) => m.includes(path))).toBe(true);
  });
});
