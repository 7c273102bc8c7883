import { describe, expect, it } from 'vitest';
import { FrameDecoder, encodeFrame, encodeFrameBytes, type Frame } from '../../server/protocol/codec.ts';
import { cobsEncode } from '../../server/protocol/cobs.ts';
import { crc32c } from '../../server/protocol/crc32c.ts';
import {
  ACK_STATUS, ADC_PART, BOARD, CALIBRATION_SOURCE, CAPTURE_TRIGGER, PROTOCOL_VERSION, WINDOW_FLAG, WINDOW_MODE,
} from '../../server/protocol/definition.ts';
import { DELAY_LINE_LENGTH, DspCore, RESET_CONFIG, type DspConfig } from '../../server/dsp/model.ts';
import { CAPTURE_CHUNK_PAIRS, SIM_CAPTURE_DEPTH, SimulatedDevice, TX_RESERVE_BYTES, type SimulatedDeviceOptions } from '../../server/sim/device.ts';
import { SAMPLE_RATE_HZ, SyntheticLoad } from '../../server/sim/load.ts';

const FS = SAMPLE_RATE_HZ;

/** A device whose every byte goes through the real decoder. */
function rig(options: SimulatedDeviceOptions = {}) {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  const received = { bytes: 0 };
  const sim = new SimulatedDevice({
    seed: 5,
    ...options,
    output: (bytes) => {
      received.bytes += bytes.length;
      frames.push(...decoder.push(bytes));
      return true;
    },
  });
  let hostSeq = 100;
  const command = <N extends Parameters<typeof encodeFrame>[0]>(name: N, fields: Parameters<typeof encodeFrame<N>>[2]) => {
    const seq = hostSeq++;
    sim.receive(encodeFrame(name, seq, fields));
    return seq;
  };
  const named = <N extends Frame['name']>(name: N) => frames.filter((f): f is Frame<N> => f.name === name);
  const ackOf = (seq: number) => named('ack').find((a) => a.fields.command_seq === seq);
  return { sim, decoder, frames, received, command, named, ackOf };
}

/** The raw codes the device saw, regenerated from the same seeded load. */
function rawCodes(options: { scenario?: 'mains-230-50'; seed: number }, count: number) {
  const load = new SyntheticLoad({ scenario: options.scenario ?? 'mains-230-50', seed: options.seed });
  const cv = new Uint16Array(count);
  const ci = new Uint16Array(count);
  load.fill(cv, ci);
  return { cv, ci };
}

