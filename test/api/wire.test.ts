import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeviceCommandError } from '../../server/api/deps.ts';
import { captureDecimation } from '../../server/api/live-captures.ts';
import { wireApi, type ApiDevice, type LinkLike } from '../../server/api/wire.ts';
import type { Frame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, CAPTURE_TRIGGER, PROTOCOL_VERSION } from '../../server/protocol/definition.ts';
import type { Ingest } from '../../server/ingest/ingest.ts';
import type { StoreReader } from '../../server/store/query.ts';

const ID = '0123456789abcdef';

const identify = {
  device_id: 0x0123456789abcdefn,
  boot_id: 7,
  board: 0,
  adc_part: 0,
  protocol_version: PROTOCOL_VERSION,
  gateware_version: 0,
  firmware_version: 0,
  sample_rate_num: 4_000_000,
  sample_rate_den: 1,
  capture_depth: 4096,
  config_seq: 0,
  mode: 0,
  cycles: 10,
  fixed_samples: 0,
  max_samples: 4_000_000,
  zc_hysteresis: 64,
  v_offset: 3,
  i_offset: -2,
  v_gain: 16000,
  i_gain: 16500,
  phase: 65536,
};

const registersOf = (f: typeof identify) => ({ v_offset: f.v_offset, i_offset: f.i_offset, v_gain: f.v_gain, i_gain: f.i_gain, phase: f.phase });

class FakeIngest extends EventEmitter {
  deviceId: string | undefined = undefined;
  deviceRef: { kv: number; ki: number; calibration: ReturnType<typeof registersOf> | null } | undefined = undefined;
  counters = { windows: 40, duplicates: 7, dropped: 0 };
  duplicateWarning: string | null = null;
  scales: [number, number][] = [];
  /** Makes storing fail like a full disk would. */
  failStore = false;
  setCalibration(registers: ReturnType<typeof registersOf>, kv: number, ki: number) {
    if (this.failStore) throw new Error('database or disk is full');
    this.scales.push([kv, ki]);
    this.deviceRef = { kv, ki, calibration: registers };
  }
  /** The device introduces itself; the first time, the store seeds its calibration from the frame. */
  identifyNow(frame = identify) {
    this.deviceId = ID;
    this.deviceRef ??= { kv: 0.05, ki: 0.004, calibration: registersOf(frame) };
    this.emit('identify', { device: ID, frame });
  }
}

