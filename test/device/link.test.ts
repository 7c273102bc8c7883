import { afterEach, describe, expect, it } from 'vitest';
import { DeviceLink, DeviceLinkError, type DeviceLinkOptions } from '../../server/device/link.ts';
import type { DiscoveredDevice } from '../../server/device/discovery.ts';
import { cobsEncode } from '../../server/protocol/cobs.ts';
import { encodeFrame, encodeFrameBytes, type Frame } from '../../server/protocol/codec.ts';
import { crc32c } from '../../server/protocol/crc32c.ts';
import { PROTOCOL_VERSION } from '../../server/protocol/definition.ts';
import { MAX_ENCODED_FRAME_BYTES } from '../../server/protocol/layout.ts';
import { makeFrame, randomBytes, randomInt, seededRng } from '../protocol/fixtures.ts';
import { MockDevice } from './mock-device.ts';

const PATH = '/dev/ttyMOCK0';
const links: DeviceLink[] = [];

function makeLink(device: MockDevice, options: Partial<DeviceLinkOptions> = {}): DeviceLink {
  const link = new DeviceLink({
    path: PATH,
    binding: device.binding,
    identifyOnConnect: false,
    reconnect: { initialDelayMs: 5, maxDelayMs: 20, jitter: 0 },
    ...options,
  });
  links.push(link);
  // Transient errors (failed reconnect attempts) are reported as 'error' events; kept for assertions.
  link.on('error', (e) => linkErrors.push(e));
  return link;
}
const linkErrors: Error[] = [];

afterEach(async () => {
  await Promise.all(links.splice(0).map((l) => l.close()));
  linkErrors.length = 0;
});

/** The next emission of an event. (events.once would reject on the 'error' events of reconnect attempts.) */
function nextEvent(link: DeviceLink, event: 'connected' | 'disconnected' | 'reconnecting'): Promise<unknown[]> {
  return new Promise((resolve) => link.once(event, (...args: unknown[]) => resolve(args)));
}

/** Wait until `count` frames were emitted by the link. */
async function collect(link: DeviceLink, count: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  if (count === 0) return frames;
  await new Promise<void>((resolve) => {
    const on = (f: Frame) => {
      frames.push(f);
      if (frames.length === count) {
        link.off('frame', on);
        resolve();
      }
    };
    link.on('frame', on);
  });
  return frames;
}

const windowFrame = (seq: number) => {
  const spec = makeFrame('window', seq, 'random', seededRng(seq + 1));
  return encodeFrame('window', seq, spec.fields);
};

