// End to end through the RTL twin (and `crabwatt serve --device rtl` at the end): test-vector ADC codes → gateware (VexRiscv SoC + DSP, Verilator)
// → the real firmware → UART bytes → pseudo-terminal → serialport → FrameDecoder → the same integer
// sums as the reference model, for every vector in test/vectors. The twin is built once (cached in
// build/twin/rtl).
//
// The initial configuration is set while the samples are held, with cmd_configure and/or
// cmd_calibrate for the part that differs from the device's (as its identify frame reports it); the
// twin pauses before each later commit's sample so the host's commands land on exactly that boundary
// (all the commits of one boundary, each command sent when the previous one is acked, as a host on
// the UART does: the firmware commits each, and the DSP applies them all at the boundary). A vector commit may take two commands, so the device counts
// more commits than the vector: each window's config_seq must be the acked config_seq of the last
// command sent for the vector commit it was computed with (test/vectors/README.md). A commit at the
// end of the stimulus gets one extra pair to make its boundary.

import { readdirSync } from 'node:fs';
import { SerialPort } from 'serialport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, type AnyFrame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, CAPTURE_TRIGGER } from '../../server/protocol/definition.ts';
import { readVector } from '../../server/twin/stimulus.ts';
import { serveInProcess } from '../../server/api/serve-in-process.ts';
import type { LiveWindow } from '../../server/ingest/ingest.ts';
import { buildRtlTwin, REPO_ROOT, startRtlTwin, type RtlTwin } from '../../server/twin/rtl.ts';

