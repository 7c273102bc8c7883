import { afterEach, describe, expect, it } from 'vitest';
import { SerialPort } from 'serialport';
import { SerialPortStream } from '@serialport/stream';
import { DelimiterParser } from '@serialport/parser-delimiter';
import { FrameDecoder, encodeFrame, type Frame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, BOARD } from '../../server/protocol/definition.ts';
import { SimulatedDevice } from '../../server/sim/device.ts';
import { PtyUnavailableError, attachToMockBinding, startPtySim, type PtySim } from '../../server/sim/transport.ts';
import { SAMPLE_RATE_HZ } from '../../server/sim/load.ts';

const FS = SAMPLE_RATE_HZ;

/** Read a serial stream the way the host does: 0x00 delimiter, then the FrameDecoder. */
function host(port: NodeJS.ReadableStream) {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  port.pipe(new DelimiterParser({ delimiter: Buffer.from([0]), includeDelimiter: false }))
    .on('data', (chunk: Buffer) => frames.push(...decoder.pushChunk(chunk)));
  const until = async (what: string, done: () => boolean): Promise<void> => {
    // Bounded by the test timeout, not by a guess at the machine's speed.
    while (!done()) {
      await new Promise((r) => setTimeout(r, 5));
      if (frames.length > 100_000) throw new Error(`gave up waiting for ${what}`);
    }
  };
  return { decoder, frames, until };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('attachToMockBinding', () => {
  it('serves the device through a MockBinding port: frames in, commands out, acks back', async () => {
    const sim = new SimulatedDevice({ seed: 3 });
    const attached = attachToMockBinding(sim, '/dev/ttySIM0');
    const port = new SerialPortStream({ binding: attached.binding, path: '/dev/ttySIM0', baudRate: 115200 });
    cleanups.push(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
    const { frames, decoder, until } = host(port);
    await new Promise<void>((resolve, reject) => port.on('open', resolve).on('error', reject));

    // Identify on connection, then what the device produces.
    await until('identify', () => frames.length > 0);
    expect(frames[0]!.name).toBe('identify');
    expect((frames[0] as Frame<'identify'>).fields.board).toBe(BOARD.SIMULATED);
    sim.advance(FS);
    await until('a second of frames', () => frames.some((f) => f.name === 'status'));
    expect(frames.filter((f) => f.name === 'window').length).toBeGreaterThanOrEqual(4);

    port.write(encodeFrame('cmd_identify', 9, {}));
    await until('the ack', () => frames.some((f) => f.name === 'ack'));
    const ack = frames.find((f): f is Frame<'ack'> => f.name === 'ack')!;
    expect(ack.fields).toMatchObject({ command_seq: 9, command_type: 0x81, status: ACK_STATUS.OK });
    expect(decoder.counters.seqGaps + decoder.counters.crcErrors + decoder.counters.framingErrors).toBe(0);

    // After the host closes the port, the device drops (and counts) what it cannot send.
    await new Promise<void>((resolve) => port.close(() => resolve()));
    sim.advance(FS / 2);
    const before = frames.length;
    await new Promise((r) => setTimeout(r, 20));
    expect(frames.length).toBe(before);
    const ports = await attached.binding.list();
    expect(ports.find((p) => p.path === '/dev/ttySIM0')).toMatchObject({ vendorId: '1209', productId: '5af1' });
    attached.detach();
  });
});

describe('startPtySim', () => {
  it('serves the device on a real pty that the host opens like /dev/ttyACM0', async () => {
    const sim = new SimulatedDevice({ seed: 4, speed: 50 });
    const pty: PtySim = await startPtySim(sim);
    cleanups.push(() => pty.close());
    cleanups.push(() => sim.stop());
    expect(pty.path).toMatch(/^\/dev\/pts\/\d+$/);
    expect(pty.path).not.toBe(pty.devicePath);

    const port = new SerialPort({ path: pty.path, baudRate: 115200 });
    cleanups.push(() => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())));
    const { frames, decoder, until } = host(port);
    await new Promise<void>((resolve, reject) => port.on('open', resolve).on('error', reject));
    sim.start();

    port.write(encodeFrame('cmd_identify', 76, {}));
    await until('windows and the identify answer', () =>
      frames.filter((f) => f.name === 'window').length >= 3 && frames.some((f) => f.name === 'ack'));
    const identify = frames.find((f): f is Frame<'identify'> => f.name === 'identify')!;
    expect(identify.fields.boot_id).toBe(sim.bootId);
    expect(frames.find((f): f is Frame<'ack'> => f.name === 'ack')!.fields.command_seq).toBe(76);
    port.write(encodeFrame('cmd_status', 77, {}));
    const isStatusAck = (f: Frame) => f.name === 'ack' && f.fields.command_seq === 77;
    await until('the ack', () => frames.some(isStatusAck));
    const ackAt = frames.findIndex(isStatusAck);
    expect((frames[ackAt] as Frame<'ack'>).fields).toMatchObject({ command_seq: 77, status: ACK_STATUS.OK });
    // The answer precedes its ack.
    expect(frames[ackAt - 1]!.name).toBe('status');
    expect(decoder.counters.seqGaps + decoder.counters.crcErrors + decoder.counters.framingErrors).toBe(0);
    // Windows keep tiling the stream across the pty.
    const windows = frames.filter((f): f is Frame<'window'> => f.name === 'window');
    for (let k = 1; k < windows.length; k++) {
      expect(windows[k]!.fields.end_index - BigInt(windows[k]!.fields.samples)).toBe(windows[k - 1]!.fields.end_index);
    }
  });

  it('says clearly when socat is missing', async () => {
    const sim = new SimulatedDevice({ seed: 1 });
    const attempt = startPtySim(sim, { socat: '/nonexistent/socat' });
    await expect(attempt).rejects.toBeInstanceOf(PtyUnavailableError);
    await expect(attempt).rejects.toThrow(/not found: install socat/);
  });
});