describe('DeviceLink over MockBinding', () => {
  it('delivers frames decoded, whatever the read chunking', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device);
    await link.open();
    expect(link.connected).toBe(true);
    const stream = Buffer.concat(Array.from({ length: 50 }, (_, k) => windowFrame(k)));
    const got = collect(link, 50);
    const rng = seededRng(40);
    for (let at = 0; at < stream.length; ) {
      const n = randomInt(rng, 1, 300);
      device.emit(stream.subarray(at, at + n));
      at += n;
    }
    const frames = await got;
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 50 }, (_, k) => k));
    expect(frames[7]).toEqual(new (await import('../../server/protocol/codec.ts')).FrameDecoder().push(windowFrame(7))[0]);
    expect(link.counters).toMatchObject({ frames: 50, seqGaps: 0, crcErrors: 0, bytes: stream.length });
  });

  it('survives garbage, bit flips and an endless run without delimiters; counts them; good frames still arrive', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device);
    const errors: string[] = [];
    link.on('decode-error', (e) => errors.push(e.error));
    await link.open();
    const rng = seededRng(41);
    device.emit(Buffer.alloc(1024 * 1024, 0x41)); // 1 MiB of 'A', no delimiter
    device.emit(Buffer.alloc(1));
    const garbage = Buffer.from(randomBytes(rng, 5000));
    for (let at = 0; at < garbage.length; ) {
      const n = randomInt(rng, 1, 64);
      device.emit(garbage.subarray(at, at + n));
      at += n;
    }
    const flipped = Buffer.from(windowFrame(0));
    flipped[20]! ^= 0x04;
    device.emit(Buffer.concat([Buffer.alloc(1), flipped]));
    const got = collect(link, 2);
    device.emit(Buffer.concat([windowFrame(1), windowFrame(2)]));
    expect((await got).map((f) => f.seq)).toEqual([1, 2]);
    expect(link.connected).toBe(true);
    // Every non-empty run of garbage between zeros is one rejected chunk (the last one runs into
    // the delimiter sent before the flipped frame).
    const garbageChunks = garbage.toString('latin1').split('\0').filter((s) => s.length > 0);
    const c = link.counters;
    expect(c.oversize).toBe(1 + garbageChunks.filter((s) => s.length > MAX_ENCODED_FRAME_BYTES).length);
    expect(c.crcErrors + c.framingErrors + c.protocolErrors).toBe(
      garbageChunks.filter((s) => s.length <= MAX_ENCODED_FRAME_BYTES).length + 1,
    );
    expect(c.crcErrors).toBeGreaterThanOrEqual(1);
    expect(c.frames).toBe(2);
    // bytes counts everything read, the dropped 1 MiB run included.
    expect(c.bytes).toBe(1024 * 1024 + 1 + garbage.length + 1 + flipped.length + 2 * windowFrame(1).length);
    expect(errors).toContain('oversize');
    expect(errors).toContain('crc');
  });

  it('says once per connection that the device speaks another protocol version', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device);
    await link.open();
    const v2 = Buffer.from(encodeFrameBytes('ack', 0, { command_seq: 0, command_type: 0x81, status: 0, value: 0 }));
    v2[0] = PROTOCOL_VERSION + 1;
    v2.writeUInt32LE(crc32c(v2.subarray(0, -4)), v2.length - 4);
    const wire = Buffer.concat([Buffer.from(cobsEncode(v2)), Buffer.alloc(1)]);
    const got = collect(link, 1);
    device.emit(Buffer.concat([wire, wire, wire, windowFrame(1)]));
    await got;
    expect(link.counters.protocolErrors).toBe(3);
    const versionErrors = linkErrors.filter((e) => e instanceof DeviceLinkError && e.code === 'version');
    expect(versionErrors.length).toBe(1);
    expect(versionErrors[0]!.message).toMatch(new RegExp(`protocol version ${PROTOCOL_VERSION + 1}.*reflash`));
  });

  it('reports sequence gaps and device resets', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device);
    const resets: number[] = [];
    link.on('reset', (r) => resets.push(r.bootId));
    await link.open();
    const status = (seq: number, boot_id: number) =>
      encodeFrame('status', seq, {
        boot_id, uptime_ms: 0, frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0, adc_errors: 0, watchdog_resets: 0, config_seq: 0,
        link_stalls: 0, uart_rx_overruns: 0, waveform_drops: 0,
      });
    const got = collect(link, 4);
    device.emit(Buffer.concat([status(0, 1), windowFrame(1), windowFrame(5), status(0, 2)]));
    await got;
    expect(link.counters).toMatchObject({ seqGaps: 3, resets: 1 });
    expect(resets).toEqual([2]);
  });
});

describe('DeviceLink reconnection', () => {
  it('after an unplug: disconnected, reconnecting with capped exponential backoff, then connected again', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device, { reconnect: { initialDelayMs: 2, maxDelayMs: 8, factor: 2, jitter: 0.5 }, random: () => 0 });
    const events: string[] = [];
    const delays: number[] = [];
    link.on('disconnected', (e) => events.push(`disconnected ${e.path}`));
    link.on('reconnecting', (e) => {
      delays.push(e.delayMs);
      // Replug after the fifth failed attempt.
      if (e.attempt === 6) device.plugIn();
    });
    link.on('connected', (e) => events.push(`connected ${e.path}`));
    await link.open();
    device.unplug();
    await nextEvent(link, 'disconnected');
    expect(link.connected).toBe(false);
    await nextEvent(link, 'connected');
    // jitter 0.5 with random() = 0 scales each delay by 0.5: 2, 4, 8, 8… → 1, 2, 4, 4…
    expect(delays).toEqual([1, 2, 4, 4, 4, 4]);
    expect(events).toEqual([`connected ${PATH}`, `disconnected ${PATH}`, `connected ${PATH}`]);
    expect(link.counters.reconnects).toBe(1);
    const got = collect(link, 1);
    device.emit(windowFrame(9));
    expect((await got)[0]!.seq).toBe(9);
  });

  it('spreads delays with jitter inside the declared band, never above the cap', async () => {
    const device = new MockDevice(PATH);
    const rng = seededRng(42);
    const link = makeLink(device, { reconnect: { initialDelayMs: 1, maxDelayMs: 6, factor: 3, jitter: 0.25 }, random: rng });
    const delays: number[] = [];
    link.on('reconnecting', (e) => {
      delays.push(e.delayMs);
      if (e.attempt === 8) device.plugIn();
    });
    await link.open();
    device.unplug();
    await nextEvent(link, 'connected');
    const bases = [1, 3, 6, 6, 6, 6, 6, 6];
    delays.forEach((d, k) => {
      expect(d).toBeGreaterThanOrEqual(Math.floor(bases[k]! * 0.75));
      expect(d).toBeLessThanOrEqual(6);
    });
  });

  it('stays down when reconnect is disabled, and says why', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device, { reconnect: false });
    await link.open();
    const gone = nextEvent(link, 'disconnected');
    device.unplug();
    const [event] = (await gone) as [{ reason: string }];
    expect(event.reason).toMatch(/EIO/);
    expect(link.connected).toBe(false);
    expect(() => link.send('cmd_status', {})).toThrow(DeviceLinkError);
  });

  it('waitForDevice: open() waits for the port to appear; close() ends the wait', async () => {
    const device = new MockDevice(PATH);
    device.unplug(); // nothing there yet
    const link = makeLink(device, { waitForDevice: true });
    link.on('reconnecting', (e) => {
      if (e.attempt === 3) device.plugIn();
    });
    await link.open();
    expect(link.connected).toBe(true);

    const absent = new MockDevice('/dev/ttyMOCK1');
    absent.unplug();
    const waiting = makeLink(absent, { path: '/dev/ttyMOCK1', waitForDevice: true });
    const opened = waiting.open().catch((e: unknown) => e);
    await nextEvent(waiting, 'reconnecting');
    await waiting.close();
    expect(await opened).toMatchObject({ code: 'closed' });
    expect(linkErrors.some((e) => /ttyMOCK1 does not exist/.test(e.message))).toBe(true);
  });
});