describe('SimulatedDevice frames', () => {
  it('starts with identify, numbers every frame, tiles the sample stream and snapshots energy', () => {
    const { sim, decoder, frames, named } = rig();
    sim.advance(3 * FS);

    const first = frames[0] as Frame<'identify'>;
    expect(first.name).toBe('identify');
    expect(first.fields.board).toBe(BOARD.SIMULATED);
    expect(first.fields.adc_part).toBe(ADC_PART.SIMULATED);
    expect(first.fields.protocol_version).toBe(PROTOCOL_VERSION);
    expect(first.fields.sample_rate_num / first.fields.sample_rate_den).toBe(FS);
    expect(first.fields.device_id).toBe(sim.deviceId);
    expect(first.fields.boot_id).toBe(sim.bootId);
    expect(first.fields.mode).toBe(WINDOW_MODE.CYCLES);
    expect(first.fields.cycles).toBe(10);

    expect(frames.map((f) => f.seq)).toEqual(frames.map((_, k) => k));
    expect(decoder.counters.seqGaps).toBe(0);
    expect(decoder.counters.crcErrors + decoder.counters.framingErrors + decoder.counters.protocolErrors).toBe(0);

    const windows = named('window');
    // K = 10 cycles at 50 Hz: 5 windows a second (the first one partial).
    expect(windows.length).toBeGreaterThanOrEqual(14);
    expect(windows.length).toBeLessThanOrEqual(16);
    let previousEnd = 0n;
    let energy = 0n;
    const energies = named('energy');
    expect(energies.length).toBe(windows.length);
    for (const [k, w] of windows.entries()) {
      expect(w.fields.end_index - BigInt(w.fields.samples)).toBe(previousEnd);
      previousEnd = w.fields.end_index;
      energy += w.fields.sum_vi;
      // The energy frame follows its window and holds E at that window's end.
      const e = energies[k]!;
      expect(frames[frames.indexOf(w) + 1]).toBe(e);
      expect(e.fields.end_index).toBe(w.fields.end_index);
      expect(e.fields.energy).toBe(energy);
      expect(e.fields.boot_id).toBe(sim.bootId);
    }
    expect(windows[0]!.fields.flags & WINDOW_FLAG.PARTIAL).toBe(WINDOW_FLAG.PARTIAL);
    expect(windows.slice(1).every((w) => w.fields.zc_count === 10)).toBe(true);
    expect(energy).toBeGreaterThan(0n);

    // Status once per second of device time.
    const status = named('status');
    expect(status.map((s) => s.fields.uptime_ms)).toEqual([1000, 2000, 3000]);
    expect(status.every((s) => s.fields.boot_id === sim.bootId && s.fields.frames_dropped === 0)).toBe(true);
  });

  it('sends energy after every N-th window when asked to', () => {
    const { sim, named } = rig({ energyEveryWindows: 3 });
    sim.advance(3 * FS);
    const windows = named('window');
    const energies = named('energy');
    expect(energies.length).toBe(Math.floor(windows.length / 3));
    let sum = 0n;
    for (const [k, w] of windows.entries()) {
      sum += w.fields.sum_vi;
      if (k % 3 === 2) {
        const e = energies[(k - 2) / 3]!;
        expect(e.fields.end_index).toBe(w.fields.end_index);
        expect(e.fields.energy).toBe(sum);
      }
    }
  });

  it('counts frames dropped while no host listens, and their seq numbers are skipped', () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const sim = new SimulatedDevice({ seed: 1, output: (b) => void frames.push(...decoder.push(b)) });
    sim.advance(FS / 2);
    sim.setOutput(null);
    sim.advance(FS);
    const lostSince = frames.at(-1)!.seq;
    sim.setOutput((b) => void frames.push(...decoder.push(b)));
    sim.advance(FS);
    const status = frames.filter((f): f is Frame<'status'> => f.name === 'status').at(-1)!;
    expect(status.fields.frames_dropped).toBeGreaterThan(0);
    expect(decoder.counters.seqGaps).toBe(status.fields.frames_dropped);
    const resumed = frames.find((f) => f.seq > lostSince)!;
    expect(resumed.seq - lostSince - 1).toBe(status.fields.frames_dropped);
  });

  it('asks its sink to keep the stream reserve free for waveform frames only', () => {
    const decoder = new FrameDecoder();
    const reserves = new Map<string, Set<number>>();
    const sim = new SimulatedDevice({
      seed: 1,
      output: (b, reserve) => {
        for (const f of decoder.push(b)) reserves.set(f.name, (reserves.get(f.name) ?? new Set()).add(reserve));
      },
    });
    sim.advance(FS);
    expect(reserves.get('waveform')).toEqual(new Set([TX_RESERVE_BYTES]));
    for (const name of ['identify', 'status', 'window', 'energy']) expect(reserves.get(name), name).toEqual(new Set([0]));
  });

  it('drops whole frames beyond the link rate and counts them; the seq numbers show the gaps', () => {
    const { sim, command, frames, received, named } = rig();
    sim.advance(FS / 10);
    const bytesBefore = received.bytes;
    // 40 000 windows/s, each with its energy frame: several MB/s, far beyond the link's 1 MB/s.
    command('cmd_configure', { mode: WINDOW_MODE.FIXED, cycles: 10, fixed_samples: 100, max_samples: FS, zc_hysteresis: 64 });
    sim.advance(FS / 2);
    const floodBytes = received.bytes - bytesBefore;
    command('cmd_configure', { mode: WINDOW_MODE.FIXED, cycles: 10, fixed_samples: 400_000, max_samples: FS, zc_hysteresis: 64 });
    sim.advance(FS);
    // Half a second at 1 MB/s, plus what the 8 KiB transmit ring held at the start.
    expect(floodBytes).toBeLessThanOrEqual(0.5e6 + 8192);
    expect(floodBytes).toBeGreaterThan(0.45e6);
    const status = named('status').at(-1)!;
    const receivedBefore = frames.filter((f) => f.seq < status.seq).length;
    expect(status.fields.frames_dropped).toBeGreaterThan(10_000);
    expect(status.fields.frames_dropped).toBe(status.seq - receivedBefore);
    // Snapshots are absolute, so the flood cost window detail, not energy: once it is over, each
    // snapshot is the previous one plus the window it follows.
    // (Its ack may itself have been lost in the flood, like any frame; its windows say config_seq 2.)
    const calm = frames.slice(frames.findIndex((f) => f.name === 'window' && f.fields.config_seq === 2));
    const pairs = calm.flatMap((f, k) => (f.name === 'energy' && calm[k - 1]?.name === 'window' ? [[calm[k - 1], f]] : [])) as
      [Frame<'window'>, Frame<'energy'>][];
    expect(pairs.length).toBeGreaterThanOrEqual(3);
    for (let k = 1; k < pairs.length; k++) {
      expect(pairs[k]![1].fields.energy - pairs[k - 1]![1].fields.energy).toBe(pairs[k]![0].fields.sum_vi);
    }
  });

  it('DC boots in FIXED mode: 10 windows a second, no partial windows', () => {
    const { sim, named } = rig({ scenario: 'dc' });
    sim.advance(FS);
    const windows = named('window');
    expect(windows.length).toBe(10);
    expect(windows.every((w) => w.fields.samples === 400_000 && w.fields.flags === 0)).toBe(true);
  });
});