const VECTOR_DIR = `${REPO_ROOT}/test/vectors`;
const VECTORS = readdirSync(VECTOR_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort();
const WINDOW_KEYS = ['mode', 'cycles', 'fixed_samples', 'max_samples', 'zc_hysteresis'] as const;
const CALIBRATION_KEYS = ['v_offset', 'i_offset', 'v_gain', 'i_gain', 'phase'] as const;
// The vectors squeeze a mains cycle into ~200 samples, ~1000x more windows per sample than real
// mains; 48 cycles between pairs keeps the firmware's time per window closer to a real device's.
const SAMPLE_PERIOD_CYCLES = 48;

let open: { twin: RtlTwin; port: SerialPort } | null = null;

beforeAll(async () => {
  await buildRtlTwin({ log: (line) => process.stderr.write(`${line}\n`) });
}, 20 * 60_000);

afterEach(async () => {
  if (!open) return;
  const { twin, port } = open;
  open = null;
  if (port.isOpen) await new Promise<void>((r) => port.close(() => r()));
  await twin.close();
});

const jsonable = (fields: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

type Ack = { command_seq: number; command_type: number; status: number; value: number };

async function openTwin(name: string, { loop = false, samplePeriodCycles = SAMPLE_PERIOD_CYCLES, rxByteCycles = undefined as number | undefined } = {}) {
  const vector = readVector(`${VECTOR_DIR}/${name}.json`);
  const atEnd = vector.commits.some((c) => c.at_sample === vector.expected.sample_count);
  const twin = await startRtlTwin({
    vector: `${VECTOR_DIR}/${name}.json`, build: false, loop, hold: true, tailPairs: atEnd ? 1 : 0,
    pauseAt: vector.commits.map((c) => c.at_sample), samplePeriodCycles, rxByteCycles, drainMs: 20,
  });
  const waiters: (() => void)[] = [];
  let ended = false;
  void twin.exited.then(() => {
    ended = true;
    waiters.splice(0).forEach((w) => w());
  });
  const port = new SerialPort({ path: twin.path, baudRate: 115200, autoOpen: false });
  open = { twin, port };
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));

  const decoder = new FrameDecoder();
  const frames: AnyFrame[] = [];
  port.on('data', (chunk: Buffer) => {
    frames.push(...decoder.push(chunk));
    waiters.splice(0).forEach((w) => w());
  });
  // Waits for frames, however slowly the machine runs the twin: what decides a result is what the device
  // sends, never how long it takes (vitest's timeout only catches a hang).
  const waitFor = async (pred: () => boolean, what: string | (() => string)) => {
    while (!pred()) {
      if (ended) throw new Error(`the twin ended while waiting for ${typeof what === 'string' ? what : what()}`);
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const ackOf = (seq: number) =>
    frames.find((f) => f.name === 'ack' && (f.fields as Ack).command_seq === seq)?.fields as Ack | undefined;
  const statusCount = () => frames.filter((f) => f.name === 'status').length;
  let probeSeq = 1_000_000;
  /**
   * Sends the frames as one write (a burst at line rate) and resolves with their acks, in order. What the
   * device sends decides when an ack is missing: a cmd_status follows the burst on the line, and the
   * device answers in the order it hears, so once that probe is answered every command of the burst that
   * will ever be answered has been. Should the probe itself be lost, the device's periodic status frames
   * (once a simulated second; the burst takes a few ms) end the wait at the second one.
   */
  const burst = async (commands: { seq: number; frame: Buffer }[]) => {
    const statusesBefore = statusCount();
    const probe = ++probeSeq;
    port.write(Buffer.concat([...commands.map((c) => c.frame), encodeFrame('cmd_status', probe, {})]));
    const missing = () => commands.filter((c) => ackOf(c.seq) === undefined).map((c) => c.seq);
    await waitFor(() => ackOf(probe) !== undefined || statusCount() >= statusesBefore + 2, 'acks or status frames');
    if (missing().length > 0) {
      const status = frames.filter((f) => f.name === 'status').at(-1)!.fields as { uart_rx_overruns: number };
      throw new Error(`commands ${missing().join(', ')} were not answered; ` +
        `the device reports ${status.uart_rx_overruns} bytes dropped by its UART receive FIFO`);
    }
    return commands.map((c) => ackOf(c.seq)!);
  };
  /** Sends each command when the previous one is acked, as DeviceLink.request users do. */
  const send = async (commands: { seq: number; frame: Buffer }[]) => {
    const acks: Ack[] = [];
    for (const c of commands) acks.push(...await burst([c]));
    return acks;
  };

  port.write(encodeFrame('cmd_identify', 1, {}));
  await waitFor(() => frames.some((f) => f.name === 'identify'), 'identify');
  const device = frames.find((f) => f.name === 'identify')!.fields as Record<string, unknown>;
  const finish = async () => {
    twin.startSamples();
    const exit = await twin.exited;
    await new Promise((r) => setTimeout(r, 100));    // the last bytes' 'data' event
    expect(exit.code).toBe(0);
    return exit.report;
  };
  return { vector, twin, port, frames, decoder, waitFor, send, burst, device, finish };
}

async function runVector(name: string) {
  const { vector, twin, frames, decoder, send, device, finish } = await openTwin(name);
  let commandSeq = 1;
  /** The commands that turn configuration `from` into `to` (at least one when `always`). */
  const commandsFor = (from: Record<string, unknown>, to: Record<string, number>, always: boolean) => {
    const differs = (keys: readonly string[]) => keys.some((k) => from[k] !== to[k]);
    const commands: { seq: number; frame: Buffer }[] = [];
    // A commit whose configuration does not change still counts (config_seq, CONFIG flag): send one.
    if (differs(WINDOW_KEYS) || (always && !differs(CALIBRATION_KEYS))) {
      const seq = ++commandSeq;
      commands.push({ seq, frame: encodeFrame('cmd_configure', seq, {
        mode: to.mode!, cycles: to.cycles!, fixed_samples: to.fixed_samples!, max_samples: to.max_samples!,
        zc_hysteresis: to.zc_hysteresis!,
      }) });
    }
    if (differs(CALIBRATION_KEYS)) {
      const seq = ++commandSeq;
      commands.push({ seq, frame: encodeFrame('cmd_calibrate', seq, {
        v_offset: to.v_offset!, i_offset: to.i_offset!, v_gain: to.v_gain!, i_gain: to.i_gain!, phase: to.phase!,
      }) });
    }
    return commands;
  };

  // seqOf[k]: the device's config_seq for the vector's config_seq k (k commits into the vector).
  const seqOf: number[] = [];
  const initial = commandsFor(device, vector.config, false);
  const initialAcks = await send(initial);
  for (const a of initialAcks) expect(a).toMatchObject({ status: ACK_STATUS.OK });
  seqOf.push(initialAcks.at(-1)?.value ?? Number(device.config_seq));

  let config = vector.config;
  const boundaries = [...new Set(vector.commits.map((c) => c.at_sample))];
  for (const b of boundaries) {
    twin.startSamples();
    await twin.waitPaused(b);
    const group = vector.commits.filter((c) => c.at_sample === b);
    const perCommit = group.map((c) => {
      const commands = commandsFor(config, c.config, true);
      config = c.config;
      return commands;
    });
    const acks = await send(perCommit.flat());
    for (const a of acks) expect(a).toMatchObject({ status: ACK_STATUS.OK });
    // Every commit counts once in the device's config_seq, in the order sent.
    acks.forEach((a, k) => expect(a.value).toBe((seqOf.at(-1)! + 1 + k) % 65536));
    let k = 0;
    for (const commands of perCommit) {
      k += commands.length;
      seqOf.push(acks[k - 1]!.value);
    }
  }
  const report = await finish();
  return { vector, frames, decoder, seqOf, report };
}

describe('RTL twin end to end', () => {
  it('runs every vector', () => {
    expect(VECTORS).toEqual(expect.arrayContaining(['config-commits', 'calibration-negative-phase',
      'calibration-positive-phase', 'clipping-saturation', 'pure-sine']));
  });

  it.each(VECTORS)('%s: windows and energy equal the model', async (name) => {
    const { vector, frames, decoder, seqOf, report } = await runVector(name);
    process.stderr.write(`${name}: ${report}\n`);

    expect(decoder.counters).toMatchObject({ crcErrors: 0, framingErrors: 0, protocolErrors: 0, seqGaps: 0 });
    const windows = frames.filter((f) => f.name === 'window').map((f) => jsonable(f.fields));
    const expected = vector.expected.windows.map((w) => {
      const k = w.config_seq as number;
      expect(k, `${name}: a window of vector config_seq ${k}, but the vector has ${seqOf.length - 1} commits`)
        .toBeLessThan(seqOf.length);
      return { ...w, config_seq: seqOf[k] };
    });
    expect(windows).toEqual(expected);

    const energies = frames.filter((f) => f.name === 'energy');
    expect(energies.length).toBe(windows.length);
    for (const e of energies) {
      const f = e.fields as { end_index: bigint; energy: bigint };
      const k = vector.expected.windows.findIndex((w) => w.end_index === f.end_index.toString());
      expect(k, `energy snapshot at ${f.end_index} matches no window end`).toBeGreaterThanOrEqual(0);
      expect(f.energy.toString()).toBe(vector.expected.energies[k]);
    }
    const statuses = frames.filter((f) => f.name === 'status').map((f) => f.fields as Record<string, number>);
    for (const s of statuses) expect(s).toMatchObject({ frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0 });
  }, 5 * 60_000);

  // The UART's receive FIFO holds 64 bytes and drops what does not fit; the harness brings host bytes
  // at the board's line rate in CPU cycles (or faster, rxByteCycles). Hearing and answering a configure
  // or calibrate costs the firmware 3 000 to 3 900 cycles against ~3 900 on the board's line, so a
  // firmware that read the FIFO only as fast as it handled commands lost bytes of a 1 KB burst whenever
  // a window or a status frame fell into it (commands 178 and 179 in a loaded `npm test`: when the
  // burst came relative to the windows, not the line, decided it). The firmware moves the FIFO into a
  // 1 KiB ring after every frame it encodes and command it handles (firmware/src/links.h), so a burst
  // that fits is heard whole even from a line faster than the firmware handles commands, as long as
  // the FIFO lasts longer than the longest of those steps (~4 000 cycles; 64 bytes at 80 cycles a byte
  // take 5 120). While streaming the commands are refused ones (BAD_ARGS), which cost the firmware as
  // much to hear but leave the windows alone: each commit would close one. The stimulus loops, so
  // windows still stream however late the host's burst comes; pairs 4x further apart than in the
  // vector runs keep the window rate near a real device's.
  it.each([
    { line: "the board's 3 Mbaud line", rxByteCycles: undefined },
    { line: "a line twice as fast as the board's", rxByteCycles: 80 },
  ])('a command burst many times the receive FIFO is answered whole, idle and while windows stream, on $line', async ({ rxByteCycles }) => {
    const { vector, twin, frames, decoder, waitFor, burst, device } =
      await openTwin('pure-sine', { loop: true, samplePeriodCycles: 4 * SAMPLE_PERIOD_CYCLES, rxByteCycles });
    let seq = 100;
    const c = vector.config;
    const commands = (n: number, valid: boolean) => Array.from({ length: n }, (_, k) => {
      seq++;
      const frame = k % 2 === 0
        ? encodeFrame('cmd_configure', seq, {
          mode: c.mode!, cycles: valid ? c.cycles! : 0, fixed_samples: c.fixed_samples!, max_samples: c.max_samples!,
          zc_hysteresis: c.zc_hysteresis!,
        })
        : encodeFrame('cmd_calibrate', seq, {
          v_offset: c.v_offset!, i_offset: c.i_offset!, v_gain: c.v_gain!, i_gain: c.i_gain!,
          phase: valid ? c.phase! : 1023 * 65536,
        });
      return { seq, frame };
    });

    // Before the first sample the commits pile up for boundary 0, one config_seq each.
    const idle = commands(40, true);
    expect(Buffer.concat(idle.map((x) => x.frame)).length).toBeGreaterThan(12 * 64);
    const idleAcks = await burst(idle);
    for (const a of idleAcks) expect(a.status).toBe(ACK_STATUS.OK);
    expect(idleAcks.map((a) => a.value)).toEqual(idleAcks.map((_, k) => Number(device.config_seq) + 1 + k));
    const configured = idleAcks.at(-1)!.value;

    twin.startSamples();
    await waitFor(() => frames.filter((f) => f.name === 'window').length >= 1, 'a window');
    const streaming = commands(40, false);
    expect(Buffer.concat(streaming.map((x) => x.frame)).length).toBeGreaterThan(12 * 64);
    const streamingAcks = await burst(streaming);
    for (const a of streamingAcks) expect(a.status).toBe(ACK_STATUS.BAD_ARGS);
    // The burst was heard while windows came.
    const lastAck = () => frames.findIndex((f) => f.name === 'ack' && (f.fields as Ack).command_seq === streaming.at(-1)!.seq);
    await waitFor(() => frames.slice(lastAck()).some((f) => f.name === 'window'), 'a window after the burst');
    const windowCount = () => frames.filter((f) => f.name === 'window').length;
    await waitFor(() => windowCount() > vector.expected.windows.length, 'a pass over the whole stimulus');
    const exit = await twin.close();
    expect(exit.code).toBe(0);

    expect(decoder.counters).toMatchObject({ crcErrors: 0, framingErrors: 0, seqGaps: 0 });
    // The first pass over the stimulus gives the vector's windows (later ones span the loop point).
    const windows = frames.filter((f) => f.name === 'window').map((f) => jsonable(f.fields));
    expect(windows.slice(0, vector.expected.windows.length))
      .toEqual(vector.expected.windows.map((w) => ({ ...w, config_seq: configured })));
    const statuses = frames.filter((f) => f.name === 'status').map((f) => f.fields as Record<string, number>);
    for (const st of statuses) {
      expect(st).toMatchObject({ frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0, uart_rx_overruns: 0 });
    }
  }, 5 * 60_000);

  // With the reset calibration (gain 1, offset 0, phase 0) a calibrated pair is the centred code
  // exactly (docs/dsp.md), so the captured pairs can be checked against the stimulus itself.
  it('capture: a triggered raw capture returns the stimulus around the trigger', async () => {
    const { vector, port, frames, decoder, waitFor, device, finish } = await openTwin('pure-sine');
    expect(device).toMatchObject({ v_gain: 16384, i_gain: 16384, v_offset: 0, i_offset: 0, phase: 0 });
    expect(Number(device.capture_depth)).toBeGreaterThanOrEqual(512);
    const pairs = 600;
    const pretrigger = 100;
    // Every 4th sample (the 6000-sample vector holds the 2400 the pairs span), hysteresis 500 LSB.
    const decimation = 4;
    const hysteresis = 500;
    port.write(encodeFrame('cmd_capture', 7, { pairs, trigger: CAPTURE_TRIGGER.V_RISING, level: 0, pretrigger, decimation, hysteresis }));
    const ack = () => frames.find((f) => f.name === 'ack' && (f.fields as { command_seq: number }).command_seq === 7);
    await waitFor(() => ack() !== undefined, 'the ack of cmd_capture');
    expect(ack()!.fields).toMatchObject({ status: ACK_STATUS.OK });
    const captureId = (ack()!.fields as { value: number }).value;
    await finish();

    expect(decoder.counters).toMatchObject({ crcErrors: 0, framingErrors: 0, seqGaps: 0 });
    const chunks = frames.filter((f) => f.name === 'capture_chunk' &&
      (f.fields as { capture_id: number }).capture_id === captureId);
    expect(chunks.length).toBeGreaterThan(1);
    const got: { v: number; i: number }[] = [];
    const first = (chunks[0]!.fields as { first_index: bigint }).first_index;
    const trigger = (chunks[0]!.fields as { trigger_index: bigint }).trigger_index;
    chunks.forEach((c, k) => {
      const f = c.fields as { chunk_index: number; chunk_count: number; first_index: bigint; trigger_index: bigint; decimation: number };
      expect(f).toMatchObject({ chunk_index: k, chunk_count: chunks.length, trigger_index: trigger, decimation });
      expect(f.first_index).toBe(first + BigInt(got.length * decimation));
      got.push(...(c as unknown as { pairs: { v: number; i: number }[] }).pairs);
    });
    expect(got.length).toBe(pairs);
    expect(trigger - first).toBe(BigInt(pretrigger * decimation));
    const n0 = Number(first);
    // Pair k is sample first_index + k·D, exactly (docs/protocol.md "Captures").
    expect(got).toEqual(got.map((_, k) => ({ v: vector.cv[n0 + k * decimation]! - 8192, i: vector.ci[n0 + k * decimation]! - 8192 })));
    // V_RISING at level 0 on the recorded pairs: previous < 0 <= trigger pair, and before it the
    // voltage went below −hysteresis with no pair at or above 0 in between.
    expect(got[pretrigger - 1]!.v).toBeLessThan(0);
    expect(got[pretrigger]!.v).toBeGreaterThanOrEqual(0);
    let j = pretrigger - 1;
    while (j >= 0 && got[j]!.v >= -hysteresis) expect(got[j--]!.v).toBeLessThan(0);
    expect(j).toBeGreaterThanOrEqual(0);
  }, 5 * 60_000);

  // In this file, so the twin is built once (the build directory has no lock of its own).
  it('serve --device rtl ingests the twin through the serial path, like a board', async () => {
    const served = await serveInProcess('rtl');
    try {
      const session = served.runtime.sessions[0]!;
      expect(session.kind).toBe('rtl');
      let windows = 0;
      await new Promise<void>((resolve) => {
        session.ingest.on('window', (_w: LiveWindow) => {
          if (++windows >= 5) resolve();
        });
      });
      expect(session.counters.crcErrors).toBe(0);
      const res = await fetch(`${served.url}/api/devices`);
      const body = (await res.json()) as { devices: { kind: string; state: string }[] };
      expect(body.devices[0]).toMatchObject({ kind: 'rtl', state: 'connected' });
    } finally {
      await served.close();
    }
  }, 5 * 60_000);
});
