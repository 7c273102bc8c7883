// End to end through the RTL twin (and `crabwatt serve --device rtl` at the end): test-vector ADC codes → gateware (VexRiscv SoC + DSP, Verilator)
// → the real firmware → UART bytes → pseudo-terminal → serialport → FrameDecoder → the same integer
// sums as the reference model. The twin is built once (cached in build/twin/rtl).
//
// The initial configuration is set while the samples are held, with cmd_configure or cmd_calibrate
// for the part that differs from the device's (as its identify frame reports it); the twin pauses
// before each later commit's sample so the host's command lands on exactly that boundary. Each
// command commits once, so the windows carry config_seq = expected + the acked config_seq (see
// test/vectors/README.md). A commit stays pending until a sample arrives, and the firmware answers
// BUSY to a second one meanwhile, so only vectors that need at most one command per boundary run.

import { SerialPort } from 'serialport';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, type AnyFrame } from '../../server/protocol/codec.ts';
import { ACK_STATUS, CAPTURE_TRIGGER } from '../../server/protocol/definition.ts';
import { readVector } from '../../server/twin/stimulus.ts';
import { serveInProcess } from '../../server/api/serve-in-process.ts';
import type { LiveWindow } from '../../server/ingest/ingest.ts';
import { buildRtlTwin, REPO_ROOT, startRtlTwin, type RtlTwin } from '../../server/twin/rtl.ts';

const VECTORS = ['pure-sine', 'harmonics-phase', 'fixed-mode', 'dc-timeout', 'noise-near-zero'];
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

async function openTwin(name: string) {
  const vector = readVector(`${REPO_ROOT}/test/vectors/${name}.json`);
  const twin = await startRtlTwin({
    vector: `${REPO_ROOT}/test/vectors/${name}.json`, build: false, loop: false, hold: true,
    pauseAt: vector.commits.map((c) => c.at_sample), samplePeriodCycles: SAMPLE_PERIOD_CYCLES, drainMs: 20,
  });
  const port = new SerialPort({ path: twin.path, baudRate: 115200, autoOpen: false });
  open = { twin, port };
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));

  const decoder = new FrameDecoder();
  const frames: AnyFrame[] = [];
  const waiters: (() => void)[] = [];
  port.on('data', (chunk: Buffer) => {
    frames.push(...decoder.push(chunk));
    waiters.splice(0).forEach((w) => w());
  });
  const waitFor = async (pred: () => boolean, what: string) => {
    const deadline = Date.now() + 60_000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 200); });
    }
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
  return { vector, twin, port, frames, decoder, waitFor, device, finish };
}

async function runVector(name: string) {
  const { vector, twin, port, frames, decoder, waitFor, device, finish } = await openTwin(name);
  let commandSeq = 1;
  /** Sends the commands that turn configuration `from` into `to`; resolves with the last ack's value. */
  const configure = async (from: Record<string, unknown>, to: Record<string, number>, always: boolean) => {
    const differs = (keys: readonly string[]) => keys.some((k) => from[k] !== to[k]);
    const commands: Buffer[] = [];
    // A commit whose configuration does not change still counts (config_seq, CONFIG flag): send one.
    if (differs(WINDOW_KEYS) || (always && !differs(CALIBRATION_KEYS))) {
      commands.push(encodeFrame('cmd_configure', ++commandSeq, {
        mode: to.mode!, cycles: to.cycles!, fixed_samples: to.fixed_samples!, max_samples: to.max_samples!,
        zc_hysteresis: to.zc_hysteresis!,
      }));
    }
    if (differs(CALIBRATION_KEYS)) {
      commands.push(encodeFrame('cmd_calibrate', ++commandSeq, {
        v_offset: to.v_offset!, i_offset: to.i_offset!, v_gain: to.v_gain!, i_gain: to.i_gain!, phase: to.phase!,
      }));
    }
    expect(commands.length, `${name} needs both commands at one boundary, which the firmware refuses (BUSY)`)
      .toBeLessThanOrEqual(1);
    if (!commands.length) return null;
    port.write(commands[0]!);
    // Every command is acked (cmd_identify too): take the ack of this one.
    const seq = commandSeq;
    const ack = () => frames.find((f) => f.name === 'ack' && (f.fields as { command_seq: number }).command_seq === seq);
    await waitFor(() => ack() !== undefined, `the ack of command ${seq}`);
    expect(ack()!.fields).toMatchObject({ status: ACK_STATUS.OK });
    return Number((ack()!.fields as { value: number }).value);
  };

  const acked = await configure(device, vector.config, false);
  const seqOffset = acked ?? Number(device.config_seq);
  let config = vector.config;
  for (const commit of vector.commits) {
    twin.startSamples();
    await twin.waitPaused(commit.at_sample);
    await configure(config, commit.config, true);
    config = commit.config;
  }
  const report = await finish();
  return { vector, frames, decoder, seqOffset, report };
}

describe('RTL twin end to end', () => {
  it.each(VECTORS)('%s: windows and energy equal the model', async (name) => {
    const { vector, frames, decoder, seqOffset, report } = await runVector(name);
    process.stderr.write(`${name}: ${report}\n`);

    expect(decoder.counters).toMatchObject({ crcErrors: 0, framingErrors: 0, protocolErrors: 0, seqGaps: 0 });
    const windows = frames.filter((f) => f.name === 'window').map((f) => jsonable(f.fields));
    const expected = vector.expected.windows.map((w) => ({
      ...w, config_seq: ((w.config_seq as number) + seqOffset) % 65536,
    }));
    expect(windows).toEqual(expected);

    const energies = frames.filter((f) => f.name === 'energy');
    expect(energies.length).toBeGreaterThan(0);
    for (const e of energies) {
      const f = e.fields as { end_index: bigint; energy: bigint };
      const k = vector.expected.windows.findIndex((w) => w.end_index === f.end_index.toString());
      expect(k, `energy snapshot at ${f.end_index} matches no window end`).toBeGreaterThanOrEqual(0);
      expect(f.energy.toString()).toBe(vector.expected.energies[k]);
    }
    const statuses = frames.filter((f) => f.name === 'status').map((f) => f.fields as Record<string, number>);
    for (const s of statuses) expect(s).toMatchObject({ frames_dropped: 0, fifo_overflows: 0, samples_dropped: 0 });
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