describe('SimulatedDevice commands', () => {
  it('cmd_configure commits at the next sample, acks with config_seq, and rejects bad ranges', () => {
    const { sim, command, ackOf, named } = rig();
    sim.advance(FS / 2);
    const boundary = BigInt(sim.sampleIndex);
    const seq = command('cmd_configure', { mode: WINDOW_MODE.FIXED, cycles: 10, fixed_samples: 100_000, max_samples: FS, zc_hysteresis: 64 });
    const ack = ackOf(seq)!;
    expect(ack.fields.status).toBe(ACK_STATUS.OK);
    expect(ack.fields.value).toBe(1);
    expect(ack.fields.command_type).toBe(0x82);
    sim.advance(FS / 2);
    const windows = named('window');
    const closing = windows.find((w) => w.fields.end_index === boundary)!;
    expect(closing.fields.flags & WINDOW_FLAG.CONFIG).toBe(WINDOW_FLAG.CONFIG);
    expect(closing.fields.config_seq).toBe(0);
    const after = windows.filter((w) => w.fields.end_index > boundary);
    expect(after.length).toBe(20);
    expect(after.every((w) => w.fields.samples === 100_000 && w.fields.config_seq === 1)).toBe(true);

    for (const bad of [
      { mode: 2, cycles: 10, fixed_samples: 1000, max_samples: 1000, zc_hysteresis: 0 },
      { mode: 0, cycles: 0, fixed_samples: 1000, max_samples: 1000, zc_hysteresis: 0 },
      { mode: 0, cycles: 10, fixed_samples: 0, max_samples: 1000, zc_hysteresis: 0 },
      { mode: 0, cycles: 10, fixed_samples: 1000, max_samples: (1 << 24) + 1, zc_hysteresis: 0 },
      { mode: 0, cycles: 10, fixed_samples: 1000, max_samples: 1000, zc_hysteresis: 40000 },
    ]) {
      expect(ackOf(command('cmd_configure', bad))!.fields.status).toBe(ACK_STATUS.BAD_ARGS);
    }
    // Rejected configurations changed nothing.
    const before = named('window').length;
    sim.advance(FS / 10);
    expect(named('window').slice(before).every((w) => w.fields.samples === 100_000 && w.fields.config_seq === 1)).toBe(true);
  });

  it('cmd_calibrate applies gains to the measured sums', () => {
    const { sim, command, ackOf, named } = rig();
    sim.advance(FS / 2);
    const seq = command('cmd_calibrate', { v_offset: 0, i_offset: 0, v_gain: 32768, i_gain: 16384, phase: 0 });
    expect(ackOf(seq)!.fields.status).toBe(ACK_STATUS.OK);
    sim.advance(FS);
    const windows = named('window').filter((w) => (w.fields.flags & (WINDOW_FLAG.PARTIAL | WINDOW_FLAG.CONFIG)) === 0);
    const before = windows.filter((w) => w.fields.config_seq === 0);
    const after = windows.filter((w) => w.fields.config_seq === 1);
    expect(before.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    const vrms = (w: Frame<'window'>) => Math.sqrt(Number(w.fields.sum_vv) / w.fields.samples);
    expect(vrms(after[0]!) / vrms(before.at(-1)!)).toBeCloseTo(2, 1);
    expect(ackOf(command('cmd_calibrate', { v_offset: 0, i_offset: 0, v_gain: 16384, i_gain: 16384, phase: 1023 * 65536 }))!
      .fields.status).toBe(ACK_STATUS.BAD_ARGS);
  });

  it('cmd_identify and cmd_status are acked and answered; identify shows the committed configuration', () => {
    const { sim, command, ackOf, frames } = rig();
    sim.advance(FS / 10);
    command('cmd_configure', { mode: WINDOW_MODE.CYCLES, cycles: 12, fixed_samples: 1000, max_samples: FS, zc_hysteresis: 50 });
    const seq = command('cmd_identify', {});
    expect(ackOf(seq)!.fields.status).toBe(ACK_STATUS.OK);
    // The answer comes just before the ack.
    expect(frames.at(-1)).toBe(ackOf(seq));
    const identify = frames.at(-2) as Frame<'identify'>;
    expect(identify.name).toBe('identify');
    expect(identify.fields.cycles).toBe(12);
    expect(identify.fields.zc_hysteresis).toBe(50);
    expect(identify.fields.config_seq).toBe(1);
    const statusSeq = command('cmd_status', {});
    expect(ackOf(statusSeq)!.fields.status).toBe(ACK_STATUS.OK);
    expect(frames.at(-2)!.name).toBe('status');
  });

  it('answers frames it cannot use: unknown type, wrong length, device-to-host types; ignores garbage', () => {
    const { sim, frames, ackOf, decoder } = rig();
    const count = frames.length;
    // A CRC-valid frame of an unknown type 0x99.
    const unknown = Uint8Array.from(encodeFrameBytes('cmd_identify', 41, {}));
    unknown[1] = 0x99;
    new DataView(unknown.buffer).setUint32(unknown.length - 4, crc32c(unknown.subarray(0, unknown.length - 4)), true);
    sim.receive(Buffer.concat([Buffer.from(cobsEncode(unknown)), Buffer.from([0])]));
    expect(ackOf(41)!.fields).toMatchObject({ command_type: 0x99, status: ACK_STATUS.UNKNOWN_COMMAND });

    // cmd_status with one byte too many.
    const body = encodeFrameBytes('cmd_status', 42, {});
    const long = new Uint8Array(body.length + 1);
    long.set(body.subarray(0, body.length - 4));
    new DataView(long.buffer).setUint32(long.length - 4, crc32c(long.subarray(0, long.length - 4)), true);
    sim.receive(Buffer.concat([Buffer.from(cobsEncode(long)), Buffer.from([0])]));
    expect(ackOf(42)!.fields).toMatchObject({ command_type: 0x85, status: ACK_STATUS.BAD_LENGTH });

    sim.receive(encodeFrame('status', 43, {
      boot_id: 1, uptime_ms: 0, frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0, adc_errors: 0, watchdog_resets: 0, config_seq: 0,
      link_stalls: 0, uart_rx_overruns: 0, waveform_drops: 0,
    }));
    expect(ackOf(43)!.fields.status).toBe(ACK_STATUS.UNKNOWN_COMMAND);

    // Garbage, an oversize run and a corrupted command: no answer, no crash, and the next command works.
    const corrupted = encodeFrame('cmd_identify', 44, {});
    corrupted[3] = corrupted[3]! ^ 0x10;
    sim.receive(Buffer.from([1, 2, 3, 0, 0xff, 0xfe, 0]));
    sim.receive(Buffer.alloc(5000, 7));
    sim.receive(Buffer.from([0]));
    sim.receive(corrupted);
    expect(ackOf(44)).toBeUndefined();
    const random = Buffer.alloc(20000);
    for (let k = 0; k < random.length; k++) random[k] = (k * 2654435761) >>> 24;
    sim.receive(random);
    sim.receive(Buffer.from([0]));
    const ok = encodeFrame('cmd_status', 45, {});
    // Split at every byte: the command decoder must reassemble it.
    for (const byte of ok) sim.receive(Buffer.from([byte]));
    expect(ackOf(45)!.fields.status).toBe(ACK_STATUS.OK);
    expect(frames.length).toBeGreaterThan(count);
    expect(decoder.counters.crcErrors).toBe(0);
  });
});

describe('SimulatedDevice captures', () => {
  it('IMMEDIATE: the requested pairs from the running stream after arming, exact, in 256-pair chunks', () => {
    const { sim, command, ackOf, named } = rig({ seed: 8 });
    sim.advance(FS / 4 + 123);
    const armedAt = sim.sampleIndex;
    const seq = command('cmd_capture', { pairs: 1000, trigger: CAPTURE_TRIGGER.IMMEDIATE, level: 0, pretrigger: 200, decimation: 1, hysteresis: 0 });
    const ack = ackOf(seq)!;
    expect(ack.fields.status).toBe(ACK_STATUS.OK);
    sim.advance(FS / 10);
    const chunks = named('capture_chunk');
    expect(chunks.length).toBe(Math.ceil(1000 / CAPTURE_CHUNK_PAIRS));
    expect(chunks.map((c) => c.fields.chunk_index)).toEqual([0, 1, 2, 3]);
    expect(chunks.every((c) => c.fields.capture_id === ack.fields.value && c.fields.chunk_count === 4)).toBe(true);
    // As in the gateware, the pretrigger pairs are recorded after arming: the trigger comes 200 later.
    expect(chunks.every((c) => c.fields.trigger_index === BigInt(armedAt + 200))).toBe(true);
    const pairs = chunks.flatMap((c) => c.pairs);
    expect(pairs.length).toBe(1000);
    const first = Number(chunks[0]!.fields.first_index);
    expect(first).toBe(armedAt);
    // At unity calibration the calibrated sample is the centred code, exactly.
    const { cv, ci } = rawCodes({ seed: 8 }, first + 1000);
    for (const [k, p] of pairs.entries()) {
      expect(p.v).toBe(cv[first + k]! - 8192);
      expect(p.i).toBe(ci[first + k]! - 8192);
    }
    for (const c of chunks) expect(Number(c.fields.first_index)).toBe(first + c.fields.chunk_index * CAPTURE_CHUNK_PAIRS);
  });

  it('V_RISING at a level, with pretrigger: the trigger pair is the crossing; calibration applies', () => {
    const { sim, command, ackOf, named } = rig({ seed: 8 });
    sim.advance(FS / 4);
    command('cmd_calibrate', { v_offset: 0, i_offset: 0, v_gain: 32768, i_gain: 16384, phase: 0 });
    sim.advance(1000);
    const armedAtLevel = sim.sampleIndex;
    const seq = command('cmd_capture', { pairs: 600, trigger: CAPTURE_TRIGGER.V_RISING, level: 2000, pretrigger: 100, decimation: 1, hysteresis: 0 });
    expect(ackOf(seq)!.fields.status).toBe(ACK_STATUS.OK);
    sim.advance(FS / 20);
    const chunks = named('capture_chunk');
    expect(chunks.length).toBe(3);
    const pairs = chunks.flatMap((c) => c.pairs);
    const trigger = Number(chunks[0]!.fields.trigger_index);
    const first = Number(chunks[0]!.fields.first_index);
    expect(trigger - first).toBe(100);
    expect(first).toBeGreaterThanOrEqual(armedAtLevel);
    expect(chunks[0]!.fields.config_seq).toBe(1);
    // Gain 2 exactly doubles the centred code (phase 0, offset 0).
    const { cv } = rawCodes({ seed: 8 }, first + 600);
    for (const [k, p] of pairs.entries()) expect(p.v).toBe(2 * (cv[first + k]! - 8192));
    expect(pairs[99]!.v).toBeLessThan(2000);
    expect(pairs[100]!.v).toBeGreaterThanOrEqual(2000);
  });

  it('triggers on calibrated values: I_RISING through phase delay, offset and gain', () => {
    const { sim, command, named } = rig({ seed: 8 });
    sim.advance(FS / 4);
    // Current delayed by 3.5 samples, offset and gain on the current only.
    command('cmd_calibrate', { v_offset: 0, i_offset: 40, v_gain: 16384, i_gain: 20000, phase: 3 * 65536 + 32768 });
    sim.advance(5000);
    const armedAt = sim.sampleIndex;
    command('cmd_capture', { pairs: 300, trigger: CAPTURE_TRIGGER.I_RISING, level: 500, pretrigger: 50, decimation: 1, hysteresis: 0 });
    sim.advance(FS / 20);
    const chunks = named('capture_chunk');
    expect(chunks.length).toBe(2);
    const pairs = chunks.flatMap((c) => c.pairs);
    const first = Number(chunks[0]!.fields.first_index);
    expect(first).toBeGreaterThanOrEqual(armedAt);
    expect(Number(chunks[0]!.fields.trigger_index) - first).toBe(50);
    expect(pairs[49]!.i).toBeLessThan(500);
    expect(pairs[50]!.i).toBeGreaterThanOrEqual(500);
    // The crossing is the first since the pretrigger pairs were in (none earlier in the capture).
    for (let k = 1; k < 50; k++) expect(pairs[k - 1]!.i < 500 && pairs[k]!.i >= 500).toBe(false);
    // The voltage is not delayed and stays at unity calibration: the centred codes.
    const { cv } = rawCodes({ seed: 8 }, first + 300);
    for (const [k, p] of pairs.entries()) expect(p.v).toBe(cv[first + k]! - 8192);
  });

  it('I_FALLING triggers on the current', () => {
    const { sim, command, named } = rig({ seed: 8 });
    sim.advance(FS / 4);
    command('cmd_capture', { pairs: 64, trigger: CAPTURE_TRIGGER.I_FALLING, level: 0, pretrigger: 1, decimation: 1, hysteresis: 0 });
    sim.advance(FS / 20);
    const [chunk] = named('capture_chunk');
    expect(chunk!.pairs[0]!.i).toBeGreaterThanOrEqual(0);
    expect(chunk!.pairs[1]!.i).toBeLessThan(0);
  });

  it('a level never reached fires after a second anyway (auto trigger)', () => {
    const { sim, command, named } = rig({ seed: 8 });
    sim.advance(FS / 10);
    const armedAt = sim.sampleIndex;
    command('cmd_capture', { pairs: 10, trigger: CAPTURE_TRIGGER.V_RISING, level: 32000, pretrigger: 0, decimation: 1, hysteresis: 0 });
    sim.advance(FS / 2);
    expect(named('capture_chunk').length).toBe(0);
    sim.advance(FS);
    const [chunk] = named('capture_chunk');
    expect(Number(chunk!.fields.trigger_index) - armedAt).toBeGreaterThanOrEqual(FS - 1);
  });

  it('rejects bad capture arguments and a second capture while one is armed', () => {
    const { sim, command, ackOf } = rig();
    sim.advance(FS / 10);
    const bad = [
      { pairs: 0, trigger: 0, level: 0, pretrigger: 0, decimation: 1, hysteresis: 0 },
      { pairs: SIM_CAPTURE_DEPTH + 1, trigger: 0, level: 0, pretrigger: 0, decimation: 1, hysteresis: 0 },
      { pairs: 100, trigger: 9, level: 0, pretrigger: 0, decimation: 1, hysteresis: 0 },
      { pairs: 100, trigger: 0, level: 0, pretrigger: 100, decimation: 1, hysteresis: 0 },
    ];
    for (const fields of bad) expect(ackOf(command('cmd_capture', fields))!.fields.status).toBe(ACK_STATUS.BAD_ARGS);
    expect(ackOf(command('cmd_capture', { pairs: 10, trigger: CAPTURE_TRIGGER.V_RISING, level: 30000, pretrigger: 0, decimation: 1, hysteresis: 0 }))!
      .fields.status).toBe(ACK_STATUS.OK);
    expect(ackOf(command('cmd_capture', { pairs: 10, trigger: 0, level: 0, pretrigger: 0, decimation: 1, hysteresis: 0 }))!.fields.status).toBe(ACK_STATUS.BUSY);
  });

  it('a full-depth capture with pretrigger: trigger after the pretrigger pairs, chunks wait for link room', () => {
    const { sim, command, named } = rig();
    command('cmd_capture', { pairs: SIM_CAPTURE_DEPTH, trigger: CAPTURE_TRIGGER.IMMEDIATE, level: 0, pretrigger: 1000, decimation: 1, hysteresis: 0 });
    // 16 kB of chunks leave at the link's 1 MB/s, waiting for room instead of being dropped.
    sim.advance(FS / 10);
    const chunks = named('capture_chunk');
    expect(chunks.length).toBe(SIM_CAPTURE_DEPTH / CAPTURE_CHUNK_PAIRS);
    expect(chunks[0]!.fields.first_index).toBe(0n);
    expect(chunks[0]!.fields.trigger_index).toBe(1000n);
    sim.advance(FS);
    // Nothing but the waveform stream gives way: every window arrived, the windows follow each other, and
    // the drops the device counted are exactly the waveform samples missing from the stream.
    const windows = named('window');
    for (let k = 1; k < windows.length; k++) {
      expect(windows[k]!.fields.end_index - BigInt(windows[k]!.fields.samples)).toBe(windows[k - 1]!.fields.end_index);
    }
    const wave = named('waveform');
    const missingFrames = wave.slice(1).filter((w, k) => w.fields.first_index !== wave[k]!.fields.first_index + 512n * BigInt(wave[k]!.pairs.length)).length;
    expect(named('status').at(-1)!.fields.frames_dropped).toBeGreaterThanOrEqual(missingFrames);
    expect(named('status').at(-1)!.fields.frames_dropped > 0).toBe(missingFrames > 0);
  });
});

/**
 * Calibrated pairs of samples n0, n0 + step, ... computed the plain way: the model over the whole delay
 * line's history and every sample of the span, one sample per window.
 */
function calibratedReference(seed: number, calibration: Partial<DspConfig>, n0: number, step: number, count: number) {
  const history = DELAY_LINE_LENGTH - 1;
  const end = n0 + (count - 1) * step + 1;
  const { cv, ci } = rawCodes({ seed }, end);
  const core = new DspCore({ ...RESET_CONFIG, ...calibration, mode: WINDOW_MODE.FIXED, fixed_samples: 1 });
  const records = core.process(cv.subarray(n0 - history, end), ci.subarray(n0 - history, end));
  return Array.from({ length: count }, (_, k) => ({ v: records[history + k * step]!.min_v, i: records[history + k * step]!.min_i }));
}

describe('SimulatedDevice decimated captures', () => {
  it('IMMEDIATE at D = 64: pair k is sample first_index + 64k, every chunk says so', () => {
    const { sim, command, ackOf, named } = rig({ seed: 8 });
    sim.advance(FS / 4 + 77);
    const armedAt = sim.sampleIndex;
    const D = 64;
    const seq = command('cmd_capture', { pairs: 1000, trigger: CAPTURE_TRIGGER.IMMEDIATE, level: 0, pretrigger: 200, decimation: D, hysteresis: 0 });
    expect(ackOf(seq)!.fields.status).toBe(ACK_STATUS.OK);
    sim.advance(1000 * D + FS / 10);
    const chunks = named('capture_chunk');
    expect(chunks.map((c) => c.fields.chunk_index)).toEqual([0, 1, 2, 3]);
    expect(chunks.every((c) => c.fields.decimation === D)).toBe(true);
    // Recording starts at the arm; the trigger is the 200th recorded pair after it.
    const first = armedAt;
    expect(chunks.every((c) => c.fields.trigger_index === BigInt(first + 200 * D))).toBe(true);
    for (const c of chunks) expect(c.fields.first_index).toBe(BigInt(first + c.fields.chunk_index * CAPTURE_CHUNK_PAIRS * D));
    const pairs = chunks.flatMap((c) => c.pairs);
    const { cv, ci } = rawCodes({ seed: 8 }, first + 1000 * D);
    expect(pairs).toEqual(pairs.map((_, k) => ({ v: cv[first + k * D]! - 8192, i: ci[first + k * D]! - 8192 })));
  });

  // D = 2 with a 3.5-sample phase takes the contiguous path of the simulator's calibration, D = 9 the
  // one-core-per-pair path; both must equal the model run over every sample.
  for (const D of [2, 9]) {
    it(`V_RISING at D = ${D} through phase, offset and gain: exact calibrated pairs, trigger on recorded pairs`, () => {
      const { sim, command, named } = rig({ seed: 8 });
      sim.advance(FS / 4);
      const calibration = { v_offset: -30, i_offset: 40, v_gain: 20000, i_gain: 15000, phase: -(3 * 65536 + 32768) };
      command('cmd_calibrate', calibration);
      sim.advance(5000);
      const armedAt = sim.sampleIndex;
      const level = 1500;
      command('cmd_capture', { pairs: 300, trigger: CAPTURE_TRIGGER.V_RISING, level, pretrigger: 60, decimation: D, hysteresis: 0 });
      sim.advance(FS / 10);
      const chunks = named('capture_chunk');
      expect(chunks.length).toBe(2);
      const first = Number(chunks[0]!.fields.first_index);
      const trigger = Number(chunks[0]!.fields.trigger_index);
      expect(trigger - first).toBe(60 * D);
      expect((first - armedAt) % D).toBe(0);
      expect(chunks[1]!.fields.first_index).toBe(BigInt(first + 256 * D));
      const pairs = chunks.flatMap((c) => c.pairs);
      expect(pairs).toEqual(calibratedReference(8, calibration, first, D, 300));
      expect(pairs[59]!.v).toBeLessThan(level);
      expect(pairs[60]!.v).toBeGreaterThanOrEqual(level);
    });
  }

  it('hysteresis: the trigger needs the channel below level − H first; an unreachable band auto-triggers', () => {
    const D = 16;
    const level = 1000;
    const H = 3000;
    // Arm while v rises through the band (level − H, level): without hysteresis the crossing a moment
    // later fires; with it the trough has to come first (it was before the arm), so a cycle later.
    const { cv } = rawCodes({ seed: 8 }, FS / 2);
    let armAt = FS / 4;
    while (!(cv[armAt]! - 8192 > level - H + 500 && cv[armAt]! - 8192 < level - 500 && cv[armAt + 200]! > cv[armAt]!)) armAt++;
    const triggerWith = (hysteresis: number, pretrigger: number) => {
      const { sim, command, named } = rig({ seed: 8 });
      sim.advance(armAt);
      command('cmd_capture', { pairs: 800, trigger: CAPTURE_TRIGGER.V_RISING, level, pretrigger, decimation: D, hysteresis });
      sim.advance(FS / 5);
      const chunks = named('capture_chunk');
      return { trigger: Number(chunks[0]!.fields.trigger_index) - armAt, pairs: chunks.flatMap((c) => c.pairs) };
    };
    // Pretrigger 1 fills in 16 samples, before v reaches the level.
    const plain = triggerWith(0, 1);
    const banded = triggerWith(H, 1);
    expect(plain.trigger).toBeLessThan(FS / 200);
    expect(banded.trigger).toBeGreaterThan(plain.trigger + FS / 100);
    for (const { pairs } of [plain, banded]) {
      expect(pairs[1]!.v).toBeGreaterThanOrEqual(level);
      expect(pairs[0]!.v).toBeLessThan(level);
    }
    // With a long pretrigger, walking back from the trigger: pairs below the level down to one below
    // level − H.
    const long = triggerWith(H, 600);
    expect(long.pairs[600]!.v).toBeGreaterThanOrEqual(level);
    let j = 599;
    while (j >= 0 && long.pairs[j]!.v >= level - H) {
      expect(long.pairs[j]!.v).toBeLessThan(level);
      j--;
    }
    expect(j).toBeGreaterThanOrEqual(0);

    const { sim: sim2, command: command2, named: named2 } = rig({ seed: 8 });
    sim2.advance(FS / 4);
    const armedAt = sim2.sampleIndex;
    // The sine never goes below 0 − 32767: the trigger never primes; 1 s after the pretrigger filled
    // the capture is taken immediately (re-armed: the pretrigger fills again).
    command2('cmd_capture', { pairs: 50, trigger: CAPTURE_TRIGGER.V_RISING, level: 0, pretrigger: 10, decimation: 1000, hysteresis: 32767 });
    sim2.advance(FS + 10 * 1000 - 1);
    expect(named2('capture_chunk').length).toBe(0);
    sim2.advance(FS / 2);
    const [auto] = named2('capture_chunk');
    expect(Number(auto!.fields.trigger_index) - armedAt).toBe(FS + 2 * 10 * 1000);
    expect(auto!.fields.decimation).toBe(1000);
  });

  it('rejects decimation 0 and hysteresis above 32767', () => {
    const { sim, command, ackOf } = rig();
    sim.advance(1000);
    for (const bad of [{ decimation: 0, hysteresis: 0 }, { decimation: 1, hysteresis: 32768 }]) {
      const seq = command('cmd_capture', { pairs: 10, trigger: 0, level: 0, pretrigger: 0, ...bad });
      expect(ackOf(seq)!.fields.status).toBe(ACK_STATUS.BAD_ARGS);
    }
    expect(ackOf(command('cmd_capture', { pairs: 10, trigger: 0, level: 0, pretrigger: 0, decimation: 65535, hysteresis: 32767 }))!
      .fields.status).toBe(ACK_STATUS.OK);
  });
});

describe('SimulatedDevice reset and pacing', () => {
  it('reset() opens a new epoch: new boot_id, identify first, indices, energy and seq from 0', () => {
    const { sim, decoder, frames, named } = rig();
    sim.advance(FS);
    const oldBoot = sim.bootId;
    const before = frames.length;
    sim.reset();
    sim.advance(FS);
    expect(sim.bootId).not.toBe(oldBoot);
    const after = frames.slice(before);
    expect(after[0]!.name).toBe('identify');
    expect(after[0]!.seq).toBe(0);
    expect((after[0] as Frame<'identify'>).fields.boot_id).toBe(sim.bootId);
    expect(decoder.counters.resets).toBe(1);
    const windows = after.filter((f): f is Frame<'window'> => f.name === 'window');
    expect(windows[0]!.fields.end_index).toBe(BigInt(windows[0]!.fields.samples));
    const energy = after.find((f): f is Frame<'energy'> => f.name === 'energy')!;
    expect(energy.fields.energy).toBe(windows[0]!.fields.sum_vi);
    expect(energy.fields.boot_id).toBe(sim.bootId);
    expect(named('status').at(-1)!.fields.uptime_ms).toBe(1000);
  });

  it('takes each boot_id from bootEntropy: the same seed with another source is the same device on a new boot', () => {
    const draws = [0, 0x1234, 0x1234, 0xbeef];
    const fresh = new SimulatedDevice({ seed: 77, bootEntropy: () => draws.shift()! });
    const seeded = new SimulatedDevice({ seed: 77 });
    expect(fresh.deviceId).toBe(seeded.deviceId);
    expect(fresh.bootId).toBe(0x1234); // 0 means "no boot yet": drawn again
    fresh.reset();
    expect(fresh.bootId).toBe(0xbeef); // a reset never keeps the boot_id
    expect(new SimulatedDevice({ seed: 77 }).bootId).toBe(seeded.bootId); // default: reproducible from the seed
    expect(() => new SimulatedDevice({ bootEntropy: () => 0 })).toThrow(/bootEntropy/);
  });

  it('cmd_reboot: acked, then a new boot with identify; the calibration returns to the boot one (no flash)', () => {
    const { sim, command, ackOf, frames, named } = rig();
    sim.advance(FS / 10);
    expect(named('identify')[0]!.fields.calibration_source).toBe(CALIBRATION_SOURCE.NO_FLASH);
    command('cmd_calibrate', { v_offset: 4, i_offset: 0, v_gain: 20000, i_gain: 16384, phase: 0 });
    command('cmd_identify', {});
    expect(named('identify').at(-1)!.fields).toMatchObject({ v_gain: 20000, calibration_source: CALIBRATION_SOURCE.HOST_UNSAVED });
    const oldBoot = sim.bootId;
    const seq = command('cmd_reboot', {});
    const ackAt = frames.indexOf(ackOf(seq)!);
    expect(ackOf(seq)!.fields.status).toBe(ACK_STATUS.OK);
    expect(frames[ackAt + 1]!.name).toBe('identify');
    expect(sim.bootId).not.toBe(oldBoot);
    expect((frames[ackAt + 1] as Frame<'identify'>).fields).toMatchObject({
      boot_id: sim.bootId, v_gain: 16384, calibration_source: CALIBRATION_SOURCE.NO_FLASH,
    });
  });

  it('the same seed gives the same device and frames; another seed another device_id', () => {
    const a = rig({ seed: 77 });
    const b = rig({ seed: 77 });
    a.sim.advance(FS / 2);
    b.sim.advance(FS / 2);
    expect(a.frames).toEqual(b.frames);
    expect(rig({ seed: 78 }).sim.deviceId).not.toBe(a.sim.deviceId);
  });

  it('paced mode produces frames, never runs ahead of the scaled clock, and stops', async () => {
    const speed = 20;
    const { sim, frames } = rig({ speed });
    const began = performance.now();
    sim.start();
    expect(sim.running).toBe(true);
    while (!frames.some((f) => f.name === 'window')) await new Promise((r) => setTimeout(r, 10));
    const aheadLimit = Math.floor((performance.now() - began) / 1000 * FS * speed);
    expect(sim.sampleIndex).toBeLessThanOrEqual(aheadLimit);
    expect(sim.sampleIndex).toBeGreaterThan(0);
    // A new pace counts from the change, not from the start.
    const changedAt = performance.now();
    const indexAtChange = sim.sampleIndex;
    sim.setSpeed(2);
    expect(sim.speed).toBe(2);
    await new Promise((r) => setTimeout(r, 30));
    expect(sim.sampleIndex - indexAtChange).toBeLessThanOrEqual(Math.floor((performance.now() - changedAt) / 1000 * FS * 2));
    expect(() => sim.setSpeed(-1)).toThrow(/speed/);
    sim.stop();
    expect(sim.running).toBe(false);
    const stoppedAt = sim.sampleIndex;
    await new Promise((r) => setTimeout(r, 30));
    expect(sim.sampleIndex).toBe(stoppedAt);
  });

  it('rejects bad options', () => {
    expect(() => new SimulatedDevice({ speed: 0 })).toThrow(/speed/);
    expect(() => new SimulatedDevice({ energyEveryWindows: 0 })).toThrow(/energyEveryWindows/);
    expect(() => new SimulatedDevice({ bootConfig: { cycles: 0 } })).toThrow(/cycles/);
    expect(() => new SimulatedDevice().advance(-1)).toThrow(RangeError);
    expect(RESET_CONFIG.cycles).toBe(10);
  });
});