describe('DeviceLink commands', () => {
  it('request() resolves with the ack that names its seq; commands carry increasing seqs', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device);
    await link.open();
    const ack = await link.request('cmd_configure', { mode: 1, cycles: 10, fixed_samples: 4000, max_samples: 4_000_000, zc_hysteresis: 64 });
    expect(ack.fields).toEqual({ command_seq: 0, command_type: 0x82, status: 0, value: 42 });
    const ack2 = await link.request('cmd_status', {});
    expect(ack2.fields.command_seq).toBe(1);
    expect(device.commands.map((c) => [c.name, c.seq])).toEqual([['cmd_configure', 0], ['cmd_status', 1]]);
    expect(device.commands[0]!.fields).toEqual({ mode: 1, cycles: 10, fixed_samples: 4000, max_samples: 4_000_000, zc_hysteresis: 64 });
  });

  it('ignores acks for other commands, and rejects with a timeout', async () => {
    const device = new MockDevice(PATH);
    device.autoAck = false;
    device.onCommand = (cmd) => {
      // Wrong seq, then right seq but wrong type: neither may satisfy the request.
      device.send('ack', device.nextSeq(), { command_seq: cmd.seq + 1, command_type: cmd.type, status: 0, value: 0 });
      device.send('ack', device.nextSeq(), { command_seq: cmd.seq, command_type: 0x84, status: 0, value: 0 });
    };
    const link = makeLink(device);
    await link.open();
    const err = await link.request('cmd_identify', {}, { timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceLinkError);
    expect((err as DeviceLinkError).code).toBe('timeout');
    expect((err as Error).message).toMatch(/cmd_identify/);
  });

  it('passes a non-OK status through to the caller', async () => {
    const device = new MockDevice(PATH);
    device.autoAck = false;
    device.onCommand = (cmd) =>
      device.send('ack', device.nextSeq(), { command_seq: cmd.seq, command_type: cmd.type, status: 1, value: 0 });
    const link = makeLink(device);
    await link.open();
    const ack = await link.request('cmd_capture', { pairs: 0, trigger: 0, level: 0, pretrigger: 0, decimation: 1, hysteresis: 0 });
    expect(ack.fields.status).toBe(1);
  });

  it('rejects pending requests at once when the device goes away', async () => {
    const device = new MockDevice(PATH);
    device.autoAck = false;
    const link = makeLink(device, { reconnect: false });
    await link.open();
    const pending = link.request('cmd_status', {}, { timeoutMs: 60_000 });
    device.unplug();
    await expect(pending).rejects.toMatchObject({ code: 'disconnected' });
  });

  it('sends one command at a time: the next waits for the previous ack, or its failure', async () => {
    const device = new MockDevice(PATH);
    device.autoAck = false;
    const link = makeLink(device);
    await link.open();
    const first = link.request('cmd_status', {}, { timeoutMs: 60_000 });
    const second = link.request('cmd_identify', {}, { timeoutMs: 40 });
    const third = link.request('cmd_status', {}, { timeoutMs: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(device.commands.map((c) => c.name)).toEqual(['cmd_status']);
    device.send('ack', device.nextSeq(), { command_seq: 0, command_type: 0x85, status: 0, value: 0 });
    expect((await first).fields.command_seq).toBe(0);
    // The second is never acked: its timeout (counted from its own send) lets the third go.
    await expect(second).rejects.toMatchObject({ code: 'timeout' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(device.commands.map((c) => [c.name, c.seq])).toEqual([['cmd_status', 0], ['cmd_identify', 1], ['cmd_status', 2]]);
    device.send('ack', device.nextSeq(), { command_seq: 2, command_type: 0x85, status: 0, value: 7 });
    expect((await third).fields.value).toBe(7);
  });

  it('does not count the torn tail of a frame it opened in the middle of as an error', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device);
    await link.open();
    const got = collect(link, 2);
    const torn = windowFrame(5).subarray(20); // the port opened after the head of frame 5 had gone by
    device.emit(Buffer.concat([torn, windowFrame(6), windowFrame(7)]));
    expect((await got).map((f) => f.seq)).toEqual([6, 7]);
    expect(link.counters).toMatchObject({ tornAtStart: 1, crcErrors: 0, framingErrors: 0, frames: 2 });
    // Only the first chunk after an open gets that benefit of the doubt.
    const more = collect(link, 1);
    device.emit(Buffer.concat([torn, windowFrame(8)]));
    await more;
    expect(link.counters.tornAtStart).toBe(1);
    expect(link.counters.crcErrors + link.counters.framingErrors).toBe(1);
  });

  it('validates commands before using a seq', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device);
    await link.open();
    expect(() => link.send('cmd_capture', { pairs: 70000, trigger: 0, level: 0, pretrigger: 0, decimation: 1, hysteresis: 0 })).toThrow(/cmd_capture\.pairs/);
    expect(() => link.send('window' as 'cmd_status', {})).toThrow(/not a host command/);
    expect(link.send('cmd_status', {})).toBe(0);
  });

  it('asks the device to identify itself on connect', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device, { identifyOnConnect: true });
    const acked = collect(link, 1);
    await link.open();
    expect((await acked)[0]!.name).toBe('ack');
    expect(device.commands.map((c) => c.name)).toEqual(['cmd_identify']);
  });

  it('asks again until the identify frame comes (a lost answer does not leave the device anonymous)', async () => {
    const device = new MockDevice(PATH);
    const rng = seededRng(7);
    let asked = 0;
    // The first two answers are lost (acked, but no identify frame); the third arrives.
    device.onCommand = (frame) => {
      if (frame.name !== 'cmd_identify' || ++asked < 3) return;
      const { fields } = makeFrame('identify', 0, 'random', rng);
      setImmediate(() => device.send('identify', device.nextSeq(), fields));
    };
    const link = makeLink(device, { identifyOnConnect: true, identifyRetry: { firstMs: 5, maxMs: 20 } });
    const identified = new Promise<void>((resolve) => link.on('frame', (f) => f.name === 'identify' && resolve()));
    await link.open();
    expect(link.identifying).toBe(true);
    await identified;
    expect(link.identifying).toBe(false);
    expect(device.commands.filter((c) => c.name === 'cmd_identify').length).toBeGreaterThanOrEqual(3);
  });
});