/** Lets the keeper's queued pushes run (FakeLink answers at once). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

class FakeLink implements LinkLike {
  counters = { frames: 0, crcErrors: 1, seqGaps: 2, resets: 3, reconnects: 4 };
  sent: { name: string; fields: Record<string, number> }[] = [];
  answer: (name: string) => Promise<Frame<'ack'>> = async (name) => ack(name, ACK_STATUS.OK, 5);
  request(name: 'cmd_calibrate' | 'cmd_capture' | 'cmd_identify', fields: Record<string, number>) {
    this.sent.push({ name, fields });
    return this.answer(name);
  }
}

function ack(name: string, status: number, value: number): Frame<'ack'> {
  return { name: 'ack', type: 6, seq: 0, fields: { command_seq: 0, command_type: name === 'cmd_capture' ? 0x84 : 0x83, status, value } } as Frame<'ack'>;
}

function chunk(captureId: number, index: number, count: number, first: bigint, trigger: bigint, pairs: { v: number; i: number }[], decimation = 1): Frame {
  return {
    name: 'capture_chunk',
    type: 4,
    seq: 0,
    fields: { capture_id: captureId, chunk_index: index, chunk_count: count, first_index: first, trigger_index: trigger, config_seq: 0, decimation },
    pairs,
  } as unknown as Frame;
}

function reader(stored: { id: string; lastSeenMs: number | null }[] = []): StoreReader {
  return {
    devices: () =>
      stored.map((s) => ({ id: s.id, name: null, kv: 0.1, ki: 0.01, fsNum: 4e6, fsDen: 1, board: 1, adcPart: 1, totalNwh: 0n, createdMs: 0, lastSeenMs: s.lastSeenMs, epochs: 1 })),
  } as unknown as StoreReader;
}

function setup(stored: { id: string; lastSeenMs: number | null }[] = []) {
  const ingest = new FakeIngest();
  const link = new FakeLink();
  const dev: ApiDevice = { ingest: ingest as unknown as Ingest, link, kind: 'simulated', path: '/dev/pts/9' };
  let now = 1_000_000;
  const wired = wireApi({ reader: reader(stored), devices: [dev], now: () => now });
  return { ingest, link, wired, advance: (ms: number) => (now += ms) };
}

afterEach(() => vi.useRealTimers());

describe('wireApi device directory', () => {
  it('lists a device once it identified itself, with counters and frames/s', () => {
    const { ingest, link, wired, advance } = setup();
    expect(wired.devices.list()).toEqual([]);
    ingest.identifyNow();
    wired.devices.list();
    link.counters.frames = 50;
    advance(2000);
    const [d] = wired.devices.list();
    expect(d).toMatchObject({ id: ID, kind: 'simulated', state: 'connected', path: '/dev/pts/9', sampleRateHz: 4e6 });
    expect(d!.counters).toEqual({ bytes: 0, rejected: 1, dropped: 0, frames: 50, crcErrors: 1, seqGaps: 2, resets: 3, reconnects: 4, framesPerS: 25, windows: 40, duplicates: 7 });
    expect(d!.warning).toBeNull();
    ingest.duplicateWarning = 'most windows were already stored';
    expect(wired.devices.list()[0]!.warning).toBe('most windows were already stored');
  });

  it("shows the device's own counters from its last status frame", () => {
    const { ingest, wired } = setup();
    ingest.identifyNow();
    expect(wired.devices.get(ID)!.deviceHealth).toBeNull();
    const status = (link_stalls: number) => ({
      name: 'status', type: 5, seq: 0,
      fields: {
        boot_id: 1, uptime_ms: 2, frames_dropped: 3, fifo_overflows: 4, samples_dropped: 5, adc_errors: 6, watchdog_resets: 7,
        config_seq: 8, link_stalls, uart_rx_overruns: 10,
      },
    });
    ingest.emit('frame', status(9));
    ingest.emit('frame', status(11));
    expect(wired.devices.get(ID)!.deviceHealth).toEqual({
      framesDropped: 3, fifoOverflows: 4, samplesDropped: 5, adcErrors: 6, watchdogResets: 7, linkStalls: 11, uartRxOverruns: 10,
    });
  });

  it('lists devices only the database knows as absent, for their history', () => {
    const { wired } = setup([{ id: 'feedfeedfeedfeed', lastSeenMs: Date.UTC(2026, 0, 1) }]);
    const [d] = wired.devices.list();
    expect(d).toMatchObject({ id: 'feedfeedfeedfeed', state: 'absent', kind: 'hardware' });
    expect(d!.detail).toMatch(/last seen 2026-01-01/);
    expect(wired.devices.get('FEEDFEEDFEEDFEED')?.id).toBe('feedfeedfeedfeed');
  });

  it('follows link events and forwards them and windows to the live stream', () => {
    const { ingest, wired } = setup();
    ingest.identifyNow();
    const got: unknown[] = [];
    wired.live.on('link', (e) => got.push(e));
    wired.live.on('window', (w) => got.push(w));
    ingest.emit('link', { device: ID, state: 'reconnecting', detail: 'port closed' });
    ingest.emit('window', { device: ID, p: 1 });
    expect(wired.devices.get(ID)).toMatchObject({ state: 'reconnecting', detail: 'port closed' });
    expect(got).toEqual([{ device: ID, state: 'reconnecting', detail: 'port closed' }, { device: ID, p: 1 }]);
    wired.close();
    ingest.emit('window', { device: ID, p: 2 });
    expect(got).toHaveLength(2);
  });

  it('reads the stored calibration, in force since the identify that reported it', () => {
    const { ingest, wired } = setup();
    ingest.identifyNow({ ...identify, config_seq: 3 });
    expect(wired.devices.calibration(ID)).toEqual({
      calibration: { v_offset: 3, i_offset: -2, v_gain: 16000, i_gain: 16500, phase: 65536, kv: 0.05, ki: 0.004 },
      configSeq: 3,
    });
  });
});

describe('wireApi calibration writes', () => {
  const cal = { v_offset: 1, i_offset: 2, v_gain: 16384, i_gain: 16384, phase: -10, kv: 0.06, ki: 0.005 };

  const previous = registersOf(identify);

  it('pushes cmd_calibrate, stores it once acked, and GET says the config_seq PUT returned', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    expect(await wired.devices.setCalibration(ID, cal)).toEqual({ configSeq: 5 });
    expect(link.sent).toEqual([{ name: 'cmd_calibrate', fields: { v_offset: 1, i_offset: 2, v_gain: 16384, i_gain: 16384, phase: -10 } }]);
    expect(ingest.scales).toEqual([[0.06, 0.005]]);
    expect(wired.devices.calibration(ID)).toEqual({ calibration: cal, configSeq: 5 });
  });

  it('refuses kv·ki beyond the limits with 422 and the range, and sends nothing', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    await expect(wired.devices.setCalibration(ID, { ...cal, kv: 1e6, ki: 1e6 })).rejects.toMatchObject({
      statusCode: 422,
      message: /kv·ki = 1000000000000 is above 0\.00097991/,
    });
    expect(link.sent).toEqual([]);
  });

  it('puts the previous registers back when the device took the new ones but storing failed (503)', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    ingest.failStore = true;
    await expect(wired.devices.setCalibration(ID, cal)).rejects.toMatchObject({ statusCode: 503, message: /could not be stored .*disk is full.* previous one was put back/ });
    expect(link.sent.map((s) => s.fields)).toEqual([registersOf({ ...identify, ...cal }), previous]);
    expect(ingest.scales).toEqual([]);
    expect(wired.devices.calibration(ID)).toEqual({ calibration: { ...previous, kv: 0.05, ki: 0.004 }, configSeq: 5 });
  });

  it('pushes the stored calibration again when a reset device identifies with its reset values', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    await wired.devices.setCalibration(ID, cal);
    link.sent.length = 0;
    link.answer = async (name) => ack(name, ACK_STATUS.OK, 1);
    ingest.identifyNow({ ...identify, boot_id: 8, config_seq: 0, v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 0 });
    // Until the device acked, no configuration of this boot is known to carry the calibration.
    expect(wired.devices.calibration(ID).configSeq).toBeNull();
    await settle();
    expect(link.sent).toEqual([{ name: 'cmd_calibrate', fields: registersOf({ ...identify, ...cal }) }]);
    expect(wired.devices.calibration(ID)).toEqual({ calibration: cal, configSeq: 1 });
    // An identify that reports the stored registers needs no push.
    ingest.identifyNow({ ...identify, ...registersOf({ ...identify, ...cal }), boot_id: 8, config_seq: 1 });
    await settle();
    expect(link.sent).toHaveLength(1);
  });

  it.each([
    [ACK_STATUS.BAD_ARGS, 422],
    [ACK_STATUS.BUSY, 409],
    [ACK_STATUS.UNKNOWN_COMMAND, 422],
  ])('turns ack status %i into HTTP %i and keeps the old scale', async (status, http) => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    link.answer = async (name) => ack(name, status, 0);
    const err = await wired.devices.setCalibration(ID, cal).catch((e) => e);
    expect(err).toBeInstanceOf(DeviceCommandError);
    expect(err.statusCode).toBe(http);
    expect(ingest.scales).toEqual([]);
    // The device kept its registers: nothing to put back.
    expect(link.sent).toHaveLength(1);
    expect(wired.devices.calibration(ID).calibration).toEqual({ ...previous, kv: 0.05, ki: 0.004 });
  });

  it('reports a device that does not answer as 504, and pushes the previous registers in case it took them', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    let calls = 0;
    link.answer = async (name) => {
      if (calls++ === 0) throw new Error('no ack within 2000 ms (timeout)');
      return ack(name, ACK_STATUS.OK, 6);
    };
    await expect(wired.devices.setCalibration(ID, cal)).rejects.toMatchObject({ statusCode: 504 });
    expect(link.sent.map((s) => s.fields)).toEqual([registersOf({ ...identify, ...cal }), previous]);
    expect(ingest.scales).toEqual([]);
    expect(wired.devices.calibration(ID)).toEqual({ calibration: { ...previous, kv: 0.05, ki: 0.004 }, configSeq: 6 });
  });

  it('refuses while the link is down (503) and for a device that is not attached', async () => {
    const { ingest, link, wired } = setup([{ id: 'feedfeedfeedfeed', lastSeenMs: null }]);
    ingest.identifyNow();
    ingest.emit('link', { device: ID, state: 'reconnecting', detail: 'unplugged' });
    await expect(wired.devices.setCalibration(ID, cal)).rejects.toMatchObject({ statusCode: 503, message: /reconnecting: unplugged/ });
    await expect(wired.devices.setCalibration('feedfeedfeedfeed', cal)).rejects.toMatchObject({ statusCode: 503 });
    await expect(wired.devices.setCalibration('0000000000000000', cal)).rejects.toMatchObject({ name: 'UnknownDeviceError' });
    expect(link.sent).toEqual([]);
  });
});

describe('wireApi captures', () => {
  const pairs = (from: number, n: number) => Array.from({ length: n }, (_, k) => ({ v: from + k, i: -(from + k) }));

  it('arms with the trigger enum and assembles chunks in any order, once each', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    const { captureId } = await wired.devices.requestCapture(ID, { pairs: 600, trigger: 'i_falling', level: -100, pretrigger: 100, hysteresis: 7 });
    expect(captureId).toBe(5);
    expect(link.sent[0]).toEqual({
      name: 'cmd_capture',
      fields: { pairs: 600, trigger: CAPTURE_TRIGGER.I_FALLING, level: -100, pretrigger: 100, decimation: 1, hysteresis: 7 },
    });
    expect(wired.devices.capture(ID, 5)).toMatchObject({ state: 'pending' });
    ingest.emit('frame', chunk(5, 2, 3, 1512n, 1100n, pairs(512, 88)));
    ingest.emit('frame', chunk(5, 0, 3, 1000n, 1100n, pairs(0, 256)));
    ingest.emit('frame', chunk(5, 0, 3, 1000n, 1100n, pairs(0, 256))); // a repeat changes nothing
    ingest.emit('frame', chunk(9, 1, 3, 1256n, 1100n, pairs(0, 256))); // another capture's chunk is ignored
    expect(wired.devices.capture(ID, 5)).toMatchObject({ state: 'pending', detail: '2 of 3 chunks' });
    ingest.emit('frame', chunk(5, 1, 3, 1256n, 1100n, pairs(256, 256)));
    const c = wired.devices.capture(ID, 5)!;
    expect(c.state).toBe('complete');
    expect(c.v).toEqual(pairs(0, 600).map((p) => p.v));
    expect(c.i[599]).toBe(-599);
    expect(c.triggerOffset).toBe(100);
    expect(c).toMatchObject({ kv: 0.05, ki: 0.004, sampleRateHz: 4e6 });
    expect(c).not.toHaveProperty('chunks');
  });

  it('refuses more pairs than the device holds, before sending anything', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    await expect(wired.devices.requestCapture(ID, { pairs: 5000, trigger: 'immediate', level: 0, pretrigger: 0, hysteresis: 0 })).rejects.toMatchObject({
      statusCode: 422,
      message: /at most 4096/,
    });
    expect(link.sent).toEqual([]);
  });

  it('marks a capture whose chunks stop arriving as failed', async () => {
    vi.useFakeTimers();
    const { ingest, wired } = setup();
    ingest.identifyNow();
    await wired.devices.requestCapture(ID, { pairs: 600, trigger: 'immediate', level: 0, pretrigger: 0, hysteresis: 0 });
    ingest.emit('frame', chunk(5, 0, 3, 0n, 0n, pairs(0, 256)));
    vi.advanceTimersByTime(16_000);
    expect(wired.devices.capture(ID, 5)).toMatchObject({ state: 'failed', detail: 'only 1 chunk(s) arrived within 15 s' });
  });

  it('waits longer for a long decimated capture: the samples take their time before the chunks come', async () => {
    vi.useFakeTimers();
    const { ingest, wired } = setup();
    ingest.identifyNow();
    // 4096 pairs at D = 9766 span 10 s; a level trigger may take 1 s more, plus a refilled pretrigger.
    await wired.devices.requestCapture(ID, { pairs: 4096, trigger: 'v_rising', level: 0, pretrigger: 0, hysteresis: 0, decimation: 9766 });
    vi.advanceTimersByTime(25_000);
    expect(wired.devices.capture(ID, 5)).toMatchObject({ state: 'pending' });
    vi.advanceTimersByTime(2_000);
    expect(wired.devices.capture(ID, 5)).toMatchObject({ state: 'failed', detail: 'only 0 chunk(s) arrived within 26 s' });
  });

  it('assembles a decimated capture: the trigger offset counts pairs, the spacing is the device\'s', async () => {
    const { ingest, wired } = setup();
    ingest.identifyNow();
    await wired.devices.requestCapture(ID, { pairs: 300, trigger: 'v_rising', level: 0, pretrigger: 30, hysteresis: 0, decimation: 64 });
    ingest.emit('frame', chunk(5, 0, 2, 1000n, 1000n + 30n * 64n, pairs(0, 256), 64));
    ingest.emit('frame', chunk(5, 1, 2, 1000n + 256n * 64n, 1000n + 30n * 64n, pairs(256, 44), 64));
    expect(wired.devices.capture(ID, 5)).toMatchObject({
      state: 'complete', decimation: 64, firstIndex: 1000, triggerIndex: 1000 + 30 * 64, triggerOffset: 30,
    });
  });
});

describe('captureDecimation', () => {
  const req = { pairs: 4096, trigger: 'v_rising', level: 0, pretrigger: 0, hysteresis: 0 } as const;
  it('is 1 by default and the given D as is', () => {
    expect(captureDecimation(req, 4e6, null)).toBe(1);
    expect(captureDecimation({ ...req, decimation: 300 }, 0, null)).toBe(300);
  });
  it('picks the smallest D whose pairs cover the duration or the cycles', () => {
    // 80 ms at 4 Msps is 320000 samples: 4096 pairs need D = 79 (78.125 rounded up).
    expect(captureDecimation({ ...req, durationMs: 80 }, 4e6, null)).toBe(79);
    expect((4096 * 79) / 4e6).toBeGreaterThanOrEqual(0.08);
    expect(captureDecimation({ ...req, cycles: 4 }, 4e6, 50)).toBe(79);
    expect(captureDecimation({ ...req, cycles: 4 }, 4e6, 60)).toBe(66);
    expect(captureDecimation({ ...req, durationMs: 0.1 }, 4e6, null)).toBe(1);
    expect(captureDecimation({ ...req, pairs: 1, durationMs: 16.38375 }, 4e6, null)).toBe(65535);
  });
  it('422s what it cannot honour', () => {
    expect(() => captureDecimation({ ...req, cycles: 4 }, 4e6, null)).toThrow(/no mains frequency/);
    expect(() => captureDecimation({ ...req, durationMs: 80 }, 0, null)).toThrow(/sample rate/);
    expect(() => captureDecimation({ ...req, pairs: 1, durationMs: 17 }, 4e6, null)).toThrow(/more than 65535/);
    const thrown = (() => {
      try {
        captureDecimation({ ...req, durationMs: 60_000, pairs: 100 }, 4e6, null);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(thrown).toBeInstanceOf(DeviceCommandError);
    expect(thrown).toMatchObject({ statusCode: 422 });
  });
  it('reads the frequency from the live windows for cycles', async () => {
    const { ingest, link, wired } = setup();
    ingest.identifyNow();
    ingest.emit('window', { device: ID, freq_hz: 60 });
    await wired.devices.requestCapture(ID, { ...req, cycles: 4 });
    expect(link.sent.at(-1)!.fields.decimation).toBe(66);
  });
});