describe('DeviceLink auto-detection', () => {
  const entry = (over: Partial<DiscoveredDevice>): DiscoveredDevice => ({
    path: null, stablePath: null, vid: 0x1209, pid: 0x5af1, serialNumber: null, manufacturer: null, mode: 'crabwatt', source: 'sysfs', ...over,
  });

  it('opens the first crabwatt port', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device, {
      path: 'auto',
      discover: async () => [entry({ path: '/dev/ttyUSB0', vid: 0x0403, pid: 0x6001, mode: 'unknown' }), entry({ path: PATH })],
    });
    await link.open();
    expect(link.path).toBe(PATH);
  });

  it('says the board is in bootloader mode, and how to leave it', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device, { path: 'auto', discover: async () => [entry({ pid: 0x5af0, mode: 'bootloader' })] });
    const err = await link.open().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'bootloader' });
    expect((err as Error).message).toMatch(/bootloader mode.*crabwatt flash.*dfu-util -a 0 -D.*dfu-util -a 0 -e/s);
  });

  it('says nothing was found, naming the ports that are there', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device, {
      path: 'auto',
      discover: async () => [entry({ path: '/dev/ttyUSB0', vid: 0x0403, pid: 0x6001, mode: 'unknown' })],
    });
    await expect(link.open()).rejects.toMatchObject({ code: 'not-found', message: expect.stringMatching(/ttyUSB0.*--device sim/) });
  });

  it('explains a port that will not open', async () => {
    const device = new MockDevice(PATH);
    const link = makeLink(device, { path: '/dev/ttyNOPE' });
    await expect(link.open()).rejects.toMatchObject({ code: 'open-failed', message: expect.stringMatching(/ttyNOPE/) });
  });
});
